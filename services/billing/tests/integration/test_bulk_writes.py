"""The billing run's bulk paths, on SQLite and PostgreSQL.

`mark_documents_charges` updates SQLite rows by the rowid `due_charges` read in the same
transaction, PostgreSQL's set-based from the lines: either way exactly the charges read are
marked, each with its document. (The inserts are `shared.bulk`'s, tested in shared/tests.)
The run pauses Python's cyclic collector and must give it back as it found it.
"""
from __future__ import annotations

import datetime as dt
import uuid

import pytest
from sqlalchemy import insert, select

from billing.adapters import repository
from billing.adapters.tables import charges, document_lines
from billing.service_layer import handlers
from shared.db import scratch_database

@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, tmp_path):
    with scratch_database(request.param, tmp_path, "billing_bulk", migrations="billing:migrations") as db:
        yield db


def _charge(payer: int, status: str = "uninvoiced") -> dict:
    urn = f"{100000 + payer:06d}"
    return dict(id=str(uuid.uuid4()), subscription_id=str(uuid.uuid4()), urn=urn, payer_kind="school",
                payer_id=urn, payer_name=f"School {urn}", payer_key=f"school:{urn}", offering_code="SI",
                offering_name="SI", service_area="school_improvement", period_start=dt.date(2026, 9, 1),
                period_end=dt.date(2027, 8, 31), amount_pence=1000, vat_treatment="standard",
                census_date=None, number_on_roll=None, status=status, kind="charge", source="subscription",
                quantity=1, unit_price_pence=1000, basis_pence=1000, basis_days=365, attendance_id=None,
                credits_charge_id=None, description="SI", document_id=None)


def test_marking_invoiced_touches_exactly_the_charges_read(database):
    rows = [_charge(p) for p in range(6)] + [_charge(9, status="unmatched")]
    document_id = str(uuid.uuid4())
    with database.transaction() as session:
        session.execute(insert(charges), rows)
        due = repository.due_charges(session, ["school:100001", "school:100003", "school:100009"],
                                     dt.date(2027, 8, 31))
        picked = [charge for found in due.values() for charge in found]
        assert sorted(c.urn for c in picked) == ["100001", "100003"]  # the unmatched one is not due
        session.execute(insert(document_lines), [
            dict(document_id=document_id, line_no=n, charge_id=c.id, urn=c.urn, offering_code="SI",
                 description="SI", service_area="school_improvement", period_start=c.period_start,
                 period_end=c.period_end, quantity=1, unit_price_pence=1000, census_date=None,
                 number_on_roll=None, vat_treatment="standard", vat_code="S", net_pence=1000, vat_pence=200,
                 gross_pence=1200) for n, c in enumerate(picked, 1)])
        repository.mark_documents_charges(session, [(c, document_id) for c in picked])
        session.commit()
    with database.reader() as session:
        status = {r.id: (r.status, r.document_id) for r in session.execute(select(charges))}
    picked_ids = {c.id for c in picked}
    for row in rows:
        expected = ("invoiced", document_id) if row["id"] in picked_ids else (row["status"], None)
        assert status[row["id"]] == expected
