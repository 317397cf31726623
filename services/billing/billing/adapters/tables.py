"""Billing's tables (SQLAlchemy Core); the migrations create exactly these.

Issued documents (`documents`, `document_lines`) are only ever inserted: a
correction is a new credit note and a new invoice, never an update.
Balances are derived from payments and credit notes.
"""
import sqlalchemy as sa

from shared.jobs import define_job_runs_table
from shared.audit import PERSONAL_COLUMNS as AUDIT_PERSONAL_COLUMNS, define_audit_table
from shared.idempotency import define_idempotency_table
from shared.periodic import define_timer_periods_table
from shared.messaging_tables import define_messaging_tables

metadata = sa.MetaData()

# Who did what (shared.audit): every state-changing request and every refusal of access.
audit_log = define_audit_table(metadata)
outbox, inbox = define_messaging_tables(metadata)
# POSTs that record money or purchases answer a retried Idempotency-Key once (shared.idempotency)
idempotency_keys = define_idempotency_table(metadata)
job_runs = define_job_runs_table(metadata)  # billing runs run as jobs (shared.jobs)
timer_periods = define_timer_periods_table(metadata)  # timers once per period across replicas (shared.periodic)

# Billing's copy of each member as it stands now. Each group of facts keeps the sequence number
# (in the school's aggregate, `upstream.Position`) of the event that last set it, so an older
# event delivered late changes nothing: `details_sequence` for name, academy status and MAT,
# `lifecycle_sequence` for `left_on`. NULL: not set by an ordered event yet (a row first made by
# `member_left` knows no name). The conversion sets a successor's facts at sequence 0.
members = sa.Table(
    "members", metadata,
    sa.Column("urn", sa.String(6), primary_key=True),
    sa.Column("name", sa.String(200)),
    sa.Column("is_academy", sa.Boolean),
    sa.Column("mat_id", sa.String(20)),
    sa.Column("mat_name", sa.String(200)),
    sa.Column("left_on", sa.Date),  # first day no longer a member (left, or closed at conversion)
    sa.Column("details_sequence", sa.BigInteger),
    sa.Column("lifecycle_sequence", sa.BigInteger),
    # Where it is, as membership publishes it (no street address is published): on invoices.
    sa.Column("postcode", sa.String(10)),
    sa.Column("local_authority", sa.String(100)),
    # The academy that replaced it at conversion: buy-back counts a school's line as one buyer.
    sa.Column("successor_urn", sa.String(6)),
)

