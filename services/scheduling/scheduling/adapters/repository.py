"""Reads and writes scheduling state through a unit of work's session."""
from __future__ import annotations

from sqlalchemy import insert, select

from scheduling.adapters.tables import eligibility, schools
from scheduling.domain.model import Eligibility


def upsert_school(session, values: dict) -> None:
    if session.execute(select(schools.c.urn).where(schools.c.urn == values["urn"])).first():
        session.execute(schools.update().where(schools.c.urn == values["urn"]).values(**values))
    else:
        session.execute(insert(schools).values(**values))


def add_eligibility(session, item: Eligibility) -> None:
    session.execute(insert(eligibility).values(
        subscription_id=item.subscription_id, urn=item.urn, offering_code=item.offering_code,
        service_area=item.service_area, period_start=item.period_start, period_end=item.period_end))


def school(session, urn: str) -> dict | None:
    row = session.execute(select(schools).where(schools.c.urn == urn)).first()
    return dict(row._mapping) if row else None


def eligibility_of(session, urn: str) -> list[dict]:
    rows = session.execute(select(eligibility).where(eligibility.c.urn == urn).order_by(eligibility.c.period_start))
    return [{k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in r._mapping.items()} for r in rows]
