"""Portable archive of one service's state: export, verify, import, and erase what stays behind.

A service is found by its name alone, through the layout every service follows:
its tables are the SQLAlchemy metadata of `<service>.adapters.tables`, its schema
history the Alembic scripts at `<service>:migrations`. Nothing here knows any
service's business.

Archive format (version 1): a gzip'd tar holding
- `manifest.json`: format and version, service, operator, Alembic revision,
  source dialect, time of export, and per table its file, columns with their
  portable kind, primary key, row count and the SHA-256 of its file;
- `manifest.sha256`: the SHA-256 of `manifest.json`;
- `tables/<table>.jsonl`: one JSON object per row, in primary-key order.

What is exported: every table of the service's database (except
`alembic_version`) with all its rows, except the outbox, of which only the
unsent rows travel (sent rows are history the old operator keeps or erases).
The inbox travels whole: it is what stops the new instance applying an event
the old one already applied.

Values round-trip exactly between SQLite and PostgreSQL: integers and strings
as JSON, booleans as JSON booleans, dates, times and datetimes as ISO 8601
(naive stays naive; a `timezone=True` column travels in UTC, since SQLite
keeps no offset), decimals as strings, floats as
JSON numbers (shortest repr), UUIDs as canonical strings, JSON columns as
their JSON text, binary as base64. A column of any other type is refused at
export, naming it, rather than exported approximately.

Import guarantees: the archive is verified (manifest checksum, every file's
checksum and row count) before the database is touched; a revision the
installed service does not know is refused; a target that holds any row is
refused; the rows load in one transaction, PostgreSQL sequences are moved past
the loaded ids, and the database is then migrated to the installed head.
"""
from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import decimal
import hashlib
import importlib
import io
import json
import tarfile
import tempfile
import uuid
import zlib
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from shared import __version__ as SHARED_VERSION
from shared import idempotency
from shared.db import Database

FORMAT = "partnership-service-archive"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
MANIFEST_CHECKSUM = "manifest.sha256"
OUTBOX, INBOX, ALEMBIC_VERSION = "outbox", "inbox", "alembic_version"
STORED_RESPONSES = idempotency.TABLE
INSERT_CHUNK = 1000
ERASED = "[erased]"


class ArchiveError(Exception):
    """The archive is damaged, of an unknown format, or for another service."""


class ImportRefused(Exception):
    """The target database or the archive's revision does not allow this import."""


class UnsupportedColumn(Exception):
    """A column of a type the archive format cannot carry exactly."""


# -- the service, found by name ------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class ServiceSchema:
    """Where a service keeps its tables and migrations (the layout every service follows)."""

    name: str
    metadata: sa.MetaData
    migrations: str
    personal_data: Mapping[str, tuple[str, ...]] | None

    @classmethod
    def of(cls, service: str) -> "ServiceSchema":
        try:
            tables = importlib.import_module(f"{service}.adapters.tables")
        except ImportError as exc:
            raise LookupError(f"no installed service {service!r} ({service}.adapters.tables: {exc})") from exc
        personal = getattr(tables, "PERSONAL_DATA", None)
        return cls(name=service, metadata=tables.metadata, migrations=f"{service}:migrations",
                   personal_data={t: tuple(c) for t, c in personal.items()} if personal is not None else None)

    def alembic_config(self, url: str):
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", self.migrations)
        config.set_main_option("sqlalchemy.url", url)
        return config

    def script(self):
        from alembic.script import ScriptDirectory

        return ScriptDirectory.from_config(self.alembic_config("sqlite://"))

    def head(self) -> str:
        heads = self.script().get_heads()
        if len(heads) != 1:
            raise LookupError(f"{self.name}: migrations have {len(heads)} heads ({heads}); merge them first")
        return heads[0]

    def knows_revision(self, revision: str) -> bool:
        from alembic.util import CommandError

        try:
            return self.script().get_revision(revision) is not None
        except CommandError:
            return False

    def upgrade(self, database: Database, revision: str) -> None:
        database.upgrade(self.migrations, revision)


