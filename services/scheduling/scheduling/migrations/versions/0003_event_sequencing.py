"""event sequencing: each event carries its aggregate's next sequence number (outbox.sequence,
event_sequences), so consumers can tell an older event from a newer one whatever the delivery order

Revision ID: 0003
Revises: 0002
"""
from alembic import op

from shared.messaging_tables import add_event_sequencing, drop_event_sequencing

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade():
    add_event_sequencing(op)


def downgrade():
    drop_event_sequencing(op)
