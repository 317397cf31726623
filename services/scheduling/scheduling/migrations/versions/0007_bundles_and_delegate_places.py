"""bundles and per-delegate places: a bundle's included offerings (eligibility_components) and a
per-delegate SLA's quantity and edition (eligibility.quantity, .edition_year) and, for an SLA carried
on at conversion, the delegate places already used under the one it continues

Revision ID: 0007
Revises: 0006
"""
from alembic import op
import sqlalchemy as sa

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("eligibility") as batch:
        batch.add_column(sa.Column("quantity", sa.Integer, nullable=False, server_default="1"))
        batch.add_column(sa.Column("edition_year", sa.Integer))
        batch.add_column(sa.Column("delegate_places_used_before", sa.Integer, nullable=False, server_default="0"))
    op.create_table(
        "eligibility_components",
        sa.Column("subscription_id", sa.String(36), primary_key=True),
        sa.Column("offering_code", sa.String(40), primary_key=True),
        sa.Column("service_area", sa.String(40), nullable=False),
        sa.Column("included_places", sa.Integer, nullable=False, server_default="0"),
    )


def downgrade():
    op.drop_table("eligibility_components")
    with op.batch_alter_table("eligibility") as batch:
        batch.drop_column("delegate_places_used_before")
        batch.drop_column("edition_year")
        batch.drop_column("quantity")
