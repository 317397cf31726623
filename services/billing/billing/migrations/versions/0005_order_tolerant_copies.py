"""order-tolerant copies: the sequence number of the event that last set each group of a member's
facts, each dated standing and each SLA's end, so that a late, older event changes nothing; a member
row may be made by an event that knows no name yet; a charge may have several credits

Revision ID: 0005
Revises: 0004
"""
from alembic import op
import sqlalchemy as sa

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _lacks(table: str, column: str) -> bool:
    return column not in {c["name"] for c in sa.inspect(op.get_bind()).get_columns(table)}


def upgrade():
    with op.batch_alter_table("members") as batch:
        batch.alter_column("name", existing_type=sa.String(200), nullable=True)
        batch.alter_column("is_academy", existing_type=sa.Boolean, nullable=True)
        batch.add_column(sa.Column("details_sequence", sa.BigInteger))
        batch.add_column(sa.Column("lifecycle_sequence", sa.BigInteger))
    # 0002 creates these two tables from the current `tables.py`, so a new database has the
    # columns already; only one migrated before this revision lacks them.
    if _lacks("member_affiliations", "sequence"):
        with op.batch_alter_table("member_affiliations") as batch:
            batch.add_column(sa.Column("sequence", sa.BigInteger))
    if _lacks("subscriptions", "end_sequence"):
        with op.batch_alter_table("subscriptions") as batch:
            batch.add_column(sa.Column("end_sequence", sa.BigInteger))
    with op.batch_alter_table("charges") as batch:
        batch.drop_constraint("uq_charges_credits_charge_id", type_="unique")
        batch.create_index("ix_charges_credits_charge_id", ["credits_charge_id"])


def downgrade():
    # Fails, rather than dropping a credit, once some charge has two.
    with op.batch_alter_table("charges") as batch:
        batch.drop_index("ix_charges_credits_charge_id")
        batch.create_unique_constraint("uq_charges_credits_charge_id", ["credits_charge_id"])
    with op.batch_alter_table("subscriptions") as batch:
        batch.drop_column("end_sequence")
    with op.batch_alter_table("member_affiliations") as batch:
        batch.drop_column("sequence")
    members = sa.table("members", sa.column("urn"), sa.column("name"), sa.column("is_academy"))
    op.execute(members.update().where(members.c.name.is_(None)).values(name=members.c.urn))
    op.execute(members.update().where(members.c.is_academy.is_(None)).values(is_academy=sa.false()))
    with op.batch_alter_table("members") as batch:
        batch.drop_column("lifecycle_sequence")
        batch.drop_column("details_sequence")
        batch.alter_column("is_academy", existing_type=sa.Boolean, nullable=False)
        batch.alter_column("name", existing_type=sa.String(200), nullable=False)
