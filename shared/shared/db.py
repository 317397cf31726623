"""A service's own database: SQLite by default, PostgreSQL when DATABASE_URL says so.

Guarantees:
- SQLite runs in WAL mode and every write transaction starts with
  `BEGIN IMMEDIATE`, taken first through an in-process lock (green under
  eventlet) so two green threads never wait on each other inside SQLite, and
  retried with a cooperative sleep while another *process* holds the lock.
  The lock timeout counts from when the writer asked for its transaction, so
  writers queued in-process behind one that timed out fail promptly instead of
  waiting the whole timeout again one after another.
  Read-only sessions use a separate engine with a deferred BEGIN and never wait.
- PostgreSQL connections are made cooperative under eventlet (psycogreen) so
  one slow query never stalls the service's other green threads.
- Migrations are Alembic's, one history per service, applied by `upgrade()`.
- No engine puts a statement's parameters into an error or a log line
  (`hide_parameters=True`): they can carry personal data (a contact's name or email)
  and logs are kept longer and read more widely than the database.
"""
from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
import uuid
from pathlib import Path
from typing import Iterator

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)

SQLITE_LOCK_TIMEOUT_SECONDS = 5.0


class DatabaseLocked(OperationalError):
    """The database stayed locked by another process for longer than the lock timeout."""


def _eventlet_active() -> bool:
    try:
        from eventlet import patcher

        return patcher.is_monkey_patched("socket")
    except ImportError:  # pragma: no cover
        return False


_psycopg_patched = False


def _make_psycopg_green() -> None:
    global _psycopg_patched
    if not _psycopg_patched and _eventlet_active():
        from psycogreen.eventlet import patch_psycopg

        patch_psycopg()
        _psycopg_patched = True


def _is_locked_error(exc: BaseException) -> bool:
    return "database is locked" in str(exc) or "database is busy" in str(exc)


def _configure_sqlite(engine: Engine, *, immediate: bool, lock_timeout: float, asked=None) -> None:
    """`asked.at`, if set, is when the current (green) thread asked for its write transaction."""
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        # Leave transaction control to the `begin` listener below (pysqlite's own
        # implicit BEGIN would defer locking to the first write).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        # 32 MiB of page cache (the default is 2 MiB): a national billing run over 240,000
        # charges thrashed the small cache; pages are only held as they are read.
        cursor.execute("PRAGMA cache_size=-32768")
        # SQLite's own busy wait sleeps in C and would freeze every green thread;
        # waiting happens in `_on_begin` instead, cooperatively.
        cursor.execute("PRAGMA busy_timeout=0")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection):
        statement = "BEGIN IMMEDIATE" if immediate else "BEGIN"
        asked_at = getattr(asked, "at", None)
        deadline = (asked_at if asked_at is not None else time.monotonic()) + lock_timeout
        delay = 0.002
        while True:
            try:
                connection.exec_driver_sql(statement)
                return
            except OperationalError as exc:
                if not _is_locked_error(exc) or time.monotonic() >= deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 0.1)


