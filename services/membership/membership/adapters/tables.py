"""Membership's tables (SQLAlchemy Core); the migrations create exactly these."""
import sqlalchemy as sa

from shared.audit import PERSONAL_COLUMNS as AUDIT_PERSONAL_COLUMNS, define_audit_table
from shared.messaging_tables import ID_TYPE, define_messaging_tables

metadata = sa.MetaData()

# Who did what (shared.audit): every state-changing request and every refusal of access.
audit_log = define_audit_table(metadata)
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
    # first day no longer a member (events.md's effective_date of leaving)
    sa.Column("left_on", sa.Date),
    sa.Column("left_reason", sa.String(200)),
    sa.Column("member_since", sa.Date),
    # One open record per URN, enforced by the database as well as the domain.
    sa.Index("uq_members_open_urn", "urn", unique=True,
             sqlite_where=sa.text("left_on IS NULL"), postgresql_where=sa.text("left_on IS NULL")),
    sa.Index("ix_members_urn", "urn"),
)

# Every dated change of a member, oldest first: the school's history and "MAT on a date".
member_history = sa.Table(
    "member_history",
    metadata,
    sa.Column("id", ID_TYPE, primary_key=True, autoincrement=True),
    sa.Column("urn", sa.String(6), nullable=False, index=True),
    sa.Column("effective_date", sa.Date, nullable=False),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("details", sa.Text, nullable=False),
    sa.Column("recorded_at", sa.DateTime, nullable=False),
)

census_records = sa.Table(
    "census_records",
    metadata,
    sa.Column("id", ID_TYPE, primary_key=True, autoincrement=True),
    sa.Column("urn", sa.String(6), nullable=False),
    sa.Column("census_date", sa.Date, nullable=False),
    sa.Column("number_on_roll", sa.Integer, nullable=False),
    sa.UniqueConstraint("urn", "census_date", name="uq_census_records_urn_date"),
)

establishment_links = sa.Table(
    "establishment_links",
    metadata,
    sa.Column("id", ID_TYPE, primary_key=True, autoincrement=True),
    sa.Column("predecessor_urn", sa.String(6), nullable=False),
    sa.Column("successor_urn", sa.String(6), nullable=False, index=True),
    sa.Column("kind", sa.String(30), nullable=False),
    sa.Column("established_on", sa.Date),
    sa.Column("source", sa.String(20), nullable=False),
    sa.UniqueConstraint("predecessor_urn", "successor_urn", name="uq_establishment_links_pair"),
)

organisations = sa.Table(
    "organisations",
    metadata,
    sa.Column("id", ID_TYPE, primary_key=True, autoincrement=True),
    sa.Column("org_id", sa.String(20), nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("joined_on", sa.Date, nullable=False),
    sa.Column("left_on", sa.Date),
    sa.Column("left_reason", sa.String(200)),
    sa.Index("uq_organisations_open", "org_id", unique=True,
             sqlite_where=sa.text("left_on IS NULL"), postgresql_where=sa.text("left_on IS NULL")),
)

# The minimum personal data: a display name and an optional work email; both go on erasure.
contacts = sa.Table(
    "contacts",
    metadata,
    sa.Column("contact_id", sa.String(36), primary_key=True),
    sa.Column("display_name", sa.String(200), nullable=False),
    sa.Column("email", sa.String(254)),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("erased_at", sa.DateTime),
)

contact_roles = sa.Table(
    "contact_roles",
    metadata,
    sa.Column("id", ID_TYPE, primary_key=True, autoincrement=True),
    sa.Column("contact_id", sa.String(36), sa.ForeignKey("contacts.contact_id"), nullable=False, index=True),
    sa.Column("urn", sa.String(6), nullable=False, index=True),
    sa.Column("role", sa.String(30), nullable=False),
    sa.Column("may_commit_spending", sa.Boolean, nullable=False),
    sa.Column("started_on", sa.Date, nullable=False),
    sa.Column("ended_on", sa.Date),
    sa.Column("end_reason", sa.String(200)),
    sa.Column("appointment_type", sa.String(30)),
    sa.Column("committees", sa.Text, nullable=False, server_default="[]"),
)

# People at a MAT, council or partner (interface D): one row per holding of a role, dated like contact_roles.
organisation_contact_roles = sa.Table(
    "organisation_contact_roles",
    metadata,
    sa.Column("id", ID_TYPE, primary_key=True, autoincrement=True),
    sa.Column("contact_id", sa.String(36), sa.ForeignKey("contacts.contact_id"), nullable=False, index=True),
    sa.Column("organisation_id", sa.String(20), nullable=False, index=True),
    sa.Column("organisation_kind", sa.String(20), nullable=False),
    sa.Column("role", sa.String(30), nullable=False),
    sa.Column("may_commit_spending", sa.Boolean, nullable=False),
    sa.Column("started_on", sa.Date, nullable=False),
    sa.Column("ended_on", sa.Date),
    sa.Column("end_reason", sa.String(200)),
)

# Governors' committee memberships, dated (never overwritten): a term of office from `started_on` up to the
# day before `ended_on`, appointed by `appointing_body`.
committee_memberships = sa.Table(
    "committee_memberships",
    metadata,
    sa.Column("id", ID_TYPE, primary_key=True, autoincrement=True),
    sa.Column("contact_id", sa.String(36), sa.ForeignKey("contacts.contact_id"), nullable=False, index=True),
    sa.Column("urn", sa.String(6), nullable=False, index=True),
    sa.Column("committee", sa.String(100), nullable=False),
    sa.Column("appointing_body", sa.String(100), nullable=False),
    sa.Column("started_on", sa.Date, nullable=False),
    sa.Column("ended_on", sa.Date),
    sa.Column("end_reason", sa.String(200)),
)

governor_training = sa.Table(
    "governor_training",
    metadata,
    sa.Column("id", ID_TYPE, primary_key=True, autoincrement=True),
    sa.Column("contact_id", sa.String(36), sa.ForeignKey("contacts.contact_id"), nullable=False, index=True),
    sa.Column("course", sa.String(200), nullable=False),
    sa.Column("completed_on", sa.Date, nullable=False),
)

trust_participants = sa.Table(
    "trust_participants",
    metadata,
    sa.Column("id", ID_TYPE, primary_key=True, autoincrement=True),
    sa.Column("party_id", sa.String(20), nullable=False, index=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("trust_role", sa.String(20), nullable=False),
    sa.Column("joined_on", sa.Date, nullable=False),
    sa.Column("left_on", sa.Date),
    sa.Column("on_forum", sa.Boolean, nullable=False, server_default=sa.false()),
    # the register's decision: does an academy replacing this school take over its participation?
    sa.Column("successor_inherits", sa.Boolean, nullable=False, server_default=sa.true()),
)


# Personal data this service holds (`partnership-ops erase` clears exactly these after a
# handover): a contact's display name and work email, as `DELETE /contacts/<id>` does.
# Schools, MATs, councils and partners are organisations: their names are not personal data.
PERSONAL_DATA = {"audit_log": AUDIT_PERSONAL_COLUMNS, "contacts": ["display_name", "email"]}
