"""Reads and writes billing state through a unit of work's session."""
from __future__ import annotations

from sqlalchemy import insert, select

from billing.adapters.tables import charges, mat_billing, members
from billing.domain.model import Charge


def upsert(session, table, key: str, values: dict) -> None:
    column = table.c[key]
    if session.execute(select(column).where(column == values[key])).first():
        session.execute(table.update().where(column == values[key]).values(**values))
    else:
        session.execute(insert(table).values(**values))


def mat_pays_centrally(session, mat_id: str | None) -> bool:
    if not mat_id:
        return False
    row = session.execute(select(mat_billing.c.pays_centrally).where(mat_billing.c.mat_id == mat_id)).first()
    return True if row is None else bool(row.pays_centrally)


def add_charge(session, charge: Charge) -> None:
    session.execute(insert(charges).values(
        id=charge.id, subscription_id=charge.subscription_id, urn=charge.urn, payer_kind=charge.payer.kind,
        payer_id=charge.payer.id, payer_name=charge.payer.name, offering_code=charge.offering_code,
        offering_name=charge.offering_name, service_area=charge.service_area, period_start=charge.period_start,
        period_end=charge.period_end, amount_pence=charge.amount_pence, vat_treatment=charge.vat_treatment,
        census_date=charge.census_date, number_on_roll=charge.number_on_roll, status="uninvoiced"))


def find_charges(session, *, urn: str | None = None, payer_id: str | None = None) -> list[dict]:
    query = select(charges).order_by(charges.c.period_start, charges.c.id)
    if urn:
        query = query.where(charges.c.urn == urn)
    if payer_id:
        query = query.where(charges.c.payer_id == payer_id)
    return [{k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in r._mapping.items()}
            for r in session.execute(query)]


def member_known(session, urn: str) -> bool:
    return session.execute(select(members.c.urn).where(members.c.urn == urn)).first() is not None
