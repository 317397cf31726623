"""Fixtures of partnership-ops' own tests: fresh SQLite and PostgreSQL databases, and a
throwaway service schema ("probe") with a column of every kind the archive carries and its
one-revision Alembic history written to a folder: enough to prove exact round trips
without depending on what today's services happen to store.

PostgreSQL is the one at `TEST_POSTGRES_URL` (default: the local server, user postgres);
each database is created for one test and dropped after it.
"""
from __future__ import annotations

import os
import textwrap
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from partnership_ops.archive import ServiceSchema
from shared.idempotency import define_idempotency_table
from shared.messaging_tables import define_messaging_tables

PG_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")


class Databases:
    """Fresh databases on one backend, named after what they are for; dropped on cleanup."""

    def __init__(self, backend: str, tmp_path: Path):
        self.backend = backend
        self.tmp_path = tmp_path
        self.created: list[str] = []

    def url(self, name: str) -> str:
        if self.backend == "sqlite":
            return f"sqlite:///{self.tmp_path / f'{name}-{uuid.uuid4().hex[:6]}.db'}"
        from shared.db import ensure_postgres_database

        url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/t_ops_{name}_{uuid.uuid4().hex[:10]}"
        ensure_postgres_database(url)
        self.created.append(url)
        return url

    def drop_all(self) -> None:
        from shared.db import drop_postgres_database

        for url in self.created:
            try:
                drop_postgres_database(url)
            except Exception:  # noqa: BLE001 - best effort cleanup
                pass


@pytest.fixture
def both(tmp_path):
    """One SQLite and one PostgreSQL `Databases`."""
    sqlite, postgresql = Databases("sqlite", tmp_path), Databases("postgresql", tmp_path)
    yield {"sqlite": sqlite, "postgresql": postgresql}
    postgresql.drop_all()


@pytest.fixture
def probe_schema():
    """`probe_schema(folder, personal_data=None)`: the probe's `ServiceSchema`, migrations in `folder`."""
    return make_probe_schema


# -- the probe service ------------------------------------------------------------------------------
REVISION = "p001"


def probe_metadata() -> sa.MetaData:
    metadata = sa.MetaData()
    define_messaging_tables(metadata)
    define_idempotency_table(metadata)  # stored answers to retried requests, which can name people
    sa.Table(
        "schools", metadata,
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("reference", sa.Uuid, nullable=False, unique=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("head_teacher", sa.String(200)),
        sa.Column("opened_on", sa.Date, nullable=False),
        sa.Column("inspected_at", sa.DateTime),
        sa.Column("inspected_at_utc", sa.DateTime(timezone=True)),
        sa.Column("opens_at", sa.Time),
        sa.Column("rate", sa.Numeric(12, 4)),
        sa.Column("ratio", sa.Float),
        sa.Column("is_academy", sa.Boolean, nullable=False),
        sa.Column("terms", sa.JSON),
        sa.Column("logo", sa.LargeBinary),
        sa.Column("notes", sa.Text),
    )
    sa.Table(
        "visits", metadata,
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("school_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), sa.ForeignKey("schools.id"),
                  nullable=False),
        sa.Column("visitor_name", sa.String(200), nullable=False),
        sa.Column("amount_pence", sa.BigInteger, nullable=False),
    )
    return metadata


# The Alembic scripts are loaded from files: they find this module by its own path.
PROBE_MODULE = Path(__file__).resolve()  # this conftest
LOAD_PROBE = f"""
import importlib.util
spec = importlib.util.spec_from_file_location("partnership_ops_probe_service", {str(PROBE_MODULE)!r})
probe_service = importlib.util.module_from_spec(spec)
spec.loader.exec_module(probe_service)
"""

ENV = LOAD_PROBE + """
from shared.migrations import run_migrations

run_migrations(probe_service.probe_metadata())
"""

VERSION = f'''
"""probe tables"""
from alembic import op
''' + LOAD_PROBE + f'''

revision = "{REVISION}"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    probe_service.probe_metadata().create_all(op.get_bind())


def downgrade():
    pass
'''


def make_probe_schema(folder: Path, personal_data=None) -> ServiceSchema:
    migrations = folder / "probe_migrations"
    (migrations / "versions").mkdir(parents=True, exist_ok=True)
    (migrations / "env.py").write_text(textwrap.dedent(ENV))
    (migrations / "script.py.mako").write_text("")
    (migrations / "versions" / f"{REVISION}_probe.py").write_text(textwrap.dedent(VERSION))
    return ServiceSchema(name="probe", metadata=probe_metadata(), migrations=str(migrations),
                         personal_data=personal_data)
