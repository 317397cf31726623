"""full catalogue: contacts, eligibility by type, capacity, withdrawal, entitlements,
quantities, renewals, conversions and early endings

Revision ID: 0002
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("members") as batch:
        batch.add_column(sa.Column("left_on", sa.Date))
        batch.add_column(sa.Column("predecessor_urn", sa.String(6)))
        batch.add_column(sa.Column("successor_urn", sa.String(6)))
    op.create_table(
        "contacts",
        sa.Column("contact_id", sa.String(36), primary_key=True),
        sa.Column("urn", sa.String(6), primary_key=True),
        sa.Column("role", sa.String(40), primary_key=True),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("may_commit_spending", sa.Boolean, nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("effective_date", sa.Date, nullable=False),
    )
    with op.batch_alter_table("offerings") as batch:
        batch.add_column(sa.Column("eligible_types", sa.String(400), nullable=False, server_default=""))
        batch.add_column(sa.Column("capacity", sa.Integer))
        batch.add_column(sa.Column("withdrawn_on", sa.Date))
    with op.batch_alter_table("editions") as batch:
        batch.add_column(sa.Column("entitlements", sa.JSON, nullable=False, server_default="[]"))
    with op.batch_alter_table("subscriptions") as batch:
        batch.add_column(sa.Column("quantity", sa.Integer, nullable=False, server_default="1"))
        batch.add_column(sa.Column("entitlements", sa.JSON, nullable=False, server_default="[]"))
        batch.add_column(sa.Column("purchased_by_contact_id", sa.String(36)))
        batch.add_column(sa.Column("continues_subscription_id", sa.String(36)))
        batch.add_column(sa.Column("origin", sa.String(20), nullable=False, server_default="purchase"))
        batch.add_column(sa.Column("auto_renew", sa.Boolean, nullable=False, server_default=sa.true()))
        batch.add_column(sa.Column("covered_until", sa.Date))
        batch.add_column(sa.Column("end_reason", sa.String(20)))
        batch.add_column(sa.Column("ended_from", sa.Date))
        batch.add_column(sa.Column("cancelled_on", sa.Date))
    op.execute("UPDATE subscriptions SET covered_until = period_end")
    with op.batch_alter_table("subscriptions") as batch:
        batch.alter_column("covered_until", existing_type=sa.Date, nullable=False)
        batch.create_index("ix_subscriptions_offering_period", ["offering_code", "period_start"])
        batch.create_index("ix_subscriptions_due", ["period_end"])
        batch.create_index("ux_subscriptions_continuation", ["continues_subscription_id", "origin"], unique=True)


def downgrade():
    with op.batch_alter_table("subscriptions") as batch:
        batch.drop_index("ux_subscriptions_continuation")
        batch.drop_index("ix_subscriptions_due")
        batch.drop_index("ix_subscriptions_offering_period")
        for column in ("cancelled_on", "ended_from", "end_reason", "covered_until", "auto_renew",
                       "origin", "continues_subscription_id", "purchased_by_contact_id", "entitlements",
                       "quantity"):
            batch.drop_column(column)
    with op.batch_alter_table("editions") as batch:
        batch.drop_column("entitlements")
    with op.batch_alter_table("offerings") as batch:
        for column in ("withdrawn_on", "capacity", "eligible_types"):
            batch.drop_column(column)
    op.drop_table("contacts")
    with op.batch_alter_table("members") as batch:
        for column in ("successor_urn", "predecessor_urn", "left_on"):
            batch.drop_column(column)
