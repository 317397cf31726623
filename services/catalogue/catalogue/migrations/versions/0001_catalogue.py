"""members copy, offerings, editions, subscriptions, outbox and inbox

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
        sa.Column("establishment_type", sa.String(60), nullable=False),
        sa.Column("phase", sa.String(30), nullable=False),
        sa.Column("is_academy", sa.Boolean, nullable=False),
        sa.Column("mat_id", sa.String(20)),
        sa.Column("mat_name", sa.String(200)),
        sa.Column("number_on_roll", sa.Integer, nullable=False),
        sa.Column("census_date", sa.Date, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("joined_on", sa.Date, nullable=False),
    )
    op.create_table(
        "offerings",
        sa.Column("code", sa.String(40), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("service_area", sa.String(40), nullable=False),
        sa.Column("provider", sa.String(100), nullable=False),
        sa.Column("vat_treatment", sa.String(10), nullable=False),
        sa.Column("eligible_phases", sa.String(200), nullable=False),
        sa.Column("description", sa.Text, nullable=False, server_default=""),
    )
    op.create_table(
        "editions",
        sa.Column("offering_code", sa.String(40), sa.ForeignKey("offerings.code"), primary_key=True),
        sa.Column("year", sa.Integer, primary_key=True),
        sa.Column("terms", sa.JSON, nullable=False),
        sa.Column("on_sale", sa.Boolean, nullable=False),
    )
    op.create_table(
        "subscriptions",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("urn", sa.String(6), nullable=False, index=True),
        sa.Column("offering_code", sa.String(40), sa.ForeignKey("offerings.code"), nullable=False),
        sa.Column("edition_year", sa.Integer, nullable=False),
        sa.Column("payer_type", sa.String(20), nullable=False),
        sa.Column("period_start", sa.Date, nullable=False),
        sa.Column("period_end", sa.Date, nullable=False),
        sa.Column("years", sa.Integer, nullable=False),
        sa.Column("annual_price_pence", sa.BigInteger, nullable=False),
        sa.Column("breakdown", sa.JSON, nullable=False),
        sa.Column("census_date", sa.Date, nullable=False),
        sa.Column("number_on_roll", sa.Integer, nullable=False),
        sa.Column("po_number", sa.String(40)),
        sa.Column("purchased_by_name", sa.String(200), nullable=False),
        sa.Column("purchased_by_role", sa.String(40), nullable=False),
        sa.Column("purchased_on", sa.Date, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
    )


def downgrade():
    for table in ("subscriptions", "editions", "offerings", "members"):
        op.drop_table(table)
    drop_messaging_tables(op)
