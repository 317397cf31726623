"""Scheduling's tables (SQLAlchemy Core); the migrations create exactly these.

Local copies learnt from events: `schools`, `school_mats` (MAT membership by date, so a
conversion changes "same MAT" from its date only), `contacts`, `offerings`,
`edition_prices`, `eligibility`. Scheduling's own state: calendars, reviewers, peer
reviews, networks and meetings, courses, sessions, bookings and attendance.

Each fact of a local copy carries the sequence number of the upstream event that last set it
(`*sequence` columns, `scheduling.domain.ordering`): None while not yet learnt, 0 when set by an
event without order. So a school row may be partial (made by an event about a school not yet
known): its details or its lifecycle still None, it is no member for any rule.
"""
import sqlalchemy as sa

from shared.audit import PERSONAL_COLUMNS as AUDIT_PERSONAL_COLUMNS, define_audit_table
from shared.idempotency import define_idempotency_table
from shared.messaging_tables import define_messaging_tables

metadata = sa.MetaData()

# Who did what (shared.audit): every state-changing request and every refusal of access.
audit_log = define_audit_table(metadata)
outbox, inbox = define_messaging_tables(metadata)
# POSTs that record money or purchases answer a retried Idempotency-Key once (shared.idempotency)
idempotency_keys = define_idempotency_table(metadata)

schools = sa.Table(
    "schools", metadata,
    sa.Column("urn", sa.String(6), primary_key=True),
    sa.Column("name", sa.String(200)),
    sa.Column("phase", sa.String(30)),
    sa.Column("mat_id", sa.String(20)),
    sa.Column("postcode", sa.String(10)),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("establishment_type", sa.String(40)),
    sa.Column("local_authority", sa.String(80)),
    sa.Column("number_on_roll", sa.Integer),
    sa.Column("predecessor_urn", sa.String(6)),
    sa.Column("closed_on", sa.Date),
    sa.Column("venue_capacity", sa.Integer),
    sa.Column("details_sequence", sa.Integer),    # name, phase, postcode, mat_id, type, LA
    sa.Column("roll_sequence", sa.Integer),       # number_on_roll
    sa.Column("lifecycle_sequence", sa.Integer),  # active, closed_on
)

school_mats = sa.Table(
    "school_mats", metadata,
    sa.Column("urn", sa.String(6), primary_key=True),
    sa.Column("effective_from", sa.Date, primary_key=True),
    sa.Column("mat_id", sa.String(40)),
    sa.Column("sequence", sa.Integer),
)

eligibility = sa.Table(
    "eligibility", metadata,
    sa.Column("subscription_id", sa.String(36), primary_key=True),
    sa.Column("urn", sa.String(6), nullable=False, index=True),
    sa.Column("offering_code", sa.String(40)),  # the terms: null until the SLA's start is known
    sa.Column("service_area", sa.String(40)),
    sa.Column("period_start", sa.Date),
    sa.Column("period_end", sa.Date),
    sa.Column("included_places", sa.Integer, nullable=False, server_default="0"),
    sa.Column("terms_sequence", sa.Integer),
    sa.Column("ends_on", sa.Date),  # the earliest first uncovered day announced by a cancellation or end
    sa.Column("quantity", sa.Integer, nullable=False, server_default="1"),  # places of a per-delegate SLA
    sa.Column("edition_year", sa.Integer),
    sa.Column("delegate_places_used_before", sa.Integer, nullable=False, server_default="0"),
)

eligibility_components = sa.Table(
    # a bundle's included offerings: each gives the cover of that offering as if bought separately, for
    # the bundle's period (read from its `eligibility` row, so its endings cut them too)
    "eligibility_components", metadata,
    sa.Column("subscription_id", sa.String(36), primary_key=True),
    sa.Column("offering_code", sa.String(40), primary_key=True),
    sa.Column("service_area", sa.String(40), nullable=False),
    sa.Column("included_places", sa.Integer, nullable=False, server_default="0"),
)

