"""idempotency keys: a retried POST that records money or a purchase is answered once (shared.idempotency)

Revision ID: 0009
Revises: 0008
"""
from alembic import op

from shared.idempotency import TABLE, create_idempotency_table

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade():
    create_idempotency_table(op)


def downgrade():
    op.drop_table(TABLE)
