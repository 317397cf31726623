"""Catalogue's tables (SQLAlchemy Core); the migrations create exactly these."""
import sqlalchemy as sa

from shared.messaging_tables import define_messaging_tables

metadata = sa.MetaData()
outbox, inbox = define_messaging_tables(metadata)

members = sa.Table(
    "members", metadata,
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

offerings = sa.Table(
    "offerings", metadata,
    sa.Column("code", sa.String(40), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("service_area", sa.String(40), nullable=False),
    sa.Column("provider", sa.String(100), nullable=False),
    sa.Column("vat_treatment", sa.String(10), nullable=False),
    sa.Column("eligible_phases", sa.String(200), nullable=False),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
)

editions = sa.Table(
    "editions", metadata,
    sa.Column("offering_code", sa.String(40), sa.ForeignKey("offerings.code"), primary_key=True),
    sa.Column("year", sa.Integer, primary_key=True),
    sa.Column("terms", sa.JSON, nullable=False),
    sa.Column("on_sale", sa.Boolean, nullable=False),
)

subscriptions = sa.Table(
    "subscriptions", metadata,
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
