"""Reads and writes catalogue state through a unit of work's session."""
from __future__ import annotations

from decimal import Decimal

from sqlalchemy import insert, select

from catalogue.adapters.tables import editions, members, offerings, subscriptions
from catalogue.domain.model import Edition, KnownMember, Offering, Subscription
from catalogue.domain.pricing import PriceTerms


def terms_to_json(terms: PriceTerms) -> dict:
    return {"model": terms.model, "flat_fee_pence": terms.flat_fee_pence, "base_fee_pence": terms.base_fee_pence,
            "rate_by_phase": {k: str(v) for k, v in terms.rate_by_phase.items()},
            "minimum_pence": terms.minimum_pence, "maximum_pence": terms.maximum_pence}


def terms_from_json(data: dict) -> PriceTerms:
    return PriceTerms(model=data["model"], flat_fee_pence=data.get("flat_fee_pence") or 0,
                      base_fee_pence=data.get("base_fee_pence") or 0,
                      rate_by_phase={k: Decimal(v) for k, v in (data.get("rate_by_phase") or {}).items()},
                      minimum_pence=data.get("minimum_pence"), maximum_pence=data.get("maximum_pence"))


def member(session, urn: str) -> KnownMember | None:
    row = session.execute(select(members).where(members.c.urn == urn)).first()
    if row is None:
        return None
    return KnownMember(urn=row.urn, name=row.name, establishment_type=row.establishment_type, phase=row.phase,
                       is_academy=row.is_academy, mat_id=row.mat_id, mat_name=row.mat_name,
                       number_on_roll=row.number_on_roll, census_date=row.census_date, status=row.status)


def upsert_member(session, values: dict) -> None:
    existing = session.execute(select(members.c.urn).where(members.c.urn == values["urn"])).first()
    if existing:
        session.execute(members.update().where(members.c.urn == values["urn"]).values(**values))
    else:
        session.execute(insert(members).values(**values))


def offering(session, code: str) -> Offering | None:
    row = session.execute(select(offerings).where(offerings.c.code == code)).first()
    if row is None:
        return None
    return Offering(code=row.code, name=row.name, service_area=row.service_area, provider=row.provider,
                    vat_treatment=row.vat_treatment, eligible_phases=tuple(row.eligible_phases.split(",")),
                    description=row.description)


def all_offerings(session) -> list[tuple[Offering, list[Edition]]]:
    result = []
    for row in session.execute(select(offerings.c.code).order_by(offerings.c.code)):
        found = offering(session, row.code)
        result.append((found, [edition(session, row.code, e.year) for e in session.execute(
            select(editions.c.year).where(editions.c.offering_code == row.code).order_by(editions.c.year))]))
    return result


def add_offering(session, item: Offering) -> None:
    session.execute(insert(offerings).values(
        code=item.code, name=item.name, service_area=item.service_area, provider=item.provider,
        vat_treatment=item.vat_treatment, eligible_phases=",".join(item.eligible_phases),
        description=item.description))


def edition(session, offering_code: str, year: int) -> Edition | None:
    row = session.execute(select(editions).where(editions.c.offering_code == offering_code,
                                                 editions.c.year == year)).first()
    if row is None:
        return None
    return Edition(offering_code=row.offering_code, year=row.year, terms=terms_from_json(row.terms),
                   on_sale=row.on_sale)


def add_edition(session, item: Edition) -> None:
    session.execute(insert(editions).values(offering_code=item.offering_code, year=item.year,
                                            terms=terms_to_json(item.terms), on_sale=item.on_sale))


def live_periods(session, urn: str, offering_code: str):
    rows = session.execute(select(subscriptions.c.period_start, subscriptions.c.period_end).where(
        subscriptions.c.urn == urn, subscriptions.c.offering_code == offering_code,
        subscriptions.c.status == "active"))
    return [(r.period_start, r.period_end) for r in rows]


def add_subscription(session, item: Subscription) -> None:
    session.execute(insert(subscriptions).values(
        id=item.id, urn=item.urn, offering_code=item.offering_code, edition_year=item.edition_year,
        payer_type=item.payer_type, period_start=item.period_start, period_end=item.period_end, years=item.years,
        annual_price_pence=item.annual_price_pence, breakdown=item.quote.breakdown(),
        census_date=item.census_date, number_on_roll=item.number_on_roll, po_number=item.po_number,
        purchased_by_name=item.purchased_by_name, purchased_by_role=item.purchased_by_role,
        purchased_on=item.purchased_on, status=item.status))


def subscriptions_of(session, urn: str) -> list[dict]:
    rows = session.execute(select(subscriptions).where(subscriptions.c.urn == urn)
                           .order_by(subscriptions.c.period_start))
    return [dict(r._mapping) for r in rows]
