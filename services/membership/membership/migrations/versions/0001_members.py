"""members, outbox and inbox

Revision ID: 0001
Revises:
"""
from alembic import op
import sqlalchemy as sa

from shared.messaging_tables import ID_TYPE, create_messaging_tables, drop_messaging_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    create_messaging_tables(op)
    op.create_table(
        "members",
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
        sa.Column("left_on", sa.Date),
    )
    op.create_index("uq_members_open_urn", "members", ["urn"], unique=True,
                    sqlite_where=sa.text("left_on IS NULL"), postgresql_where=sa.text("left_on IS NULL"))


def downgrade():
    op.drop_table("members")
    drop_messaging_tables(op)
