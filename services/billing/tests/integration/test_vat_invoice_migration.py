"""Migration 0006 (VAT invoice details, bundles, contacts, lineage) on SQLite and PostgreSQL: a database in
use at 0005 keeps its rows, gains the new columns and tables, learns which academy replaced which school
from the SLAs carried on at conversion, gives issued documents their tax point (the issue date), and goes
back to 0005."""
from __future__ import annotations

import datetime as dt
import json

import pytest
import sqlalchemy as sa

from billing.adapters.tables import documents, members
from shared.db import scratch_database

# What 0002 builds from the current tables.py but a database migrated by the code of its time lacks.
ADDED_BY_0006 = {"subscriptions": ["end_known_on"], "document_lines": ["po_number"],
                 "documents": ["customer_address", "tax_point", "contact_id", "contact_name", "contact_email"]}


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, tmp_path):
    with scratch_database(request.param, tmp_path, "billing_0006") as db:
        yield db


def _alembic(database, action: str, revision: str) -> None:
    database.migrate("billing:migrations", action, revision)


def _sla(subscription_id, urn, continues=None) -> dict:
    terms = {"subscription_id": subscription_id, "urn": urn, "period_start": "2026-04-01",
             "period_end": "2027-03-31", "census": {"date": "2025-10-02", "number_on_roll": 210},
             "continues_subscription_id": continues}
    return {"subscription_id": subscription_id, "urn": urn, "period_start": dt.date(2026, 4, 1),
            "period_end": dt.date(2027, 3, 31), "terms": json.dumps(terms)}


def test_a_database_at_0005_is_carried_over_and_back(database):
    database.upgrade("billing:migrations", "0005")
    with database.engine.begin() as connection:
        connection.execute(sa.text("DROP INDEX ix_documents_contact_id"))
        for table, columns in ADDED_BY_0006.items():
            for column in columns:
                connection.execute(sa.text(f"ALTER TABLE {table} DROP COLUMN {column}"))
        for urn in ("110001", "149001", "110002"):
            connection.execute(sa.text("INSERT INTO members (urn, name, is_academy) VALUES (:u, 'School', false)"),
                               {"u": urn})
        subscriptions = sa.table("subscriptions", sa.column("subscription_id"), sa.column("urn"),
                                 sa.column("period_start"), sa.column("period_end"), sa.column("terms"))
        connection.execute(sa.insert(subscriptions), [
            _sla("s-school", "110001"), _sla("s-academy", "149001", continues="s-school"),
            _sla("s-renewed", "149001", continues="s-academy"), _sla("s-other", "110002")])
        connection.execute(sa.text(
            "INSERT INTO documents (id, kind, number, operator_name, operator, payer_kind, payer_id, payer_name, "
            "payer_key, issue_date, due_date, net_pence, vat_pence, gross_pence, created_at) VALUES ('d-1', "
            "'invoice', 'BLT-000001', 'blt', '{}', 'school', '110001', 'School', 'school:110001', '2026-09-01', "
            "'2026-10-01', 100, 20, 120, '2026-09-01 09:00:00')"))

    database.upgrade("billing:migrations")

    with database.engine.begin() as connection:
        assert dict(connection.execute(sa.select(members.c.urn, members.c.successor_urn)).all()) == {
            "110001": "149001", "149001": None, "110002": None}
        assert connection.execute(sa.select(documents.c.number, documents.c.tax_point)).all() == [
            ("BLT-000001", dt.date(2026, 9, 1))]
        tables = set(sa.inspect(connection).get_table_names())
        assert {"contacts", "erased_contacts"} <= tables

    _alembic(database, "downgrade", "0005")
    with database.engine.begin() as connection:
        inspector = sa.inspect(connection)
        assert "contacts" not in inspector.get_table_names()
        assert "successor_urn" not in {c["name"] for c in inspector.get_columns("members")}
        assert "tax_point" not in {c["name"] for c in inspector.get_columns("documents")}
        assert connection.execute(sa.text("SELECT number FROM documents")).scalars().all() == ["BLT-000001"]
