"""calendars, reviewers, peer reviews, networks, courses, bookings; richer local copies

Revision ID: 0002
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

NEW_TABLES = ("school_mats", "contacts", "offerings", "edition_prices", "la_term_dates", "school_term_dates",
              "inset_days", "reviewers", "review_cycles", "peer_reviews", "networks", "meetings", "courses",
              "sessions", "bookings", "attendance")


def upgrade():
    with op.batch_alter_table("schools") as batch:
        batch.add_column(sa.Column("establishment_type", sa.String(40)))
        batch.add_column(sa.Column("local_authority", sa.String(80)))
        batch.add_column(sa.Column("number_on_roll", sa.Integer))
        batch.add_column(sa.Column("predecessor_urn", sa.String(6)))
        batch.add_column(sa.Column("closed_on", sa.Date))
        batch.add_column(sa.Column("venue_capacity", sa.Integer))
    with op.batch_alter_table("eligibility") as batch:
        batch.add_column(sa.Column("included_places", sa.Integer, nullable=False, server_default="0"))
    op.create_table(
        "school_mats",
        sa.Column("urn", sa.String(6), primary_key=True),
        sa.Column("effective_from", sa.Date, primary_key=True),
        sa.Column("mat_id", sa.String(40)),
    )
    op.create_table(
        "contacts",
        sa.Column("contact_id", sa.String(36), primary_key=True),
        sa.Column("urn", sa.String(6), nullable=False, index=True),
        sa.Column("display_name", sa.String(200)),
        sa.Column("role", sa.String(30), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
    )
    op.create_table(
        "offerings",
        sa.Column("offering_code", sa.String(40), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("service_area", sa.String(40), nullable=False),
        sa.Column("vat_treatment", sa.String(20), nullable=False),
    )
    op.create_table(
        "edition_prices",
        sa.Column("offering_code", sa.String(40), primary_key=True),
        sa.Column("edition_year", sa.Integer, primary_key=True),
        sa.Column("model", sa.String(20), nullable=False),
        sa.Column("subscriber_price_pence", sa.Integer),
        sa.Column("non_subscriber_price_pence", sa.Integer),
        sa.Column("included_places", sa.Integer, nullable=False, server_default="0"),
    )
    op.create_table(
        "la_term_dates",
        sa.Column("local_authority", sa.String(80), primary_key=True),
        sa.Column("academic_year", sa.Integer, primary_key=True),
        sa.Column("periods", sa.JSON, nullable=False),
    )
    op.create_table(
        "school_term_dates",
        sa.Column("urn", sa.String(6), primary_key=True),
        sa.Column("academic_year", sa.Integer, primary_key=True),
        sa.Column("periods", sa.JSON, nullable=False),
    )
    op.create_table(
        "inset_days",
        sa.Column("urn", sa.String(6), primary_key=True),
        sa.Column("day", sa.Date, primary_key=True),
    )
    op.create_table(
        "reviewers",
        sa.Column("reviewer_id", sa.String(36), primary_key=True),
        sa.Column("urn", sa.String(6), nullable=False, index=True),
        sa.Column("trained", sa.Boolean, nullable=False),
        sa.Column("can_lead", sa.Boolean, nullable=False),
        sa.Column("unavailable", sa.JSON, nullable=False),
    )
    op.create_table(
        "review_cycles",
        sa.Column("cycle", sa.Integer, primary_key=True),
        sa.Column("offering_code", sa.String(40), nullable=False),
        sa.Column("method", sa.String(40), nullable=False),
        sa.Column("parts", sa.JSON, nullable=False),
        sa.Column("days", sa.Integer, nullable=False),
        sa.Column("team_size", sa.Integer, nullable=False),
    )
    op.create_table(
        "peer_reviews",
        sa.Column("review_id", sa.String(36), primary_key=True),
        sa.Column("cycle", sa.Integer, nullable=False, index=True),
        sa.Column("host_urn", sa.String(6), nullable=False),
        sa.Column("dates", sa.JSON, nullable=False),
        sa.Column("team", sa.JSON, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("report", sa.String(None)),
    )
    op.create_table(
        "networks",
        sa.Column("network_id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("member_urns", sa.JSON, nullable=False),
        sa.Column("people", sa.JSON, nullable=False),
    )
    op.create_table(
        "meetings",
        sa.Column("meeting_id", sa.String(36), primary_key=True),
        sa.Column("network_id", sa.String(36), nullable=False, index=True),
        sa.Column("academic_year", sa.Integer, nullable=False),
        sa.Column("term", sa.String(10), nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("host_urn", sa.String(6), nullable=False),
        sa.Column("invited", sa.Integer, nullable=False),
        sa.UniqueConstraint("network_id", "academic_year", "term"),
    )
    op.create_table(
        "courses",
        sa.Column("course_code", sa.String(40), primary_key=True),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("offering_code", sa.String(40)),
        sa.Column("service_area", sa.String(40), nullable=False),
        sa.Column("vat_treatment", sa.String(20), nullable=False),
    )
    op.create_table(
        "sessions",
        sa.Column("session_id", sa.String(36), primary_key=True),
        sa.Column("course_code", sa.String(40), nullable=False, index=True),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("capacity", sa.Integer, nullable=False),
        sa.Column("cutoff_days", sa.Integer, nullable=False),
    )
    op.create_table(
        "bookings",
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
    op.create_table(
        "attendance",
        sa.Column("attendance_id", sa.String(36), primary_key=True),
        sa.Column("booking_id", sa.String(36), nullable=False, unique=True),
        sa.Column("attended", sa.Boolean, nullable=False),
        sa.Column("chargeable", sa.Boolean, nullable=False),
    )


def downgrade():
    for name in reversed(NEW_TABLES):
        op.drop_table(name)
    with op.batch_alter_table("eligibility") as batch:
        batch.drop_column("included_places")
    with op.batch_alter_table("schools") as batch:
        for column in ("venue_capacity", "closed_on", "predecessor_urn", "number_on_roll", "local_authority",
                       "establishment_type"):
            batch.drop_column(column)
