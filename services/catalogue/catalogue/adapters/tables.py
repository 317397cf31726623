"""Catalogue's tables (SQLAlchemy Core); the migrations create exactly these."""
import sqlalchemy as sa

from shared.jobs import define_job_runs_table
from shared.audit import PERSONAL_COLUMNS as AUDIT_PERSONAL_COLUMNS, define_audit_table
from shared.idempotency import define_idempotency_table
from shared.messaging_tables import define_messaging_tables

metadata = sa.MetaData()

# Who did what (shared.audit): every state-changing request and every refusal of access.
audit_log = define_audit_table(metadata)
outbox, inbox = define_messaging_tables(metadata)
# POSTs that record money or purchases answer a retried Idempotency-Key once (shared.idempotency)
idempotency_keys = define_idempotency_table(metadata)
job_runs = define_job_runs_table(metadata)  # renewal rounds run as jobs (shared.jobs)

# The catalogue's copy of a member, kept facet by facet whatever order membership's events
# arrive in (`catalogue.domain.member_copy`): each *_version is the number (in the school's
# aggregate) of the event that set the facet, NULL before sequencing. The row is created by the
# first event about the school, so a facet not yet heard of is NULL and the status `unknown`.
members = sa.Table(
    "members", metadata,
    sa.Column("urn", sa.String(6), primary_key=True),
    sa.Column("name", sa.String(200)),
    sa.Column("establishment_type", sa.String(60)),
    sa.Column("phase", sa.String(30)),
    sa.Column("is_academy", sa.Boolean),
    sa.Column("mat_id", sa.String(20)),
    sa.Column("mat_name", sa.String(200)),
    sa.Column("number_on_roll", sa.Integer),
    sa.Column("census_date", sa.Date),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("joined_on", sa.Date),
    sa.Column("left_on", sa.Date),
    sa.Column("predecessor_urn", sa.String(6)),
    sa.Column("successor_urn", sa.String(6)),
    sa.Column("details_version", sa.Integer),
    sa.Column("roll_version", sa.Integer),
    sa.Column("joined_version", sa.Integer),
    sa.Column("standing_version", sa.Integer),
)

# One row per person and role at a member; only what authorising a purchase needs. `version`:
# the number (in the person's aggregate) of the role change that set the row.
contacts = sa.Table(
    "contacts", metadata,
    sa.Column("contact_id", sa.String(36), primary_key=True),
    sa.Column("urn", sa.String(6), primary_key=True),
    sa.Column("role", sa.String(40), primary_key=True),
    sa.Column("display_name", sa.String(200), nullable=False),
    sa.Column("may_commit_spending", sa.Boolean, nullable=False),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("effective_date", sa.Date, nullable=False),
    sa.Column("version", sa.Integer),
)

# Tombstones: a person erased stays erased; a role change arriving later, whatever its number,
# is recorded as seen without effect. Holds no personal data (the id is membership's).
erased_contacts = sa.Table(
    "erased_contacts", metadata,
    sa.Column("contact_id", sa.String(36), primary_key=True),
    sa.Column("version", sa.Integer),
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
    sa.Column("eligible_types", sa.String(400), nullable=False, server_default=""),
    sa.Column("capacity", sa.Integer),
    sa.Column("withdrawn_on", sa.Date),
    # sold only whole: a purchase during the period still covers (and pays for) all of it
    sa.Column("sold_whole", sa.Boolean, nullable=False, server_default=sa.false()),
)

editions = sa.Table(
    "editions", metadata,
    sa.Column("offering_code", sa.String(40), sa.ForeignKey("offerings.code"), primary_key=True),
    sa.Column("year", sa.Integer, primary_key=True),
    sa.Column("terms", sa.JSON, nullable=False),
    sa.Column("on_sale", sa.Boolean, nullable=False),
    sa.Column("entitlements", sa.JSON, nullable=False, server_default="[]"),
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
    sa.Column("quantity", sa.Integer, nullable=False, server_default="1"),
    sa.Column("entitlements", sa.JSON, nullable=False, server_default="[]"),
    sa.Column("purchased_by_contact_id", sa.String(36)),
    sa.Column("continues_subscription_id", sa.String(36)),
    sa.Column("origin", sa.String(20), nullable=False, server_default="purchase"),
    sa.Column("auto_renew", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("covered_until", sa.Date, nullable=False),
    sa.Column("end_reason", sa.String(20)),
    sa.Column("ended_from", sa.Date),
    sa.Column("cancelled_on", sa.Date),
    # a bundle's included offerings with their share of its price (`subscription_started` components)
    sa.Column("components", sa.JSON, nullable=False, server_default="[]"),
    sa.Index("ix_subscriptions_offering_period", "offering_code", "period_start"),
    sa.Index("ix_subscriptions_due", "period_end"),
    # one renewal and one conversion move per SLA, even if a round or an event runs twice
    sa.Index("ux_subscriptions_continuation", "continues_subscription_id", "origin", unique=True),
)


# Personal data this service holds (`partnership-ops erase` clears exactly these after a
# handover): contacts' names, and the name of the person who bought an SLA. Members and
# MATs are organisations: their names are not personal data.
PERSONAL_DATA = {"audit_log": AUDIT_PERSONAL_COLUMNS, "contacts": ["display_name"], "subscriptions": ["purchased_by_name"]}
