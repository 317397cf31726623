"""job runs: a renewal round is a job with a run resource, progress and resumption (shared.jobs)

Revision ID: 0006
Revises: 0005
"""
from alembic import op

from shared.jobs import create_job_runs

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade():
    create_job_runs(op)


def downgrade():
    op.drop_table("job_runs")
