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
    from scheduling.adapters.tables import metadata

    with op.batch_alter_table("schools") as batch:
        batch.add_column(sa.Column("establishment_type", sa.String(40)))
        batch.add_column(sa.Column("local_authority", sa.String(80)))
        batch.add_column(sa.Column("number_on_roll", sa.Integer))
        batch.add_column(sa.Column("predecessor_urn", sa.String(6)))
        batch.add_column(sa.Column("closed_on", sa.Date))
        batch.add_column(sa.Column("venue_capacity", sa.Integer))
    with op.batch_alter_table("eligibility") as batch:
        batch.add_column(sa.Column("included_places", sa.Integer, nullable=False, server_default="0"))
    bind = op.get_bind()
    for name in NEW_TABLES:
        metadata.tables[name].create(bind)


def downgrade():
    from scheduling.adapters.tables import metadata

    bind = op.get_bind()
    for name in reversed(NEW_TABLES):
        metadata.tables[name].drop(bind)
    with op.batch_alter_table("eligibility") as batch:
        batch.drop_column("included_places")
    with op.batch_alter_table("schools") as batch:
        for column in ("venue_capacity", "closed_on", "predecessor_urn", "number_on_roll", "local_authority",
                       "establishment_type"):
            batch.drop_column(column)
