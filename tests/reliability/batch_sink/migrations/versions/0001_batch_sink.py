"""outbox, inbox, event sequences and the batch sink's effects

Revision ID: 0001
Revises:
"""
from alembic import op
import sqlalchemy as sa

from shared.messaging_tables import add_event_sequencing, create_messaging_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    create_messaging_tables(op)
    add_event_sequencing(op)
    op.create_table(
        "batch_effects",
        sa.Column("event_id", sa.String(36), primary_key=True),
        sa.Column("worker", sa.String(36), nullable=False),
        sa.Column("aggregate", sa.String(100), nullable=False),
        sa.Column("sequence", sa.Integer, nullable=False),
        sa.Column("value", sa.String(100), nullable=False),
    )
    op.create_table(
        "batch_latest",
        sa.Column("aggregate", sa.String(100), primary_key=True),
        sa.Column("sequence", sa.Integer, nullable=False),
        sa.Column("value", sa.String(100), nullable=False),
    )


def downgrade():
    raise NotImplementedError
