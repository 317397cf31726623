"""coaching: pairs formed and their sessions are stored (they were only computed before)

Revision ID: 0006
Revises: 0005
"""
from alembic import op
import sqlalchemy as sa

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "coaching_pairs",
        sa.Column("pair_id", sa.String(36), primary_key=True),
        sa.Column("mentor_id", sa.String(36), nullable=False),
        sa.Column("mentor_urn", sa.String(6), nullable=False),
        sa.Column("leader_id", sa.String(36), nullable=False),
        sa.Column("leader_urn", sa.String(6), nullable=False),
        sa.Column("needs_met", sa.JSON, nullable=False),
        sa.Column("formed_on", sa.Date, nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
    )
    op.create_index("ix_coaching_pairs_mentor_id", "coaching_pairs", ["mentor_id"])
    op.create_index("ix_coaching_pairs_leader_id", "coaching_pairs", ["leader_id"])
    op.create_table(
        "coaching_sessions",
        sa.Column("coaching_session_id", sa.String(36), primary_key=True),
        sa.Column("pair_id", sa.String(36), nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("booked_on", sa.Date, nullable=False),
    )
    op.create_index("ix_coaching_sessions_pair_id", "coaching_sessions", ["pair_id"])


def downgrade():
    op.drop_index("ix_coaching_sessions_pair_id", table_name="coaching_sessions")
    op.drop_table("coaching_sessions")
    op.drop_index("ix_coaching_pairs_leader_id", table_name="coaching_pairs")
    op.drop_index("ix_coaching_pairs_mentor_id", table_name="coaching_pairs")
    op.drop_table("coaching_pairs")