class Database:
    """Engines and sessions of one service's database.

    Use `transaction()` for work that writes (it serialises writers on SQLite)
    and `reader()` for queries.
    """

    def __init__(self, url: str, *, lock_timeout: float = SQLITE_LOCK_TIMEOUT_SECONDS, echo: bool = False):
        self.url = make_url(url)
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        if self.is_sqlite:
            if self.url.database and self.url.database != ":memory:":
                Path(self.url.database).parent.mkdir(parents=True, exist_ok=True)
            connect_args = {"check_same_thread": False}
            self.engine = create_engine(self.url, connect_args=connect_args, echo=echo, pool_size=10,
                                        hide_parameters=True)
            self.read_engine = create_engine(self.url, connect_args=connect_args, echo=echo, pool_size=10,
                                             hide_parameters=True)
            # Created after eventlet's monkey patching, so green-local there.
            self._writer_asked = threading.local()
            _configure_sqlite(self.engine, immediate=True, lock_timeout=lock_timeout, asked=self._writer_asked)
            _configure_sqlite(self.read_engine, immediate=False, lock_timeout=lock_timeout)
        else:
            _make_psycopg_green()
            self.engine = create_engine(self.url, echo=echo, pool_pre_ping=True, pool_size=10, max_overflow=10,
                                        hide_parameters=True)
            self.read_engine = self.engine
        # Created after eventlet's monkey patching, so this is a green lock there.
        self._writer = threading.Lock() if self.is_sqlite else None
        self._sessions = sessionmaker(bind=self.engine, expire_on_commit=False)
        self._read_sessions = sessionmaker(bind=self.read_engine, expire_on_commit=False)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session whose transaction is committed by the caller; rolled back if it is not."""
        lock = self._writer
        if lock is not None:
            self._writer_asked.at = time.monotonic()
            lock.acquire()
        try:
            session = self._sessions()
            try:
                yield session
            finally:
                session.rollback()
                session.close()
        finally:
            if lock is not None:
                self._writer_asked.at = None
                lock.release()

    @contextlib.contextmanager
    def reader(self) -> Iterator[Session]:
        """A read-only session; never blocks behind writers."""
        session = self._read_sessions()
        try:
            yield session
        finally:
            session.rollback()
            session.close()

    def ping(self) -> None:
        """Raise unless the database answers a trivial query."""
        with self.read_engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    def _alembic_config(self, script_location: str):
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", script_location)
        # Alembic's config is a ConfigParser: a `%` (an escaped path in `sslrootcert=`, a password) must be doubled.
        config.set_main_option("sqlalchemy.url", self.url.render_as_string(hide_password=False).replace("%", "%%"))
        return config

    def upgrade(self, script_location: str, revision: str = "head") -> None:
        """Apply the service's Alembic migrations up to `revision` (default: head), in one transaction.

        On PostgreSQL the transaction first takes an advisory lock named after the migrations, so
        replicas (or a migration job) starting together run them one after another: the second
        finds the schema at head and does nothing, instead of failing on a table the first created."""
        from alembic import command

        config = self._alembic_config(script_location)
        with self.engine.begin() as connection:
            if self.url.get_backend_name() == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(hashtext(:name))"),
                                   {"name": f"alembic:{script_location}"})
            config.attributes["connection"] = connection
            command.upgrade(config, revision)

    def migrate(self, script_location: str, action: str, revision: str) -> None:
        """Run Alembic's `upgrade` or `downgrade` to `revision` in one transaction (migration tests step
        a database through revisions; a service uses `upgrade`)."""
        from alembic import command

        config = self._alembic_config(script_location)
        with self.engine.begin() as connection:
            config.attributes["connection"] = connection
            getattr(command, action)(config, revision)

    def revisions(self, script_location: str) -> tuple[str | None, str | None]:
        """(the revision the database is at, the head revision of the code's migrations)."""
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory

        head = ScriptDirectory.from_config(self._alembic_config(script_location)).get_current_head()
        with self.engine.connect() as connection:
            current = MigrationContext.configure(connection).get_current_revision()
        return current, head

    def dispose(self) -> None:
        self.engine.dispose()
        if self.read_engine is not self.engine:
            self.read_engine.dispose()


def ensure_postgres_database(url: str) -> None:
    """Create the PostgreSQL database named in `url` if it does not exist (tooling, not services)."""
    target = make_url(url)
    if target.get_backend_name() != "postgresql":
        return
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT", hide_parameters=True)
    try:
        with admin.connect() as connection:
            exists = connection.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": target.database}
            ).scalar()
            if not exists:
                connection.exec_driver_sql(f'CREATE DATABASE "{target.database}"')
    finally:
        admin.dispose()


def drop_postgres_database(url: str) -> None:
    """Drop the PostgreSQL database named in `url`, disconnecting its sessions (tests, tooling)."""
    target = make_url(url)
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT", hide_parameters=True)
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)')
    finally:
        admin.dispose()


@contextlib.contextmanager
def scratch_database(backend: str, folder: Path, label: str, *, migrations: str | None = None,
                     postgres_admin_url: str | None = None) -> Iterator[Database]:
    """A new, empty database for one test or benchmark, removed afterwards (tests, tooling).

    `backend` "sqlite": a file in `folder`; "postgresql": a uniquely named database on the
    server of `postgres_admin_url` (default: $TEST_POSTGRES_URL, else the local server),
    dropped on exit. With `migrations`, the Alembic history there is applied first.
    """
    name = f"t_{label}_{uuid.uuid4().hex[:10]}"
    if backend == "sqlite":
        url = f"sqlite:///{Path(folder) / f'{name}.db'}"
    elif backend == "postgresql":
        admin = postgres_admin_url or os.environ.get(
            "TEST_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
        url = admin.rsplit("/", 1)[0] + f"/{name}"
        ensure_postgres_database(url)
    else:
        raise ValueError(f"backend is sqlite or postgresql, not {backend!r}")
    database = Database(url)
    try:
        if migrations:
            database.upgrade(migrations)
        yield database
    finally:
        database.dispose()
        if backend == "postgresql":
            drop_postgres_database(url)
