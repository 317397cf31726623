"""ordered member copy: per-facet versions on members (columns nullable until their facet is
known), a version per contact role, and tombstones of erased contacts, so membership's events
converge whatever their delivery order

Revision ID: 0004
Revises: 0003
"""
from alembic import op
import sqlalchemy as sa

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# A row may now be created by any event about a school: what it has not heard of yet is NULL.
_FACT_COLUMNS = (("name", sa.String(200)), ("establishment_type", sa.String(60)), ("phase", sa.String(30)),
                 ("is_academy", sa.Boolean()), ("number_on_roll", sa.Integer()), ("census_date", sa.Date()),
                 ("joined_on", sa.Date()))
_VERSIONS = ("details_version", "roll_version", "joined_version", "standing_version")


def upgrade():
    with op.batch_alter_table("members") as batch:
        for name, type_ in _FACT_COLUMNS:
            batch.alter_column(name, existing_type=type_, nullable=True)
        for name in _VERSIONS:
            batch.add_column(sa.Column(name, sa.Integer))
    with op.batch_alter_table("contacts") as batch:
        batch.add_column(sa.Column("version", sa.Integer))
    op.create_table(
        "erased_contacts",
        sa.Column("contact_id", sa.String(36), primary_key=True),
        sa.Column("version", sa.Integer),
    )


def downgrade():
    op.drop_table("erased_contacts")
    with op.batch_alter_table("contacts") as batch:
        batch.drop_column("version")
    # rows only partly known cannot satisfy the old NOT NULL columns
    op.execute("DELETE FROM members WHERE status = 'unknown' OR name IS NULL OR number_on_roll IS NULL "
               "OR joined_on IS NULL")
    with op.batch_alter_table("members") as batch:
        for name in reversed(_VERSIONS):
            batch.drop_column(name)
        for name, type_ in _FACT_COLUMNS:
            batch.alter_column(name, existing_type=type_, nullable=False)
