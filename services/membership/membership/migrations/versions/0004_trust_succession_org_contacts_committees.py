"""co-operative trust succession decision, contacts at MATs/councils/partners, dated committee memberships

Revision ID: 0004
Revises: 0003
"""
import json

from alembic import op
import sqlalchemy as sa

from shared.messaging_tables import ID_TYPE

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("trust_participants") as batch:
        batch.add_column(sa.Column("successor_inherits", sa.Boolean, nullable=False, server_default=sa.true()))
    op.create_table(
        "organisation_contact_roles",
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
    committees = op.create_table(
        "committee_memberships",
        sa.Column("id", ID_TYPE, primary_key=True, autoincrement=True),
        sa.Column("contact_id", sa.String(36), sa.ForeignKey("contacts.contact_id"), nullable=False, index=True),
        sa.Column("urn", sa.String(6), nullable=False, index=True),
        sa.Column("committee", sa.String(100), nullable=False),
        sa.Column("appointing_body", sa.String(100), nullable=False),
        sa.Column("started_on", sa.Date, nullable=False),
        sa.Column("ended_on", sa.Date),
        sa.Column("end_reason", sa.String(200)),
    )
    # The committees held so far were a list on the role, overwritten in place: each becomes a membership
    # over the role's dates (the best that is known), appointed by the governing body.
    # typed columns: untyped, SQLite hands the dates back as text
    roles = sa.table("contact_roles", sa.column("contact_id", sa.String), sa.column("urn", sa.String),
                     sa.column("committees", sa.Text), sa.column("started_on", sa.Date),
                     sa.column("ended_on", sa.Date))
    bind = op.get_bind()
    rows = []
    for r in bind.execute(sa.select(roles.c.contact_id, roles.c.urn, roles.c.committees, roles.c.started_on,
                                    roles.c.ended_on)):
        for committee in json.loads(r.committees or "[]"):
            rows.append(dict(contact_id=r.contact_id, urn=r.urn, committee=committee[:100],
                             appointing_body="governing_body", started_on=r.started_on, ended_on=r.ended_on,
                             end_reason="role ended" if r.ended_on else None))
    if rows:
        op.bulk_insert(committees, rows)


def downgrade():
    op.drop_table("committee_memberships")
    op.drop_table("organisation_contact_roles")
    with op.batch_alter_table("trust_participants") as batch:
        batch.drop_column("successor_inherits")
