"""Offerings, editions and purchases (SLAs). Pure Python, no I/O.

Rules enforced here:
- only an active member can buy, and only a person whose role may commit the
  school's spending;
- an offering is sold only to the phases it is meant for, and only while its
  edition is on sale;
- the SLA period follows the payer: maintained schools buy April-March,
  academies September-August; agreements run 1, 2 or 3 years at a frozen price;
- no two live SLAs of one school for the same offering overlap.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import uuid

from catalogue.domain.pricing import PriceTerms, Quote, quote

SERVICE_AREAS = ("school_improvement", "leadership_development", "governance", "early_years_and_inclusion",
                 "safeguarding", "hr_and_finance")
VAT_TREATMENTS = ("standard", "zero", "exempt")
SPENDING_ROLES = ("head_teacher", "business_manager")


class CatalogueRuleBroken(Exception):
    status = "rule"

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


class NotAllowed(CatalogueRuleBroken):
    """The buyer may not make this purchase (not a member, not authorised, not eligible)."""


class Overlapping(CatalogueRuleBroken):
    """An SLA for the same offering already covers part of the period."""


@dataclasses.dataclass(frozen=True)
class KnownMember:
    """Catalogue's own copy of a member, from membership's events."""

    urn: str
    name: str
    establishment_type: str
    phase: str
    is_academy: bool
    mat_id: str | None
    mat_name: str | None
    number_on_roll: int
    census_date: dt.date
    status: str


@dataclasses.dataclass(frozen=True)
class Offering:
    code: str
    name: str
    service_area: str
    provider: str
    vat_treatment: str
    eligible_phases: tuple[str, ...]
    description: str = ""


@dataclasses.dataclass(frozen=True)
class Edition:
    offering_code: str
    year: int  # the academic year starting in September of `year`, e.g. 2026 = 2026-27
    terms: PriceTerms
    on_sale: bool = True

    @property
    def label(self) -> str:
        return f"{self.year}-{str(self.year + 1)[-2:]}"


@dataclasses.dataclass(frozen=True)
class Subscription:
    id: str
    urn: str
    offering_code: str
    edition_year: int
    payer_type: str
    period_start: dt.date
    period_end: dt.date
    years: int
    annual_price_pence: int
    quote: Quote
    census_date: dt.date
    number_on_roll: int
    po_number: str | None
    purchased_by_name: str
    purchased_by_role: str
    purchased_on: dt.date
    status: str = "active"


def sla_period(edition_year: int, *, is_academy: bool, years: int) -> tuple[str, dt.date, dt.date]:
    """(payer type, first day, last day): academies Sep-Aug, maintained schools Apr-Mar."""
    if is_academy:
        start = dt.date(edition_year, 9, 1)
        return "academy", start, dt.date(edition_year + years, 8, 31)
    start = dt.date(edition_year, 4, 1)
    return "maintained", start, dt.date(edition_year + years, 3, 31)


def buy(*, member: KnownMember | None, urn: str, offering: Offering, edition: Edition, years: int,
        purchased_by_name: str, purchased_by_role: str, po_number: str | None, today: dt.date,
        live_periods: list[tuple[dt.date, dt.date]]) -> Subscription:
    """A school buys an edition of an offering; the price is fixed now and kept."""
    if member is None:
        raise NotAllowed("urn", f"URN {urn} is not a member known to the catalogue")
    if member.status != "active":
        raise NotAllowed("urn", f"URN {urn} is not an active member")
    if purchased_by_role not in SPENDING_ROLES:
        raise NotAllowed("purchased_by.role",
                         f"a {purchased_by_role} may not commit the school's spending; ask the head teacher or business manager")
    if member.phase not in offering.eligible_phases:
        raise NotAllowed("offering_code", f"{offering.name} is not sold to {member.phase} schools")
    if not edition.on_sale:
        raise NotAllowed("edition_year", f"the {edition.label} edition of {offering.name} is not on sale")
    if years not in (1, 2, 3):
        raise NotAllowed("years", "an agreement runs 1, 2 or 3 years")
    payer_type, start, end = sla_period(edition.year, is_academy=member.is_academy, years=years)
    for other_start, other_end in live_periods:
        if other_start <= end and start <= other_end:
            raise Overlapping("offering_code", f"URN {urn} already has {offering.name} from "
                                               f"{other_start.isoformat()} to {other_end.isoformat()}")
    price = quote(edition.terms, phase=member.phase, number_on_roll=member.number_on_roll)
    return Subscription(id=str(uuid.uuid4()), urn=urn, offering_code=offering.code, edition_year=edition.year,
                        payer_type=payer_type, period_start=start, period_end=end, years=years,
                        annual_price_pence=price.total_pence, quote=price, census_date=member.census_date,
                        number_on_roll=member.number_on_roll, po_number=po_number,
                        purchased_by_name=purchased_by_name, purchased_by_role=purchased_by_role,
                        purchased_on=today)
