"""complete VAT invoices and buy-back through lineage: where a school is (postcode, local authority)
and which academy replaced it; the purchase order and a bundle's components on charges and lines;
the customer's address, the tax point and the invoice contact on documents; the people invoices are
addressed to (contacts, erased_contacts); when an SLA's end was decided

Revision ID: 0006
Revises: 0005
"""
import json

from alembic import op
import sqlalchemy as sa

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# 0002 creates `subscriptions`, `documents` and `document_lines` from the current `tables.py`, so a new
# database has their new columns already; only one migrated before this revision lacks them.
NEW_COLUMNS = {
    "members": [sa.Column("postcode", sa.String(10)), sa.Column("local_authority", sa.String(100)),
                sa.Column("successor_urn", sa.String(6))],
    "subscriptions": [sa.Column("end_known_on", sa.Date)],
    "charges": [sa.Column("po_number", sa.String(40)), sa.Column("components", sa.Text)],
    "documents": [sa.Column("customer_address", sa.Text), sa.Column("tax_point", sa.Date),
                  sa.Column("contact_id", sa.String(36)), sa.Column("contact_name", sa.String(200)),
                  sa.Column("contact_email", sa.String(254))],
    "document_lines": [sa.Column("po_number", sa.String(40))],
}


def _columns(table: str) -> set[str]:
    return {c["name"] for c in sa.inspect(op.get_bind()).get_columns(table)}


def _indexes(table: str) -> set[str]:
    return {i["name"] for i in sa.inspect(op.get_bind()).get_indexes(table)}


def upgrade():
    for table, columns in NEW_COLUMNS.items():
        missing = [c for c in columns if c.name not in _columns(table)]
        if missing:
            with op.batch_alter_table(table) as batch:
                for column in missing:
                    batch.add_column(column)
    if "ix_documents_contact_id" not in _indexes("documents"):
        op.create_index("ix_documents_contact_id", "documents", ["contact_id"])
    op.create_table(
        "contacts",
        sa.Column("contact_id", sa.String(36), primary_key=True),
        sa.Column("organisation", sa.String(32), primary_key=True),
        sa.Column("role", sa.String(30), primary_key=True),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("email", sa.String(254)),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("effective_date", sa.Date, nullable=False),
        sa.Column("version", sa.BigInteger),
    )
    op.create_index("ix_contacts_organisation", "contacts", ["organisation"])
    op.create_table(
        "erased_contacts",
        sa.Column("contact_id", sa.String(36), primary_key=True),
        sa.Column("version", sa.BigInteger),
    )
    # Documents issued before: their tax point was their issue date (the time of supply billed).
    op.execute("UPDATE documents SET tax_point = issue_date WHERE tax_point IS NULL")
    _backfill_successors()


def _backfill_successors():
    """A conversion carried the school's SLAs on to the academy (`continues_subscription_id` naming an
    SLA of another school): the best record billing has of which academy replaced which school."""
    bind = op.get_bind()
    subscriptions = sa.table("subscriptions", sa.column("subscription_id"), sa.column("urn"), sa.column("terms"))
    members = sa.table("members", sa.column("urn"), sa.column("successor_urn"))
    urn_of = {}
    continued = []
    for row in bind.execute(sa.select(subscriptions.c.subscription_id, subscriptions.c.urn, subscriptions.c.terms)):
        urn_of[row.subscription_id] = row.urn
        try:
            earlier = json.loads(row.terms or "{}").get("continues_subscription_id")
        except ValueError:
            earlier = None
        if earlier:
            continued.append((earlier, row.urn))
    for earlier, successor in continued:
        predecessor = urn_of.get(earlier)
        if predecessor and predecessor != successor:
            bind.execute(members.update().where(members.c.urn == predecessor, members.c.successor_urn.is_(None))
                         .values(successor_urn=successor))


def downgrade():
    op.drop_table("erased_contacts")
    op.drop_index("ix_contacts_organisation", "contacts")
    op.drop_table("contacts")
    op.drop_index("ix_documents_contact_id", "documents")
    for table, columns in reversed(list(NEW_COLUMNS.items())):
        with op.batch_alter_table(table) as batch:
            for column in reversed(columns):
                batch.drop_column(column.name)
