"""fact versions: each fact of the local copies keeps the sequence number of the event that set it, so
events apply in any delivery order; partial school, SLA and contact rows (an event about something
not yet known) and contact tombstones

Revision ID: 0004
Revises: 0003
"""
from alembic import op
import sqlalchemy as sa

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

SCHOOL_DETAILS = (("name", sa.String(200)), ("phase", sa.String(30)), ("postcode", sa.String(10)))


def upgrade():
    # batch mode: SQLite changes a column's nullability only by copying the table
    with op.batch_alter_table("schools") as batch:
        for name, type_ in SCHOOL_DETAILS:
            batch.alter_column(name, existing_type=type_, nullable=True)
        for name in ("details_sequence", "roll_sequence", "lifecycle_sequence"):
            batch.add_column(sa.Column(name, sa.Integer))
    # Rows written before versions were learnt from whole events, in no known order: complete, version 0.
    op.execute("UPDATE schools SET details_sequence = 0, roll_sequence = 0, lifecycle_sequence = 0")
    with op.batch_alter_table("school_mats") as batch:
        batch.add_column(sa.Column("sequence", sa.Integer))
    with op.batch_alter_table("eligibility") as batch:
        batch.alter_column("offering_code", existing_type=sa.String(40), nullable=True)
        batch.alter_column("service_area", existing_type=sa.String(40), nullable=True)
        batch.alter_column("period_start", existing_type=sa.Date, nullable=True)
        batch.alter_column("period_end", existing_type=sa.Date, nullable=True)
        batch.add_column(sa.Column("terms_sequence", sa.Integer))
        batch.add_column(sa.Column("ends_on", sa.Date))
    op.execute("UPDATE eligibility SET terms_sequence = 0")
    with op.batch_alter_table("contacts") as batch:
        batch.alter_column("urn", existing_type=sa.String(6), nullable=True)
        batch.alter_column("role", existing_type=sa.String(30), nullable=True)
        batch.add_column(sa.Column("sequence", sa.Integer))
        batch.add_column(sa.Column("erased", sa.Boolean, nullable=False, server_default=sa.false()))
    for table in ("offerings", "edition_prices"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("sequence", sa.Integer))


def downgrade():
    for table in ("offerings", "edition_prices"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("sequence")
    # Partial rows and tombstones cannot be expressed without the versions: they go.
    op.execute("DELETE FROM contacts WHERE erased OR urn IS NULL OR role IS NULL")
    with op.batch_alter_table("contacts") as batch:
        batch.drop_column("erased")
        batch.drop_column("sequence")
        batch.alter_column("role", existing_type=sa.String(30), nullable=False)
        batch.alter_column("urn", existing_type=sa.String(6), nullable=False)
    op.execute("DELETE FROM eligibility WHERE terms_sequence IS NULL")
    with op.batch_alter_table("eligibility") as batch:
        batch.drop_column("ends_on")
        batch.drop_column("terms_sequence")
        for name, type_ in (("offering_code", sa.String(40)), ("service_area", sa.String(40)),
                            ("period_start", sa.Date), ("period_end", sa.Date)):
            batch.alter_column(name, existing_type=type_, nullable=False)
    with op.batch_alter_table("school_mats") as batch:
        batch.drop_column("sequence")
    op.execute("DELETE FROM schools WHERE details_sequence IS NULL OR lifecycle_sequence IS NULL")
    with op.batch_alter_table("schools") as batch:
        for name in ("lifecycle_sequence", "roll_sequence", "details_sequence"):
            batch.drop_column(name)
        for name, type_ in SCHOOL_DETAILS:
            batch.alter_column(name, existing_type=type_, nullable=False)