# A member's standing from a date, so a charge's payer is decided on the charge's date; `sequence`
# is that of the event that set the standing on that date (as `members`).
member_affiliations = sa.Table(
    "member_affiliations", metadata,
    sa.Column("urn", sa.String(6), primary_key=True),
    sa.Column("effective_from", sa.Date, primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("is_academy", sa.Boolean, nullable=False),
    sa.Column("mat_id", sa.String(20)),
    sa.Column("mat_name", sa.String(200)),
    sa.Column("sequence", sa.BigInteger),
)

mat_billing = sa.Table(
    "mat_billing", metadata,
    sa.Column("mat_id", sa.String(20), primary_key=True),
    sa.Column("pays_centrally", sa.Boolean, nullable=False),
)

# The SLAs billing has heard of, so later years of multi-year agreements fall due on their own.
# An end consumed before its start is kept on a placeholder row (terms "{}") that the start fills
# in; `end_sequence` is that of the end applied (in the school's catalogue aggregate).
subscriptions = sa.Table(
    "subscriptions", metadata,
    sa.Column("subscription_id", sa.String(36), primary_key=True),
    sa.Column("urn", sa.String(6), nullable=False, index=True),
    sa.Column("period_start", sa.Date, nullable=False),
    sa.Column("period_end", sa.Date, nullable=False),
    sa.Column("ends_from", sa.Date),
    sa.Column("end_reason", sa.String(40)),
    sa.Column("terms", sa.Text, nullable=False),  # the event's payload, JSON
    sa.Column("end_sequence", sa.BigInteger),
    sa.Column("end_known_on", sa.Date),  # when the end applied was decided (else its effective date)
)

charges = sa.Table(
    "charges", metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("subscription_id", sa.String(36)),
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
    sa.Column("census_date", sa.Date),
    sa.Column("number_on_roll", sa.Integer),
    # unmatched (school not known yet), uninvoiced, invoiced
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("kind", sa.String(10), nullable=False, server_default="charge"),
    sa.Column("source", sa.String(20), nullable=False, server_default="subscription"),
    sa.Column("quantity", sa.Integer, nullable=False, server_default="1"),
    sa.Column("unit_price_pence", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("basis_pence", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("basis_days", sa.Integer, nullable=False, server_default="1"),
    sa.Column("attendance_id", sa.String(64), unique=True),
    # A charge can have several credits: a later, earlier end of its SLA adds to one already invoiced.
    sa.Column("credits_charge_id", sa.String(36), index=True),
    sa.Column("description", sa.String(300), nullable=False, server_default=""),
    sa.Column("document_id", sa.String(36)),  # the document that billed it; found through the lines
    sa.Column("payer_key", sa.String(32), nullable=False, server_default="", index=True),
    sa.Column("po_number", sa.String(40)),  # the school's purchase order, given when it bought the SLA
    # A bundle's included offerings (JSON list: code, name, service area, VAT treatment, annual price):
    # its invoice has one line per component. NULL: not a bundle.
    sa.Column("components", sa.Text),
    # A subscription's period is charged once, whatever the broker does.
    sa.UniqueConstraint("subscription_id", "period_start", name="uq_charges_subscription_period"),
    sa.Index("ix_charges_status_payer", "status", "payer_key"),
)

documents = sa.Table(
    "documents", metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("kind", sa.String(12), nullable=False),  # invoice, credit_note
    sa.Column("number", sa.String(40), nullable=False),
    sa.Column("operator_name", sa.String(100), nullable=False),
    sa.Column("operator", sa.Text, nullable=False),  # the operator's identity as printed, JSON
    sa.Column("payer_kind", sa.String(10), nullable=False),
    sa.Column("payer_id", sa.String(20), nullable=False),
    sa.Column("payer_name", sa.String(200), nullable=False),
    sa.Column("payer_key", sa.String(32), nullable=False, index=True),
    sa.Column("billing_run_id", sa.String(36), index=True),
    sa.Column("billing_period", sa.String(20)),
    sa.Column("credits_document_id", sa.String(36), index=True),
    sa.Column("reason", sa.String(200)),
    sa.Column("issue_date", sa.Date, nullable=False),
    sa.Column("due_date", sa.Date, nullable=False),
    sa.Column("net_pence", sa.BigInteger, nullable=False),
    sa.Column("vat_pence", sa.BigInteger, nullable=False),
    sa.Column("gross_pence", sa.BigInteger, nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    # What a UK VAT invoice also shows: the customer's address (lines under its name), the tax point
    # (the time of supply: the issue date), and the person the invoice is for. The person's name and
    # email are personal data: the only columns an erasure changes on an issued document.
    sa.Column("customer_address", sa.Text),
    sa.Column("tax_point", sa.Date),
    sa.Column("contact_id", sa.String(36), index=True),
    sa.Column("contact_name", sa.String(200)),
    sa.Column("contact_email", sa.String(254)),
    sa.UniqueConstraint("operator_name", "kind", "number", name="uq_documents_number"),
)

document_lines = sa.Table(
    "document_lines", metadata,
    sa.Column("document_id", sa.String(36), primary_key=True),
    sa.Column("line_no", sa.Integer, primary_key=True),
    sa.Column("charge_id", sa.String(36), nullable=False),
    sa.Column("urn", sa.String(6), nullable=False),
    sa.Column("offering_code", sa.String(40), nullable=False),
    sa.Column("description", sa.String(300), nullable=False),
    sa.Column("service_area", sa.String(40), nullable=False),
    sa.Column("period_start", sa.Date, nullable=False),
    sa.Column("period_end", sa.Date, nullable=False),
    sa.Column("quantity", sa.Integer, nullable=False),
    sa.Column("unit_price_pence", sa.BigInteger, nullable=False),
    sa.Column("census_date", sa.Date),
    sa.Column("number_on_roll", sa.Integer),
    sa.Column("vat_treatment", sa.String(10), nullable=False),
    sa.Column("vat_code", sa.String(2), nullable=False),
    sa.Column("net_pence", sa.BigInteger, nullable=False),
    sa.Column("vat_pence", sa.BigInteger, nullable=False),
    sa.Column("gross_pence", sa.BigInteger, nullable=False),
    sa.Column("po_number", sa.String(40)),
    sa.Index("ix_document_lines_charge_id", "charge_id"),
)

# Gap-free numbering: the last number used, per operator and document kind, taken in the
# same transaction as the documents it numbers.
document_sequences = sa.Table(
    "document_sequences", metadata,
    sa.Column("operator_name", sa.String(100), primary_key=True),
    sa.Column("kind", sa.String(12), primary_key=True),
    sa.Column("last_number", sa.BigInteger, nullable=False),
)

billing_runs = sa.Table(
    "billing_runs", metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("operator_name", sa.String(100), nullable=False),
    sa.Column("period", sa.String(20), nullable=False),
    sa.Column("period_start", sa.Date, nullable=False),
    sa.Column("period_end", sa.Date, nullable=False),
    sa.Column("issue_date", sa.Date, nullable=False),
    sa.Column("invoices_issued", sa.Integer, nullable=False),
    sa.Column("credit_notes_issued", sa.Integer, nullable=False),
    sa.Column("gross_pence", sa.BigInteger, nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.UniqueConstraint("operator_name", "period", name="uq_billing_runs_period"),
)

payments = sa.Table(
    "payments", metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("document_id", sa.String(36), nullable=False, index=True),
    sa.Column("amount_pence", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("received_on", sa.Date, nullable=False),
    sa.Column("reference", sa.String(100)),
    sa.Column("created_at", sa.DateTime, nullable=False),
)

overdue_notices = sa.Table(
    "overdue_notices", metadata,
    sa.Column("document_id", sa.String(36), primary_key=True),
    sa.Column("as_of", sa.Date, nullable=False),
)

# The people invoices are addressed to: each role a person holds at a school, MAT, council or
# partner, as membership's `contact_role_changed` / `organisation_contact_role_changed` last said
# (`version`: that event's sequence in the person's aggregate `contact:<id>`).
contacts = sa.Table(
    "contacts", metadata,
    sa.Column("contact_id", sa.String(36), primary_key=True),
    sa.Column("organisation", sa.String(32), primary_key=True),  # school:<urn>, mat:<id>, ...
    sa.Column("role", sa.String(30), primary_key=True),
    sa.Column("display_name", sa.String(200), nullable=False),
    sa.Column("email", sa.String(254)),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("effective_date", sa.Date, nullable=False),
    sa.Column("version", sa.BigInteger),
    sa.Index("ix_contacts_organisation", "organisation"),
)

# A person erased at membership: no role change, whenever it arrives, brings them back.
erased_contacts = sa.Table(
    "erased_contacts", metadata,
    sa.Column("contact_id", sa.String(36), primary_key=True),
    sa.Column("version", sa.BigInteger),
)


# Personal data this service holds: the names and emails of the people invoices are addressed
# to (their roles, and the contact printed on each document). Payers are schools and MATs
# (organisations) and the operator identity is an organisation's: not personal data.
PERSONAL_DATA: dict[str, list[str]] = {"audit_log": AUDIT_PERSONAL_COLUMNS, "contacts": ["display_name", "email"],
                                       "documents": ["contact_name", "contact_email"]}
