"""audit log: who did what, when, with what outcome (shared.audit), append-only

Revision ID: 0008
Revises: 0007
"""
from alembic import op

from shared.audit import TABLE, create_audit_log

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade():
    create_audit_log(op)


def downgrade():
    op.drop_table(TABLE)
