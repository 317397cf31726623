"""domain rules of issue 14: offerings sold only whole, and a bundle SLA's components (each included
offering's cover and share of the price) stored on the SLA

Revision ID: 0005
Revises: 0004
"""
from alembic import op
import sqlalchemy as sa

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("offerings") as batch:
        batch.add_column(sa.Column("sold_whole", sa.Boolean, nullable=False, server_default=sa.false()))
    with op.batch_alter_table("subscriptions") as batch:
        batch.add_column(sa.Column("components", sa.JSON, nullable=False, server_default="[]"))


def downgrade():
    with op.batch_alter_table("subscriptions") as batch:
        batch.drop_column("components")
    with op.batch_alter_table("offerings") as batch:
        batch.drop_column("sold_whole")
