"""idempotency keys: a retried POST that records money or a purchase is answered once (shared.idempotency)

Revision ID: 0007
Revises: 0006
"""
from alembic import op

from shared.idempotency import TABLE, create_idempotency_table

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade():
    create_idempotency_table(op)


def downgrade():
    op.drop_table(TABLE)
