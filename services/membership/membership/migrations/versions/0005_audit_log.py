"""audit log: who did what, when, with what outcome (shared.audit), append-only

Revision ID: 0005
Revises: 0004
"""
from alembic import op

from shared.audit import TABLE, create_audit_log

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade():
    create_audit_log(op)


def downgrade():
    op.drop_table(TABLE)