contacts = sa.Table(
    "contacts", metadata,
    sa.Column("contact_id", sa.String(36), primary_key=True),
    sa.Column("urn", sa.String(6), index=True),
    sa.Column("display_name", sa.String(200)),
    sa.Column("role", sa.String(30)),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("sequence", sa.Integer),
    sa.Column("erased", sa.Boolean, nullable=False, server_default=sa.false()),  # a tombstone: all else null
)

contact_roles = sa.Table(
    # each role a person holds at a school, as catalogue keeps them: who may commit the school's spending
    # (a paid place is booked only by such a person); versioned per role by the contact's event sequence;
    # an erasure deletes them (the `contacts` tombstone stops any later role coming back)
    "contact_roles", metadata,
    sa.Column("contact_id", sa.String(36), primary_key=True),
    sa.Column("urn", sa.String(6), primary_key=True),
    sa.Column("role", sa.String(30), primary_key=True),
    sa.Column("may_commit_spending", sa.Boolean, nullable=False),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("sequence", sa.Integer),
)

offerings = sa.Table(
    "offerings", metadata,
    sa.Column("offering_code", sa.String(40), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("service_area", sa.String(40), nullable=False),
    sa.Column("vat_treatment", sa.String(20), nullable=False),
    sa.Column("sequence", sa.Integer),
)

edition_prices = sa.Table(
    "edition_prices", metadata,
    sa.Column("offering_code", sa.String(40), primary_key=True),
    sa.Column("edition_year", sa.Integer, primary_key=True),
    sa.Column("model", sa.String(20), nullable=False),
    sa.Column("subscriber_price_pence", sa.Integer),
    sa.Column("non_subscriber_price_pence", sa.Integer),
    sa.Column("included_places", sa.Integer, nullable=False, server_default="0"),
    sa.Column("sequence", sa.Integer),
)

la_term_dates = sa.Table(
    "la_term_dates", metadata,
    sa.Column("local_authority", sa.String(80), primary_key=True),
    sa.Column("academic_year", sa.Integer, primary_key=True),
    sa.Column("periods", sa.JSON, nullable=False),
)

school_term_dates = sa.Table(
    "school_term_dates", metadata,
    sa.Column("urn", sa.String(6), primary_key=True),
    sa.Column("academic_year", sa.Integer, primary_key=True),
    sa.Column("periods", sa.JSON, nullable=False),
)

inset_days = sa.Table(
    "inset_days", metadata,
    sa.Column("urn", sa.String(6), primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
)

reviewers = sa.Table(
    "reviewers", metadata,
    sa.Column("reviewer_id", sa.String(36), primary_key=True),
    sa.Column("urn", sa.String(6), nullable=False, index=True),
    sa.Column("trained", sa.Boolean, nullable=False),
    sa.Column("can_lead", sa.Boolean, nullable=False),
    sa.Column("unavailable", sa.JSON, nullable=False),
)

review_cycles = sa.Table(
    "review_cycles", metadata,
    sa.Column("cycle", sa.Integer, primary_key=True),
    sa.Column("offering_code", sa.String(40), nullable=False),
    sa.Column("method", sa.String(40), nullable=False),
    sa.Column("parts", sa.JSON, nullable=False),
    sa.Column("days", sa.Integer, nullable=False),
    sa.Column("team_size", sa.Integer, nullable=False),
)

peer_reviews = sa.Table(
    "peer_reviews", metadata,
    sa.Column("review_id", sa.String(36), primary_key=True),
    sa.Column("cycle", sa.Integer, nullable=False, index=True),
    sa.Column("host_urn", sa.String(6), nullable=False),
    sa.Column("dates", sa.JSON, nullable=False),
    sa.Column("team", sa.JSON, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("report", sa.Text),
)

networks = sa.Table(
    "networks", metadata,
    sa.Column("network_id", sa.String(36), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("member_urns", sa.JSON, nullable=False),
    sa.Column("people", sa.JSON, nullable=False),
)

meetings = sa.Table(
    "meetings", metadata,
    sa.Column("meeting_id", sa.String(36), primary_key=True),
    sa.Column("network_id", sa.String(36), nullable=False, index=True),
    sa.Column("academic_year", sa.Integer, nullable=False),
    sa.Column("term", sa.String(10), nullable=False),
    sa.Column("day", sa.Date, nullable=False),
    sa.Column("host_urn", sa.String(6), nullable=False),
    sa.Column("invited", sa.Integer, nullable=False),
    sa.UniqueConstraint("network_id", "academic_year", "term"),
)

courses = sa.Table(
    "courses", metadata,
    sa.Column("course_code", sa.String(40), primary_key=True),
    sa.Column("title", sa.String(200), nullable=False),
    sa.Column("offering_code", sa.String(40)),
    sa.Column("service_area", sa.String(40), nullable=False),
    sa.Column("vat_treatment", sa.String(20), nullable=False),
)

sessions = sa.Table(
    "sessions", metadata,
    sa.Column("session_id", sa.String(36), primary_key=True),
    sa.Column("course_code", sa.String(40), nullable=False, index=True),
    sa.Column("day", sa.Date, nullable=False),
    sa.Column("capacity", sa.Integer, nullable=False),
    sa.Column("cutoff_days", sa.Integer, nullable=False),  # cancellation cut-off
    sa.Column("booking_cutoff_days", sa.Integer, nullable=False, server_default="0"),
)

bookings = sa.Table(
    "bookings", metadata,
    sa.Column("booking_id", sa.String(36), primary_key=True),
    sa.Column("session_id", sa.String(36), nullable=False, index=True),
    sa.Column("urn", sa.String(6), nullable=False),
    sa.Column("contact_id", sa.String(36), nullable=False),
    sa.Column("status", sa.String(12), nullable=False),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("price_basis", sa.String(20)),
    sa.Column("unit_price_pence", sa.Integer),
    sa.Column("subscription_id", sa.String(36)),
    sa.Column("booked_on", sa.Date, nullable=False),
)

attendance = sa.Table(
    "attendance", metadata,
    sa.Column("attendance_id", sa.String(36), primary_key=True),
    sa.Column("booking_id", sa.String(36), nullable=False, unique=True),
    sa.Column("attended", sa.Boolean, nullable=False),
    sa.Column("chargeable", sa.Boolean, nullable=False),
)


coaching_pairs = sa.Table(
    "coaching_pairs", metadata,
    sa.Column("pair_id", sa.String(36), primary_key=True),
    sa.Column("mentor_id", sa.String(36), nullable=False, index=True),
    sa.Column("mentor_urn", sa.String(6), nullable=False),
    sa.Column("leader_id", sa.String(36), nullable=False, index=True),
    sa.Column("leader_urn", sa.String(6), nullable=False),
    sa.Column("needs_met", sa.JSON, nullable=False),
    sa.Column("formed_on", sa.Date, nullable=False),
    sa.Column("status", sa.String(12), nullable=False),  # active
)

coaching_sessions = sa.Table(
    "coaching_sessions", metadata,
    sa.Column("coaching_session_id", sa.String(36), primary_key=True),
    sa.Column("pair_id", sa.String(36), nullable=False, index=True),
    sa.Column("day", sa.Date, nullable=False),
    sa.Column("booked_on", sa.Date, nullable=False),
)

diary = sa.Table(
    # one diary for every person across network meetings, courses, peer reviews and coaching sessions:
    # the key makes "never two things on one day" hold under concurrent requests too
    "diary", metadata,
    sa.Column("person_id", sa.String(36), primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("ref_id", sa.String(36), nullable=False, index=True),
    sa.Column("what", sa.String(300), nullable=False),
)


# Personal data this service holds (`partnership-ops erase` clears exactly these after a
# handover): contacts' display names (copied from `contact_role_changed`) and peer-review
# reports, free text that names the people a review met (the new operator keeps them).
# Schools and networks are organisations; bookings, reviewers and networks hold only contact ids.
PERSONAL_DATA = {"audit_log": AUDIT_PERSONAL_COLUMNS, "contacts": ["display_name"], "peer_reviews": ["report"]}
