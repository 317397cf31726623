"""Billing's tables (SQLAlchemy Core); the migrations create exactly these."""
import sqlalchemy as sa

from shared.messaging_tables import define_messaging_tables

metadata = sa.MetaData()
outbox, inbox = define_messaging_tables(metadata)

members = sa.Table(
    "members", metadata,
    sa.Column("urn", sa.String(6), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("is_academy", sa.Boolean, nullable=False),
    sa.Column("mat_id", sa.String(20)),
    sa.Column("mat_name", sa.String(200)),
)

mat_billing = sa.Table(
    "mat_billing", metadata,
    sa.Column("mat_id", sa.String(20), primary_key=True),
    sa.Column("pays_centrally", sa.Boolean, nullable=False),
)

charges = sa.Table(
    "charges", metadata,
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
    # A subscription's period is charged once, whatever the broker does.
    sa.UniqueConstraint("subscription_id", "period_start", name="uq_charges_subscription_period"),
)
