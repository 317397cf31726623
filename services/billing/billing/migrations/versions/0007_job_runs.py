"""job runs: a billing run is a job with a run resource, progress and resumption (shared.jobs)

Revision ID: 0007
Revises: 0006
"""
from alembic import op

from shared.jobs import create_job_runs

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade():
    create_job_runs(op)


def downgrade():
    op.drop_table("job_runs")
