"""timer periods: the hourly overdue check runs once per hour across replicas (shared.periodic)

Revision ID: 0008
Revises: 0007
"""
from alembic import op

from shared.periodic import create_timer_periods

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade():
    create_timer_periods(op)


def downgrade():
    op.drop_table("timer_periods")
