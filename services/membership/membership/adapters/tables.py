"""Membership's tables (SQLAlchemy Core); the migrations create exactly these."""
import sqlalchemy as sa

from shared.messaging_tables import ID_TYPE, define_messaging_tables

metadata = sa.MetaData()
outbox, inbox = define_messaging_tables(metadata)

members = sa.Table(
    "members",
    metadata,
    sa.Column("id", ID_TYPE, primary_key=True, autoincrement=True),
    sa.Column("urn", sa.String(6), nullable=False),
    sa.Column("dfe_number", sa.String(8), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("establishment_type", sa.String(60), nullable=False),
    sa.Column("phase", sa.String(30), nullable=False),
    sa.Column("local_authority", sa.String(100), nullable=False),
    sa.Column("postcode", sa.String(10), nullable=False),
    sa.Column("number_on_roll", sa.Integer, nullable=False),
    sa.Column("census_date", sa.Date, nullable=False),
    sa.Column("mat_id", sa.String(20)),
    sa.Column("mat_name", sa.String(200)),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("joined_on", sa.Date, nullable=False),
    sa.Column("left_on", sa.Date),
    # One open record per URN, enforced by the database as well as the domain.
    sa.Index("uq_members_open_urn", "urn", unique=True,
             sqlite_where=sa.text("left_on IS NULL"), postgresql_where=sa.text("left_on IS NULL")),
)
