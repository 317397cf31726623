"""A throwaway service schema with a column of every kind the archive carries, and its
one-revision Alembic history written to a folder: enough to prove exact round trips
without depending on what today's services happen to store."""
from __future__ import annotations

import textwrap
from pathlib import Path

import sqlalchemy as sa

from partnership_ops.archive import ServiceSchema
from shared.messaging_tables import define_messaging_tables

REVISION = "p001"


def probe_metadata() -> sa.MetaData:
    metadata = sa.MetaData()
    define_messaging_tables(metadata)
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


ENV = """
from shared.migrations import run_migrations
from tests.handover.probe_service import probe_metadata

run_migrations(probe_metadata())
"""

VERSION = f'''
"""probe tables"""
from alembic import op

revision = "{REVISION}"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    from tests.handover.probe_service import probe_metadata

    probe_metadata().create_all(op.get_bind())


def downgrade():
    pass
'''


def probe_schema(folder: Path, personal_data=None) -> ServiceSchema:
    migrations = folder / "probe_migrations"
    (migrations / "versions").mkdir(parents=True, exist_ok=True)
    (migrations / "env.py").write_text(textwrap.dedent(ENV))
    (migrations / "script.py.mako").write_text("")
    (migrations / "versions" / f"{REVISION}_probe.py").write_text(textwrap.dedent(VERSION))
    return ServiceSchema(name="probe", metadata=probe_metadata(), migrations=str(migrations),
                         personal_data=personal_data)
