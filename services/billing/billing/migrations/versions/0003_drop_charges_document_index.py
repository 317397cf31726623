"""drop the index on charges.document_id: no query looks charges up by document (lines carry the
charge id), and a national run paid for it on every charge it marked invoiced

Revision ID: 0003
Revises: 0002
"""
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("charges") as batch:
        batch.drop_index("ix_charges_document_id")


def downgrade():
    with op.batch_alter_table("charges") as batch:
        batch.create_index("ix_charges_document_id", ["document_id"])
