"""schools copy, eligibility, outbox and inbox

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
        "schools",
        sa.Column("urn", sa.String(6), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("phase", sa.String(30), nullable=False),
        sa.Column("mat_id", sa.String(20)),
        sa.Column("postcode", sa.String(10), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
    )
    op.create_table(
        "eligibility",
        sa.Column("subscription_id", sa.String(36), primary_key=True),
        sa.Column("urn", sa.String(6), nullable=False, index=True),
        sa.Column("offering_code", sa.String(40), nullable=False),
        sa.Column("service_area", sa.String(40), nullable=False),
        sa.Column("period_start", sa.Date, nullable=False),
        sa.Column("period_end", sa.Date, nullable=False),
    )


def downgrade():
    op.drop_table("eligibility")
    op.drop_table("schools")
    drop_messaging_tables(op)
