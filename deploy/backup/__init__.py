"""Back up one service's database, and restore it into an empty one.

    python -m deploy.backup dump    --database-url URL --out FILE
    python -m deploy.backup restore --database-url URL --from FILE
    python -m deploy.backup verify  --from FILE

Each service owns one database, so a backup is per service and holds everything the service
knows: its own tables, its local copies of other services' facts, its outbox (unsent events
travel with it and are published after a restore) and its inbox (so an event already applied is
not applied again when the broker redelivers it). `alembic_version` travels too: the restored
service starts on the schema it was backed up at and migrates forward if its code is newer.

- PostgreSQL: `pg_dump --format=custom` (one consistent snapshot, taken while the service runs),
  restored by `pg_restore --single-transaction --exit-on-error` into an EMPTY database (created by the
  operator, owned by the service's role). `--no-owner --no-privileges`: the objects belong to the
  role that restores, so a backup restores under another role name. The password, if any, goes to
  the tools in PGPASSWORD, never on their command line.
- SQLite: the online backup API (`sqlite3.Connection.backup`): a consistent copy while the service
  runs and writes; restored by the same API into a new file. `PRAGMA integrity_check` on both sides.

A restore refuses a target that holds any table: restoring over a live database is never what
an operator means. Move the old one aside (rename, or `DROP DATABASE`) first.

For moving a service between SQLite and PostgreSQL, or to another operator, use the portable
archive instead (`partnership-ops export` / `import`): it carries unsent outbox rows only.
"""
from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

from sqlalchemy.engine import URL, make_url

PG_TIMEOUT_SECONDS = 3600  # a large database takes a while; a hung tool must not hang the operator forever


class BackupError(Exception):
    """A dump or restore that failed or was refused."""


def backend_of(database_url: str) -> str:
    backend = make_url(database_url).get_backend_name()
    if backend not in ("postgresql", "sqlite"):
        raise BackupError(f"no backup procedure for {backend!r} databases")
    return backend


def _libpq(url: URL) -> tuple[str, dict[str, str]]:
    """The libpq connection URI of a SQLAlchemy URL (driver dropped) and the environment carrying its password."""
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    plain = url.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), env


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BackupError(f"{name} is not installed (Debian: postgresql-client, the server's major version or newer)")
    return path


def _run(args: list[str], env: dict[str, str]) -> None:
    try:
        result = subprocess.run(args, env=env, capture_output=True, text=True, timeout=PG_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired as exc:
        raise BackupError(f"{Path(args[0]).name} did not finish in {PG_TIMEOUT_SECONDS} s") from exc
    if result.returncode != 0:
        raise BackupError(f"{Path(args[0]).name} failed ({result.returncode}): {result.stderr.strip()}")


def _sqlite_path(url: URL) -> Path:
    if not url.database or url.database == ":memory:":
        raise BackupError("an in-memory SQLite database has nothing to back up")
    return Path(url.database)


def _sqlite_tables(connection: sqlite3.Connection) -> list[str]:
    return [r[0] for r in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                             "AND name NOT LIKE 'sqlite_%'")]


def _sqlite_check(connection: sqlite3.Connection, what: str) -> None:
    verdict = connection.execute("PRAGMA integrity_check").fetchone()[0]
    if verdict != "ok":
        raise BackupError(f"{what} failed SQLite's integrity check: {verdict}")


def dump(database_url: str, out: str | Path) -> Path:
    """Write a consistent backup of the database at `database_url` to `out` (refuses to overwrite)."""
    out = Path(out)
    if out.exists():
        raise BackupError(f"{out} exists: a backup never overwrites another")
    out.parent.mkdir(parents=True, exist_ok=True)
    url = make_url(database_url)
    if backend_of(database_url) == "postgresql":
        uri, env = _libpq(url)
        _run([_tool("pg_dump"), "--format=custom", "--no-owner", "--no-privileges", f"--file={out}", uri], env)
        verify(out)
        return out
    source_path = _sqlite_path(url)
    if not source_path.exists():
        raise BackupError(f"no SQLite database at {source_path}")
    source = sqlite3.connect(f"file:{source_path}?mode=ro", uri=True, timeout=30)
    target = sqlite3.connect(out)
    try:
        source.backup(target)  # the online backup API: consistent even while the service writes
        _sqlite_check(target, "the backup")
    finally:
        target.close()
        source.close()
    return out


def verify(backup: str | Path) -> list[str]:
    """Read the backup through: its table list (PostgreSQL custom format or SQLite file)."""
    backup = Path(backup)
    with backup.open("rb") as f:
        magic = f.read(16)
    if magic.startswith(b"PGDMP"):
        result = subprocess.run([_tool("pg_restore"), "--list", str(backup)], capture_output=True, text=True,
                                timeout=PG_TIMEOUT_SECONDS)
        if result.returncode != 0:
            raise BackupError(f"pg_restore cannot read {backup}: {result.stderr.strip()}")
        # "<id>; <oid> <oid> TABLE DATA <schema> <table> <owner>"
        return sorted({line.split(" TABLE DATA ", 1)[1].split()[1] for line in result.stdout.splitlines()
                       if " TABLE DATA " in line and not line.startswith(";")})
    if magic.startswith(b"SQLite format 3"):
        connection = sqlite3.connect(f"file:{backup}?mode=ro", uri=True)
        try:
            _sqlite_check(connection, str(backup))
            return sorted(_sqlite_tables(connection))
        finally:
            connection.close()
    raise BackupError(f"{backup} is neither a pg_dump custom-format archive nor a SQLite database")


def _postgres_tables(database_url: str) -> list[str]:
    import sqlalchemy as sa

    engine = sa.create_engine(database_url, hide_parameters=True)
    try:
        with engine.connect() as connection:
            return list(connection.execute(sa.text(
                "SELECT schemaname || '.' || tablename FROM pg_tables "
                "WHERE schemaname NOT IN ('pg_catalog', 'information_schema')")).scalars())
    finally:
        engine.dispose()


def restore(database_url: str, backup: str | Path) -> list[str]:
    """Restore `backup` into the EMPTY database at `database_url`; returns the tables restored."""
    backup = Path(backup)
    tables = verify(backup)
    url = make_url(database_url)
    if backend_of(database_url) == "postgresql":
        present = _postgres_tables(database_url)
        if present:
            raise BackupError(f"{url.database} is not empty ({len(present)} tables, e.g. {present[0]}): "
                              "restore only into an empty database")
        uri, env = _libpq(url)
        _run([_tool("pg_restore"), "--no-owner", "--no-privileges", "--single-transaction", "--exit-on-error",
              f"--dbname={uri}", str(backup)], env)
        return tables
    target_path = _sqlite_path(url)
    if target_path.exists() and target_path.stat().st_size:
        existing = sqlite3.connect(target_path)
        try:
            present = _sqlite_tables(existing)
        finally:
            existing.close()
        if present:
            raise BackupError(f"{target_path} is not empty ({len(present)} tables): restore only into an empty database")
    target_path.parent.mkdir(parents=True, exist_ok=True)
    source = sqlite3.connect(f"file:{backup}?mode=ro", uri=True)
    target = sqlite3.connect(target_path)
    try:
        source.backup(target)
        _sqlite_check(target, "the restored database")
    finally:
        target.close()
        source.close()
    return tables
