"""billing in full: member history, SLAs, charge basis and credits, documents, runs, payments

Revision ID: 0002
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

NEW_TABLES = ("member_affiliations", "subscriptions", "documents", "document_lines", "document_sequences",
              "billing_runs", "payments", "overdue_notices")


def upgrade():
    from billing.adapters.tables import metadata

    bind = op.get_bind()
    for name in NEW_TABLES:
        metadata.tables[name].create(bind)
    with op.batch_alter_table("members") as batch:
        batch.add_column(sa.Column("left_on", sa.Date))
    with op.batch_alter_table("charges") as batch:
        batch.alter_column("subscription_id", existing_type=sa.String(36), nullable=True)
        batch.alter_column("census_date", existing_type=sa.Date, nullable=True)
        batch.alter_column("number_on_roll", existing_type=sa.Integer, nullable=True)
        batch.add_column(sa.Column("kind", sa.String(10), nullable=False, server_default="charge"))
        batch.add_column(sa.Column("source", sa.String(20), nullable=False, server_default="subscription"))
        batch.add_column(sa.Column("quantity", sa.Integer, nullable=False, server_default="1"))
        batch.add_column(sa.Column("unit_price_pence", sa.BigInteger, nullable=False, server_default="0"))
        batch.add_column(sa.Column("basis_pence", sa.BigInteger, nullable=False, server_default="0"))
        batch.add_column(sa.Column("basis_days", sa.Integer, nullable=False, server_default="1"))
        batch.add_column(sa.Column("attendance_id", sa.String(64)))
        batch.add_column(sa.Column("credits_charge_id", sa.String(36)))
        batch.add_column(sa.Column("description", sa.String(300), nullable=False, server_default=""))
        batch.add_column(sa.Column("document_id", sa.String(36)))
        batch.add_column(sa.Column("payer_key", sa.String(32), nullable=False, server_default=""))
        batch.create_unique_constraint("uq_charges_attendance_id", ["attendance_id"])
        batch.create_unique_constraint("uq_charges_credits_charge_id", ["credits_charge_id"])
        batch.create_index("ix_charges_document_id", ["document_id"])
        batch.create_index("ix_charges_payer_key", ["payer_key"])
    op.execute("UPDATE charges SET payer_key = payer_kind || ':' || payer_id, basis_pence = amount_pence, "
               "basis_days = 365, unit_price_pence = amount_pence")
    op.create_index("ix_charges_status_payer", "charges", ["status", "payer_key"])


def downgrade():
    op.drop_index("ix_charges_status_payer", "charges")
    for name in reversed(NEW_TABLES):
        op.drop_table(name)
