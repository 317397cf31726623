"""member lifecycle, history, census, lineage, organisations, contacts, co-operative trust

Revision ID: 0002
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa

from shared.messaging_tables import ID_TYPE

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("members", sa.Column("left_reason", sa.String(200)))
    op.add_column("members", sa.Column("member_since", sa.Date))
    op.create_index("ix_members_urn", "members", ["urn"])
    op.create_table(
        "member_history",
        sa.Column("id", ID_TYPE, primary_key=True, autoincrement=True),
        sa.Column("urn", sa.String(6), nullable=False, index=True),
        sa.Column("effective_date", sa.Date, nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("details", sa.Text, nullable=False),
        sa.Column("recorded_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "census_records",
        sa.Column("id", ID_TYPE, primary_key=True, autoincrement=True),
        sa.Column("urn", sa.String(6), nullable=False),
        sa.Column("census_date", sa.Date, nullable=False),
        sa.Column("number_on_roll", sa.Integer, nullable=False),
        sa.UniqueConstraint("urn", "census_date", name="uq_census_records_urn_date"),
    )
    op.create_table(
        "establishment_links",
        sa.Column("id", ID_TYPE, primary_key=True, autoincrement=True),
        sa.Column("predecessor_urn", sa.String(6), nullable=False),
        sa.Column("successor_urn", sa.String(6), nullable=False, index=True),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("established_on", sa.Date),
        sa.Column("source", sa.String(20), nullable=False),
        sa.UniqueConstraint("predecessor_urn", "successor_urn", name="uq_establishment_links_pair"),
    )
    op.create_table(
        "organisations",
        sa.Column("id", ID_TYPE, primary_key=True, autoincrement=True),
        sa.Column("org_id", sa.String(20), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("joined_on", sa.Date, nullable=False),
        sa.Column("left_on", sa.Date),
        sa.Column("left_reason", sa.String(200)),
    )
    op.create_index("uq_organisations_open", "organisations", ["org_id"], unique=True,
                    sqlite_where=sa.text("left_on IS NULL"), postgresql_where=sa.text("left_on IS NULL"))
    op.create_table(
        "contacts",
        sa.Column("contact_id", sa.String(36), primary_key=True),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("email", sa.String(254)),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("erased_at", sa.DateTime),
    )
    op.create_table(
        "contact_roles",
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
    op.create_table(
        "governor_training",
        sa.Column("id", ID_TYPE, primary_key=True, autoincrement=True),
        sa.Column("contact_id", sa.String(36), sa.ForeignKey("contacts.contact_id"), nullable=False, index=True),
        sa.Column("course", sa.String(200), nullable=False),
        sa.Column("completed_on", sa.Date, nullable=False),
    )
    op.create_table(
        "trust_participants",
        sa.Column("id", ID_TYPE, primary_key=True, autoincrement=True),
        sa.Column("party_id", sa.String(20), nullable=False, index=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("trust_role", sa.String(20), nullable=False),
        sa.Column("joined_on", sa.Date, nullable=False),
        sa.Column("left_on", sa.Date),
        sa.Column("on_forum", sa.Boolean, nullable=False, server_default=sa.false()),
    )


def downgrade():
    for table in ("trust_participants", "governor_training", "contact_roles", "contacts", "organisations",
                  "establishment_links", "census_records", "member_history"):
        op.drop_table(table)
    op.drop_index("ix_members_urn", "members")
    with op.batch_alter_table("members") as batch:
        batch.drop_column("member_since")
        batch.drop_column("left_reason")
