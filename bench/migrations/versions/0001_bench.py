"""outbox, inbox, the producer's ticks and the sink's effects

Revision ID: 0001
Revises:
"""
from alembic import op
import sqlalchemy as sa

from shared.messaging_tables import create_messaging_tables, drop_messaging_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    create_messaging_tables(op)
    op.create_table(
        "bench_ticks",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run", sa.String(20), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("value", sa.String(40), nullable=False),
    )
    op.create_table(
        "bench_effects",
        sa.Column("event_id", sa.String(36), primary_key=True),
        sa.Column("run", sa.String(20), nullable=False, index=True),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("produced_at", sa.Float, nullable=False),
        sa.Column("applied_at", sa.Float, nullable=False),
    )


def downgrade():
    op.drop_table("bench_effects")
    op.drop_table("bench_ticks")
    drop_messaging_tables(op)
