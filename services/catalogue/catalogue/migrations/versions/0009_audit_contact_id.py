"""audit log: the caller's contact id, so that a person's erasure finds the rows they made

Revision ID: 0009
Revises: 0008
"""
from alembic import op

from shared.audit import add_audit_contact_id, drop_audit_contact_id

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade():
    add_audit_contact_id(op)


def downgrade():
    drop_audit_contact_id(op)
