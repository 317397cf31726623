"""members copy, MAT billing settings, charges, outbox and inbox

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
        "members",
        sa.Column("urn", sa.String(6), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("is_academy", sa.Boolean, nullable=False),
        sa.Column("mat_id", sa.String(20)),
        sa.Column("mat_name", sa.String(200)),
    )
    op.create_table(
        "mat_billing",
        sa.Column("mat_id", sa.String(20), primary_key=True),
        sa.Column("pays_centrally", sa.Boolean, nullable=False),
    )
    op.create_table(
        "charges",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("subscription_id", sa.String(36), nullable=False),
        sa.Column("urn", sa.String(6), nullable=False, index=True),
        sa.Column("payer_kind", sa.String(10), nullable=False),
        sa.Column("payer_id", sa.String(20), nullable=False, index=True),
        sa.Column("payer_name", sa.String(200), nullable=False),
        sa.Column("offering_code", sa.String(40), nullable=False),
        sa.Column("offering_name", sa.String(200), nullable=False),
        sa.Column("service_area", sa.String(40), nullable=False),
        sa.Column("period_start", sa.Date, nullable=False),
        sa.Column("period_end", sa.Date, nullable=False),
        sa.Column("amount_pence", sa.BigInteger, nullable=False),
        sa.Column("vat_treatment", sa.String(10), nullable=False),
        sa.Column("census_date", sa.Date, nullable=False),
        sa.Column("number_on_roll", sa.Integer, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.UniqueConstraint("subscription_id", "period_start", name="uq_charges_subscription_period"),
    )


def downgrade():
    for table in ("charges", "mat_billing", "members"):
        op.drop_table(table)
    drop_messaging_tables(op)
