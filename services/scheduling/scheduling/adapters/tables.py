"""Scheduling's tables (SQLAlchemy Core); the migrations create exactly these."""
import sqlalchemy as sa

from shared.messaging_tables import define_messaging_tables

metadata = sa.MetaData()
outbox, inbox = define_messaging_tables(metadata)

schools = sa.Table(
    "schools", metadata,
    sa.Column("urn", sa.String(6), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("phase", sa.String(30), nullable=False),
    sa.Column("mat_id", sa.String(20)),
    sa.Column("postcode", sa.String(10), nullable=False),
    sa.Column("active", sa.Boolean, nullable=False),
)

eligibility = sa.Table(
    "eligibility", metadata,
    sa.Column("subscription_id", sa.String(36), primary_key=True),
    sa.Column("urn", sa.String(6), nullable=False, index=True),
    sa.Column("offering_code", sa.String(40), nullable=False),
    sa.Column("service_area", sa.String(40), nullable=False),
    sa.Column("period_start", sa.Date, nullable=False),
    sa.Column("period_end", sa.Date, nullable=False),
)