def current_revision(connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


def redacted(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


# -- value encoding -------------------------------------------------------------------------------
def kind_of(column: sa.Column) -> str:
    """The portable kind of a column's type; refuses one the format cannot carry exactly."""
    t = column.type
    if isinstance(t, sa.DateTime) and t.timezone:
        # SQLite keeps no offset: such values are read back naive, so both
        # dialects' values travel normalised to UTC.
        return "datetime_utc"
    checks: list[tuple[type, str]] = [
        (sa.JSON, "json"), (sa.Boolean, "boolean"), (sa.DateTime, "datetime"), (sa.Date, "date"),
        (sa.Time, "time"), (sa.Uuid, "uuid"), (sa.Float, "float"), (sa.Numeric, "decimal"),
        (sa.Integer, "integer"), (sa.LargeBinary, "binary"), (sa.String, "string"), (sa.Enum, "string"),
    ]
    for type_, kind in checks:
        if isinstance(t, type_):
            return kind
    raise UnsupportedColumn(f"{column.table.name}.{column.name}: type {t!r} cannot be archived exactly")


def encode(kind: str, value: Any) -> Any:
    if value is None:
        return None
    if kind == "datetime_utc":
        aware = value if value.tzinfo is not None else value.replace(tzinfo=dt.timezone.utc)
        return aware.astimezone(dt.timezone.utc).isoformat()
    if kind in ("date", "datetime", "time"):
        return value.isoformat()
    if kind == "decimal":
        return str(value) if isinstance(value, decimal.Decimal) else repr(value)
    if kind == "uuid":
        return str(value if isinstance(value, uuid.UUID) else uuid.UUID(str(value)))
    if kind == "json":
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    if kind == "binary":
        return base64.b64encode(bytes(value)).decode("ascii")
    if kind == "boolean":
        return bool(value)
    if kind == "float":
        return float(value)
    return value


def decode(kind: str, value: Any, target_kind: str | None = None) -> Any:
    if value is None:
        return None
    if kind == "date":
        out: Any = dt.date.fromisoformat(value)
    elif kind in ("datetime", "datetime_utc"):
        out = dt.datetime.fromisoformat(value)
    elif kind == "time":
        out = dt.time.fromisoformat(value)
    elif kind == "decimal":
        out = decimal.Decimal(value)
    elif kind == "uuid":
        out = uuid.UUID(value)
    elif kind == "json":
        out = json.loads(value)
    elif kind == "binary":
        out = base64.b64decode(value)
    else:
        out = value
    if target_kind == "string" and kind != "string":
        out = str(out)
    elif target_kind == "uuid" and isinstance(out, str):
        out = uuid.UUID(out)
    return out


# -- tables as the database has them, typed as the service declares them ---------------------------
def typed_tables(connection, declared: sa.MetaData) -> list[sa.Table]:
    """The database's own tables in dependency order, with the service's declared column types.

    The column set is what the database really has (its revision may be older or
    newer than the installed code); a column the service declares keeps its
    declared type (so a UUID or JSON column binds the same on both dialects),
    any other keeps its reflected type.
    """
    reflected = sa.MetaData()
    reflected.reflect(bind=connection)
    tables = []
    for table in reflected.sorted_tables:
        if table.name == ALEMBIC_VERSION:
            continue
        known = declared.tables.get(table.name)
        if known is not None:
            for column in table.columns:
                if column.name in known.columns:
                    column.type = known.columns[column.name].type
        tables.append(table)
    return tables


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# -- export -----------------------------------------------------------------------------------------
def export_service(service: str, database_url: str, out: str | Path, *, operator: Mapping[str, Any] | None = None,
                   schema: ServiceSchema | None = None) -> dict:
    """Write the archive of `service`'s database to `out`; returns the manifest."""
    schema = schema or ServiceSchema.of(service)
    out = Path(out)
    database = Database(database_url)
    try:
        engine = database.read_engine
        with tempfile.TemporaryDirectory() as scratch, engine.connect() as connection:
            if not database.is_sqlite:
                connection = connection.execution_options(isolation_level="REPEATABLE READ")
            with connection.begin():  # one snapshot for every table
                revision = current_revision(connection)
                if revision is None:
                    raise ArchiveError(f"{redacted(database_url)} has no Alembic revision: not a {service} database")
                tables = typed_tables(connection, schema.metadata)
                entries = [_export_table(connection, table, Path(scratch)) for table in tables]
            manifest = {
                "format": FORMAT, "format_version": FORMAT_VERSION, "service": service,
                "operator": dict(operator or {}), "alembic_revision": revision,
                "installed_head": schema.head(), "source_dialect": connection.dialect.name,
                "exported_at": dt.datetime.now(dt.timezone.utc).isoformat().replace("+00:00", "Z"),
                "shared_version": SHARED_VERSION, "tables": entries,
                "row_counts": {e["name"]: e["rows"] for e in entries},
            }
            manifest_bytes = json.dumps(manifest, indent=2, sort_keys=True).encode("utf-8")
            out.parent.mkdir(parents=True, exist_ok=True)
            partial = out.with_name(out.name + ".partial")
            with tarfile.open(partial, "w:gz") as tar:
                _add_bytes(tar, MANIFEST, manifest_bytes)
                _add_bytes(tar, MANIFEST_CHECKSUM, (hashlib.sha256(manifest_bytes).hexdigest() + "\n").encode())
                for entry in entries:
                    tar.add(Path(scratch) / entry["file"], arcname=entry["file"])
            partial.replace(out)  # never leave a half-written archive under the final name
    finally:
        database.dispose()
    return manifest


def _export_table(connection, table: sa.Table, scratch: Path) -> dict:
    columns = [(column.name, kind_of(column)) for column in table.columns]
    primary_key = [c.name for c in table.primary_key.columns]
    query = sa.select(table)
    if table.name == OUTBOX and "sent_at" in table.columns:
        query = query.where(table.c.sent_at.is_(None))
    order = [table.c[name] for name in primary_key] or list(table.columns)
    query = query.order_by(*order)
    relative = f"tables/{table.name}.jsonl"
    path = scratch / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = 0
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        result = connection.execution_options(stream_results=True, yield_per=INSERT_CHUNK).execute(query)
        for row in result:
            mapping = row._mapping
            record = {name: encode(kind, mapping[name]) for name, kind in columns}
            handle.write(json.dumps(record, ensure_ascii=False, sort_keys=True, separators=(",", ":")))
            handle.write("\n")
            rows += 1
    entry = {"name": table.name, "file": relative, "rows": rows, "sha256": _sha256(path),
             "columns": [{"name": n, "kind": k} for n, k in columns], "primary_key": primary_key}
    if table.name == OUTBOX:
        entry["only_unsent"] = True
    return entry


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = int(dt.datetime.now().timestamp())
    tar.addfile(info, io.BytesIO(data))


# -- reading and verifying -----------------------------------------------------------------------
class Archive:
    """An archive opened for reading; `verify()` checks every checksum and row count."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            self._tar = tarfile.open(self.path, "r:gz")
            self._members = {m.name: m for m in self._tar.getmembers() if m.isfile()}
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise ArchiveError(f"{self.path}: not a readable archive ({exc})") from exc
        raw = self._read(MANIFEST)
        recorded = self._read(MANIFEST_CHECKSUM).decode().strip()
        if hashlib.sha256(raw).hexdigest() != recorded:
            raise ArchiveError(f"{self.path}: manifest.json does not match its checksum (damaged)")
        self.manifest = json.loads(raw)
        if self.manifest.get("format") != FORMAT:
            raise ArchiveError(f"{self.path}: not a {FORMAT} (format {self.manifest.get('format')!r})")
        if self.manifest.get("format_version") != FORMAT_VERSION:
            raise ArchiveError(f"{self.path}: format version {self.manifest.get('format_version')} is not "
                               f"supported (this tool reads version {FORMAT_VERSION})")

    def close(self) -> None:
        self._tar.close()

    def __enter__(self) -> "Archive":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _read(self, name: str) -> bytes:
        member = self._members.get(name)
        if member is None:
            raise ArchiveError(f"{self.path}: {name} is missing")
        try:
            return self._tar.extractfile(member).read()
        except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
            raise ArchiveError(f"{self.path}: {name} cannot be read ({exc})") from exc

    def _stream(self, name: str):
        member = self._members.get(name)
        if member is None:
            raise ArchiveError(f"{self.path}: {name} is missing")
        return self._tar.extractfile(member)

    def verify(self) -> None:
        """Raise `ArchiveError` naming the first file whose checksum or row count is wrong."""
        for entry in self.manifest["tables"]:
            digest, rows = hashlib.sha256(), 0
            try:
                with self._stream(entry["file"]) as handle:
                    for block in iter(lambda: handle.read(1 << 20), b""):
                        digest.update(block)
                        rows += block.count(b"\n")
            except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
                raise ArchiveError(f"{self.path}: {entry['file']} cannot be read ({exc})") from exc
            if digest.hexdigest() != entry["sha256"]:
                raise ArchiveError(f"{self.path}: {entry['file']} does not match its SHA-256 (damaged)")
            if rows != entry["rows"]:
                raise ArchiveError(f"{self.path}: {entry['file']} holds {rows} rows, the manifest says "
                                   f"{entry['rows']}")

    def rows(self, entry: Mapping[str, Any]) -> Iterable[dict]:
        """The rows of one table, streamed (call `verify()` first)."""
        with self._stream(entry["file"]) as handle:
            for line in io.TextIOWrapper(handle, encoding="utf-8"):
                if line.strip():
                    yield json.loads(line)


# -- import -----------------------------------------------------------------------------------------
def import_service(service: str, database_url: str, archive_path: str | Path, *,
                   extra_rows: Callable[[sa.engine.Connection, dict[str, sa.Table]], dict] | None = None,
                   schema: ServiceSchema | None = None) -> dict:
    """Load an archive into an empty database of `service`; returns what was loaded.

    `extra_rows(connection, tables)` runs inside the loading transaction after
    the rows (and sequences) are in; the handover uses it to write its event to
    the outbox in the same commit as the state, so it is published exactly once.
    """
    schema = schema or ServiceSchema.of(service)
    with Archive(archive_path) as archive:
        manifest = archive.manifest
        if manifest["service"] != service:
            raise ArchiveError(f"{archive.path} is an archive of {manifest['service']}, not of {service}")
        archive.verify()
        revision = manifest["alembic_revision"]
        if not schema.knows_revision(revision):
            raise ImportRefused(f"the archive is at {service} revision {revision!r}, which the installed "
                                f"{service} (head {schema.head()!r}) does not know: install the version that "
                                "wrote it, or a later one, before importing")
        database = Database(database_url)
        try:
            _refuse_non_empty(database, revision)
            schema.upgrade(database, revision)
            extra: dict = {}
            loaded: dict[str, int] = {}
            with database.engine.begin() as connection:
                tables = {t.name: t for t in typed_tables(connection, schema.metadata)}
                for entry in manifest["tables"]:
                    table = tables.get(entry["name"])
                    if table is None:
                        raise ImportRefused(f"table {entry['name']} of the archive does not exist at revision "
                                            f"{revision} of the installed {service}")
                    loaded[entry["name"]] = _load_table(connection, table, entry, archive.rows(entry))
                sequences = _reset_sequences(connection, tables.values())
                if extra_rows is not None:
                    extra = extra_rows(connection, tables) or {}
            head = schema.head()
            schema.upgrade(database, head)
        finally:
            database.dispose()
    return {
        "service": service, "database": redacted(database_url), "archive": str(archive_path),
        "from_operator": manifest.get("operator", {}).get("name"), "archive_revision": revision,
        "migrated_to": head, "rows_loaded": loaded, "inbox_events": loaded.get(INBOX, 0),
        "outbox_unsent_events": loaded.get(OUTBOX, 0), "sequences_reset": sequences, **extra,
    }


def _refuse_non_empty(database: Database, archive_revision: str) -> None:
    with database.engine.connect() as connection:
        revision = current_revision(connection)
        if revision is not None and revision != archive_revision:
            raise ImportRefused(f"the target database is already at revision {revision!r}; import needs an empty "
                                f"database, or one at the archive's revision {archive_revision!r} with no rows")
        inspector = sa.inspect(connection)
        for name in inspector.get_table_names():
            if name == ALEMBIC_VERSION:
                continue
            count = connection.execute(sa.select(sa.func.count()).select_from(sa.table(name))).scalar_one()
            if count:
                raise ImportRefused(f"the target database is not empty: table {name} holds {count} rows")


def _load_table(connection, table: sa.Table, entry: Mapping[str, Any], rows: Iterable[dict]) -> int:
    kinds = {c["name"]: c["kind"] for c in entry["columns"]}
    missing = [name for name in kinds if name not in table.columns]
    if missing:
        raise ImportRefused(f"{table.name}: columns {missing} of the archive are not in the target table")
    target_kinds = {column.name: _safe_kind(column) for column in table.columns}
    count = 0
    chunk: list[dict] = []
    for row in rows:
        chunk.append({name: decode(kinds[name], value, target_kinds.get(name)) for name, value in row.items()})
        if len(chunk) >= INSERT_CHUNK:
            connection.execute(table.insert(), chunk)
            count += len(chunk)
            chunk = []
    if chunk:
        connection.execute(table.insert(), chunk)
        count += len(chunk)
    return count


def _safe_kind(column: sa.Column) -> str | None:
    try:
        return kind_of(column)
    except UnsupportedColumn:
        return None


def _reset_sequences(connection, tables: Iterable[sa.Table]) -> dict[str, int]:
    """After explicit ids were loaded, make PostgreSQL's sequences hand out ids above them."""
    if connection.dialect.name != "postgresql":
        return {}  # SQLite's INTEGER PRIMARY KEY continues from max(rowid) by itself
    moved = {}
    for table in tables:
        for column in table.primary_key.columns:
            if _safe_kind(column) != "integer":
                continue
            sequence = connection.execute(sa.text("SELECT pg_get_serial_sequence(:t, :c)"),
                                          {"t": f'"{table.name}"', "c": column.name}).scalar()
            if sequence is None:
                continue
            highest = connection.execute(sa.select(sa.func.max(column))).scalar()
            following = int(highest or 0) + 1
            connection.execute(sa.text("SELECT setval(CAST(:s AS regclass), :v, false)"),
                               {"s": sequence, "v": following})
            moved[f"{table.name}.{column.name}"] = following
    return moved


# -- erasing what the old operator keeps ------------------------------------------------------------
def personal_data_of(schema: ServiceSchema) -> dict[str, tuple[str, ...]]:
    """The service's own `PERSONAL_DATA` declaration (in `<service>/adapters/tables.py`).

    Refused when the service declares none: an erase that guesses would either miss
    personal data or destroy what is not. Every declared column must exist in the
    service's tables, so a renamed column cannot silently stop being erased.
    """
    if schema.personal_data is None:
        raise LookupError(f"{schema.name}.adapters.tables declares no PERSONAL_DATA = {{table: [columns]}}; "
                          "declare it (an empty dict if the service holds none) before erasing")
    unknown = [f"{t}.{c}" for t, columns in schema.personal_data.items() for c in columns
               if t not in schema.metadata.tables or c not in schema.metadata.tables[t].columns]
    if unknown:
        raise LookupError(f"{schema.name}.adapters.tables PERSONAL_DATA names columns it does not have: {unknown}")
    return dict(schema.personal_data)


def erase_personal_data(service: str, database_url: str, *, archive_path: str | Path,
                        schema: ServiceSchema | None = None) -> dict:
    """Erase the service's declared personal columns (`PERSONAL_DATA`) and the outbox's copies of
    payloads; returns what was erased.

    Refused unless `archive_path` is a verified archive of this service, so the
    old operator cannot erase a function's only copy by mistake. Values in a
    nullable column become NULL, in a NOT NULL column the marker `[erased]`. The
    outbox goes whole (its bodies copy the payloads, names included), and so do the
    answers kept for retried requests (`idempotency_keys`: they can name people, and
    retries go to the new operator now). The
    database is vacuumed afterwards so the old values do not linger in free pages.
    """
    schema = schema or ServiceSchema.of(service)
    with Archive(archive_path) as archive:
        if archive.manifest["service"] != service:
            raise ArchiveError(f"{archive_path} is an archive of {archive.manifest['service']}, not of {service}")
        archive.verify()
    declared = personal_data_of(schema)
    database = Database(database_url)
    report: dict[str, Any] = {"service": service, "database": redacted(database_url), "archive": str(archive_path),
                              "declared": {t: list(c) for t, c in sorted(declared.items())},
                              "erased": [], "skipped": []}
    try:
        with database.transaction() as session:
            connection = session.connection()
            tables = {t.name: t for t in typed_tables(connection, schema.metadata)}
            for table_name, columns in sorted(declared.items()):
                table = tables.get(table_name)
                for column_name in columns:
                    if table is None or column_name not in table.columns:
                        report["skipped"].append({"table": table_name, "column": column_name,
                                                  "reason": "not in this database"})
                        continue
                    column = table.c[column_name]
                    replacement = None if column.nullable else _marker(column)
                    condition = column.is_not(None)
                    if replacement is not None:
                        condition = sa.and_(condition, column != replacement)
                    count = session.execute(sa.update(table).where(condition).values({column_name: replacement})
                                            ).rowcount
                    report["erased"].append({"table": table_name, "column": column_name, "values": int(count),
                                             "replaced_with": replacement})
            outbox = tables.get(OUTBOX)
            report["outbox_events_deleted"] = int(session.execute(sa.delete(outbox)).rowcount) if outbox is not None else 0
            stored = tables.get(STORED_RESPONSES)
            report["stored_responses_deleted"] = (int(session.execute(sa.delete(stored)).rowcount)
                                                  if stored is not None else 0)
            session.commit()
        report["vacuumed"] = _vacuum(database, [t["table"] for t in report["erased"]] + [OUTBOX]
                                     + ([STORED_RESPONSES] if STORED_RESPONSES in tables else []))
    finally:
        database.dispose()
    report["values_erased"] = sum(e["values"] for e in report["erased"])
    return report


def _marker(column: sa.Column) -> str:
    length = getattr(column.type, "length", None)
    return ERASED[:length] if length else ERASED


def _vacuum(database: Database, tables: list[str]) -> bool:
    engine = sa.create_engine(database.url, isolation_level="AUTOCOMMIT", hide_parameters=True)
    try:
        with engine.connect() as connection:
            if database.is_sqlite:
                connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
                connection.exec_driver_sql("VACUUM")
                connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            else:
                for name in sorted(set(tables)):
                    connection.exec_driver_sql(f'VACUUM FULL "{name}"')
        return True
    finally:
        engine.dispose()
