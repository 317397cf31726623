"""Offerings, editions and purchases (SLAs). Pure Python, no I/O.

Rules enforced here:
- only a member on the day of purchase can buy (a school leaving or converting on a
  future date may still buy until the day before; an SLA it buys that runs past that
  date is ended, or moved to the academy, from it as its older SLAs were), and only through one of its active contacts whose
  role may commit the school's spending (membership's `contact_role_changed`);
- an offering is sold only to the phases and establishment types it is meant for,
  only while it is not withdrawn and its edition is on sale, and never beyond its
  capacity;
- the SLA period follows the payer: maintained schools buy April-March,
  academies September-August; agreements run 1, 2 or 3 years at a frozen price;
- no two SLAs of one school for the same offering cover the same day;
- an SLA renews automatically unless cancelled on or before its notice date
  (three months before it ends), and only once that date has passed; a cancellation or
  leaving ends it from a date;
- a period that has ended cannot be bought; bought during its period an SLA covers (and is
  charged) from the purchase date, unless the offering is sold only whole; bought after its
  notice date it renews only if the buyer confirms it;
- a bundle gives the cover of each offering it includes: it never overlaps an SLA of one of
  them, and its price is allocated to them (`pricing.allocate`);
- a per-delegate SLA of N places carries N included places.
- at academy conversion each SLA of the predecessor still running ends on the
  conversion date and continues, at the same frozen price, for the successor.

An SLA covers `period_start`..`covered_until` (both included). `covered_until` is
`period_end` until the SLA is ended early; an SLA ended before it began covers nothing.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import uuid

from catalogue.domain.pricing import PriceTerms, Quote, allocate, quote

SERVICE_AREAS = ("school_improvement", "leadership_development", "governance", "early_years_and_inclusion",
                 "safeguarding", "hr_and_finance")
VAT_TREATMENTS = ("standard", "zero", "exempt")
PHASES = ("early_years", "primary", "secondary", "all_through", "special", "not_applicable")
END_REASONS = ("left", "converted", "expired", "withdrawn")
ORIGINS = ("purchase", "renewal", "conversion")


class CatalogueRuleBroken(Exception):
    """A catalogue rule refused the change; `field` names what was wrong. `refusal` is its kind, which
    `shared.http` answers the same way in every service (422 here, 409 for a clash with the state)."""

    refusal = "rule_broken"

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


class NotAllowed(CatalogueRuleBroken):
    """The buyer may not make this purchase (not a member, not authorised, not eligible, not on sale)."""


class Overlapping(CatalogueRuleBroken):
    """An SLA for the same offering already covers part of the period."""

    refusal = "conflict"


class OverCapacity(CatalogueRuleBroken):
    """The offering is limited and already full for that period."""

    refusal = "conflict"


class Conflicting(CatalogueRuleBroken):
    """The request contradicts the catalogue's current state (exists already, already ended, ...)."""

    refusal = "conflict"


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
    status: str  # active, left, converted
    joined_on: dt.date | None = None  # a late joiner's SLA starts then (billing pro-rates the late start)
    left_on: dt.date | None = None  # first day no longer a member (left or converted); may be in the future

    def is_member_on(self, day: dt.date) -> bool:
        """Whether the school is still a member on `day`: a leaving or converting school stays one up to
        and including the day before its effective date (events arrive well before that date)."""
        if self.left_on is not None:
            return day < self.left_on
        return self.status == "active"


@dataclasses.dataclass(frozen=True)
class Contact:
    """A person's role at a member (membership's `contact_role_changed`); minimal personal data."""

    contact_id: str
    urn: str
    display_name: str
    role: str
    may_commit_spending: bool
    active: bool


@dataclasses.dataclass(frozen=True)
class Entitlement:
    kind: str
    quantity: int


@dataclasses.dataclass(frozen=True)
class Offering:
    code: str
    name: str
    service_area: str
    provider: str
    vat_treatment: str
    eligible_phases: tuple[str, ...]  # empty: every phase
    description: str = ""
    eligible_types: tuple[str, ...] = ()  # empty: every establishment type
    capacity: int | None = None
    withdrawn_on: dt.date | None = None
    # Sold only whole: bought during its period it still covers (and is charged for) the whole
    # period. Default False: a late buyer is covered and charged from the purchase date.
    sold_whole: bool = False


@dataclasses.dataclass(frozen=True)
class Edition:
    offering_code: str
    year: int  # the academic year starting in September of `year`, e.g. 2026 = 2026-27
    terms: PriceTerms
    on_sale: bool = True
    entitlements: tuple[Entitlement, ...] = ()

    @property
    def label(self) -> str:
        return f"{self.year}-{str(self.year + 1)[-2:]}"


@dataclasses.dataclass(frozen=True)
class Component:
    """One offering a bundle SLA includes: the school holds its cover, and its share of the bundle's
    price (`annual_price_pence`; the shares sum exactly to the bundle's price) carries its own VAT."""

    offering_code: str
    offering_name: str
    service_area: str
    vat_treatment: str
    entitlements: tuple[Entitlement, ...]
    annual_price_pence: int


@dataclasses.dataclass(frozen=True)
class Holding:
    """What one of the school's SLAs covers: `covers` = its own offering and, for a bundle, each included one."""

    offering_code: str
    covers: frozenset[str]
    start: dt.date
    until: dt.date


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
    quantity: int = 1
    entitlements: tuple[Entitlement, ...] = ()
    purchased_by_contact_id: str | None = None
    continues_subscription_id: str | None = None
    origin: str = "purchase"
    auto_renew: bool = True
    covered_until: dt.date | None = None
    components: tuple[Component, ...] = ()

    def __post_init__(self):
        if self.covered_until is None:
            object.__setattr__(self, "covered_until", self.period_end)

    @property
    def notice_date(self) -> dt.date:
        return notice_date(self.period_end)


def sla_period(edition_year: int, *, is_academy: bool, years: int) -> tuple[str, dt.date, dt.date]:
    """(payer type, first day, last day): academies Sep-Aug, maintained schools Apr-Mar."""
    if is_academy:
        start = dt.date(edition_year, 9, 1)
        return "academy", start, dt.date(edition_year + years, 8, 31)
    start = dt.date(edition_year, 4, 1)
    return "maintained", start, dt.date(edition_year + years, 3, 31)


def notice_date(period_end: dt.date) -> dt.date:
    """The last day to cancel an SLA's renewal: three months before the day after it ends
    (maintained 31 December for a March end, renewing in January; academies 31 May, renewing in June)."""
    after = period_end + dt.timedelta(days=1)
    month, year = after.month - 3, after.year
    if month < 1:
        month, year = month + 12, year - 1
    return dt.date(year, month, 1 if after.day == 1 else min(after.day, 28)) - dt.timedelta(days=1)


def renews_on(period_end: dt.date, today: dt.date) -> bool:
    """Whether an SLA ending on `period_end` may be renewed on `today`: only once its notice date has
    passed (until then, including on the notice date itself, the school may still cancel)."""
    return today > notice_date(period_end)


def sla_entitlements(edition: Edition, quantity: int) -> tuple[Entitlement, ...]:
    """What an SLA of `quantity` gives: a per-delegate SLA of N places carries `included_place` x N
    (the edition's per-place included places times N; one per place if it names none), so scheduling
    counts every place bought and never charges a delegate twice; other models carry the edition's."""
    if edition.terms.model != "per_delegate":
        return edition.entitlements
    places = [e for e in edition.entitlements if e.kind == "included_place"]
    others = tuple(e for e in edition.entitlements if e.kind != "included_place")
    per_place = sum(e.quantity for e in places) if places else 1
    return others + (Entitlement("included_place", per_place * quantity),)


def bundle_components(bundle_price_pence: int,
                      parts: list[tuple[Offering, Edition, int]]) -> tuple[Component, ...]:
    """A bundle's components: for each included (offering, its edition, its own price for the school),
    its cover (entitlements, VAT treatment) and its share of the bundle price, in proportion to the
    own prices, summing exactly to `bundle_price_pence`."""
    shares = allocate(bundle_price_pence, [own for _, _, own in parts])
    return tuple(Component(offering_code=item.code, offering_name=item.name, service_area=item.service_area,
                           vat_treatment=item.vat_treatment, entitlements=edition.entitlements,
                           annual_price_pence=share)
                 for (item, edition, _), share in zip(parts, shares))


def covers(offering: Offering, edition: Edition) -> frozenset[str]:
    """The offerings whose cover an SLA of this edition gives: its own and, for a bundle, each included one."""
    return frozenset((offering.code, *edition.terms.includes))


def overlaps(start: dt.date, end: dt.date, other_start: dt.date, other_end: dt.date) -> bool:
    return other_start <= end and start <= other_end


def is_eligible(offering: Offering, member: KnownMember) -> bool:
    return ((not offering.eligible_phases or member.phase in offering.eligible_phases)
            and (not offering.eligible_types or member.establishment_type in offering.eligible_types))


def check_authorised(buyer: Contact | None, *, contact_id: str, urn: str) -> Contact:
    if buyer is None or buyer.urn != urn:
        raise NotAllowed("contact_id", f"contact {contact_id} is not a contact of URN {urn} known to the catalogue")
    if not buyer.active:
        raise NotAllowed("contact_id", f"{buyer.display_name}'s role at URN {urn} has ended")
    if not buyer.may_commit_spending:
        raise NotAllowed("contact_id", f"{buyer.display_name} ({buyer.role}) may not commit the school's spending; "
                                       f"ask the head teacher or business manager")
    return buyer


def buy(*, member: KnownMember | None, urn: str, offering: Offering, edition: Edition, years: int,
        buyer: Contact | None, contact_id: str, po_number: str | None, today: dt.date,
        live_periods: list[tuple[dt.date, dt.date]], quantity: int = 1, subscriber: bool = False,
        holders: int = 0, holdings: tuple[Holding, ...] = (), components: tuple[Component, ...] = (),
        confirm_renewal: bool = False) -> Subscription:
    """A school buys an edition of an offering; the price is fixed now and kept.

    `live_periods`: what this school's SLAs for the offering cover; `holdings`: what all its
    SLAs cover (a bundle never overlaps one of its components, nor a component a bundle holding
    it); `holders`: how many SLAs of the offering cover part of the new period (for capacity);
    `subscriber`: whether the school holds another SLA in the same service area (per-delegate
    price); `components`: a bundle's included offerings with their share of its price.

    A period that has ended cannot be bought (`edition_year`). Bought during its period, the SLA
    covers from `today` (billing pro-rates the charge by days) unless the offering is sold only
    whole. Bought after its notice date, it renews only if `confirm_renewal` (otherwise
    `auto_renew` is False and the buyer is told so).
    """
    if member is None:
        raise NotAllowed("urn", f"URN {urn} is not a member known to the catalogue")
    if not member.is_member_on(today):
        raise NotAllowed("urn", f"URN {urn} is not an active member" + (
            f" (it {member.status} on {member.left_on.isoformat()})" if member.left_on is not None else ""))
    buyer = check_authorised(buyer, contact_id=contact_id, urn=urn)
    if offering.withdrawn_on is not None and offering.withdrawn_on <= today:
        raise NotAllowed("offering_code", f"{offering.name} was withdrawn on {offering.withdrawn_on.isoformat()}")
    if not is_eligible(offering, member):
        who = (member.phase if offering.eligible_phases and member.phase not in offering.eligible_phases
               else member.establishment_type.replace("_", " "))
        raise NotAllowed("offering_code", f"{offering.name} is not sold to {who} schools")
    if not edition.on_sale:
        raise NotAllowed("edition_year", f"the {edition.label} edition of {offering.name} is not on sale")
    if years not in (1, 2, 3):
        raise NotAllowed("years", "an agreement runs 1, 2 or 3 years")
    payer_type, start, end = sla_period(edition.year, is_academy=member.is_academy, years=years)
    first_year_end = sla_period(edition.year, is_academy=member.is_academy, years=1)[2]
    if today > first_year_end:
        raise NotAllowed("edition_year", f"the {edition.label} edition's period ended on "
                                         f"{first_year_end.isoformat()}: a period that has ended cannot be bought")
    if member.joined_on is not None and member.joined_on > start:  # joined (or opened) during the period
        if member.joined_on > end:
            raise NotAllowed("edition_year", f"URN {urn} joined on {member.joined_on.isoformat()}, after the "
                                             f"{edition.label} edition's period ended on {end.isoformat()}")
        start = member.joined_on
    if today > start and not offering.sold_whole:  # bought during the period: covered from today
        start = today
    if member.left_on is not None and start >= member.left_on:
        raise NotAllowed("edition_year", f"URN {urn} {member.status} on {member.left_on.isoformat()}, before the "
                                         f"{edition.label} edition's period starts on {start.isoformat()}")
    for other_start, other_end in live_periods:
        if overlaps(start, end, other_start, other_end):
            raise Overlapping("offering_code", f"URN {urn} already has {offering.name} from "
                                               f"{other_start.isoformat()} to {other_end.isoformat()}")
    wanted = covers(offering, edition)
    for held in holdings:
        if held.offering_code == offering.code:
            continue  # the same offering: `live_periods` above
        shared = sorted(held.covers & wanted)
        if shared and overlaps(start, end, held.start, held.until):
            raise Overlapping("offering_code", f"URN {urn} already holds the cover of {', '.join(shared)} "
                                               f"through {held.offering_code} from {held.start.isoformat()} to "
                                               f"{held.until.isoformat()}: a bundle and an offering it includes "
                                               f"cannot cover the same days")
    if offering.capacity is not None and holders >= offering.capacity:
        raise OverCapacity("offering_code", f"{offering.name} is full: all {offering.capacity} places from "
                                            f"{start.isoformat()} are taken")
    price = quote(edition.terms, phase=member.phase, number_on_roll=member.number_on_roll, quantity=quantity,
                  subscriber=subscriber)
    return Subscription(id=str(uuid.uuid4()), urn=urn, offering_code=offering.code, edition_year=edition.year,
                        payer_type=payer_type, period_start=start, period_end=end, years=years,
                        annual_price_pence=price.total_pence, quote=price, census_date=member.census_date,
                        number_on_roll=member.number_on_roll, po_number=po_number,
                        purchased_by_name=buyer.display_name, purchased_by_role=buyer.role,
                        purchased_by_contact_id=buyer.contact_id, purchased_on=today, quantity=quantity,
                        entitlements=sla_entitlements(edition, quantity), components=components,
                        auto_renew=today <= notice_date(end) or confirm_renewal)


def renewal_notice(sub: Subscription) -> str | None:
    """What a buyer must be told about the SLA's renewal: None when it renews as usual."""
    if sub.auto_renew or sub.purchased_on <= sub.notice_date:
        return None
    return (f"bought after its notice date {sub.notice_date.isoformat()}: this SLA will not renew into the next "
            f"period unless you confirm it (POST /subscriptions/{sub.id}/renewal)")


def confirm_renewal(sub: Subscription, *, today: dt.date) -> Subscription:
    """Confirm the renewal of an SLA bought after its notice date: the renewal round then renews it."""
    if sub.status != "active" or sub.covered_until < sub.period_end or today > sub.period_end:
        raise Conflicting("subscription_id", f"SLA {sub.id} has ended or been cancelled: nothing to renew")
    if sub.auto_renew:
        raise Conflicting("subscription_id", f"SLA {sub.id} already renews automatically")
    if sub.purchased_on <= sub.notice_date:
        raise Conflicting("subscription_id", f"the renewal of SLA {sub.id} was cancelled by its notice date "
                                             f"{sub.notice_date.isoformat()}; buy next year's edition instead")
    return dataclasses.replace(sub, auto_renew=True)


@dataclasses.dataclass(frozen=True)
class Ending:
    """An SLA ended (or cancelled) from `effective_date`, the first day no longer covered."""

    subscription_id: str
    urn: str
    effective_date: dt.date
    reason: str
    covered_until: dt.date


def end_from(sub: Subscription, effective_date: dt.date, reason: str) -> Ending | None:
    """End an SLA from a date; None when it covers nothing from that date on.

    An SLA that had not yet begun ends from its own first day (it never covers anything).
    """
    if sub.covered_until < effective_date or sub.covered_until < sub.period_start:
        return None
    first_uncovered = max(effective_date, sub.period_start)
    return Ending(sub.id, sub.urn, first_uncovered, reason, first_uncovered - dt.timedelta(days=1))


def cancel(sub: Subscription, *, effective_date: dt.date | None, today: dt.date, reason: str) -> Ending:
    """Cancel an SLA: without a date, its renewal (allowed up to the notice date; it runs to its end);
    with a date, from that day (billing pro-rates the rest)."""
    if sub.status != "active" or sub.covered_until < sub.period_end:
        raise Conflicting("subscription_id", f"SLA {sub.id} has already ended or been cancelled")
    if effective_date is None:
        if not sub.auto_renew:
            raise Conflicting("subscription_id", f"SLA {sub.id} is already set not to renew")
        if today > sub.notice_date:
            raise NotAllowed("effective_date", f"the notice date {sub.notice_date.isoformat()} has passed: SLA "
                                               f"{sub.id} renews; give an effective_date to end it early")
        return Ending(sub.id, sub.urn, sub.period_end + dt.timedelta(days=1), reason, sub.period_end)
    if not sub.period_start <= effective_date <= sub.period_end:
        raise NotAllowed("effective_date", f"the effective date must fall within the SLA's period "
                                           f"{sub.period_start.isoformat()} to {sub.period_end.isoformat()}")
    return Ending(sub.id, sub.urn, effective_date, reason, effective_date - dt.timedelta(days=1))


def moved_to_successor(sub: Subscription, *, successor: KnownMember, conversion_date: dt.date) -> Subscription:
    """The successor academy's SLA that carries on `sub` from the conversion date, at the same frozen price."""
    start = max(conversion_date, sub.period_start)
    return dataclasses.replace(
        sub, id=str(uuid.uuid4()), urn=successor.urn, payer_type="academy", period_start=start,
        covered_until=sub.period_end, status="active", continues_subscription_id=sub.id, origin="conversion")


def due_window(edition_year: int, payer_type: str) -> tuple[dt.date, dt.date]:
    """SLAs of `payer_type` ending in this window are due to renew into `edition_year`'s edition:
    the year before that edition's period starts."""
    _, start, _ = sla_period(edition_year, is_academy=payer_type == "academy", years=1)
    return start.replace(year=start.year - 1), start - dt.timedelta(days=1)


@dataclasses.dataclass(frozen=True)
class BuyBack:
    service_area: str
    year: int
    eligible: int
    renewing: int

    @property
    def rate(self) -> str:
        if not self.eligible:
            return "0.0000"
        from decimal import ROUND_HALF_UP, Decimal

        return format((Decimal(self.renewing) / Decimal(self.eligible)).quantize(Decimal("0.0001"),
                                                                                rounding=ROUND_HALF_UP), "f")


def buy_back(holdings: set[tuple[str, str, int]]) -> list[BuyBack]:
    """Buy-back rate by service area and year from (school, service area, year held) facts.

    Schools eligible in year Y are those that held the area in Y-1; renewing are those of
    them that hold it again in Y. Years with nobody eligible are left out.
    """
    by_area_year: dict[tuple[str, int], set[str]] = {}
    for school, area, year in holdings:
        by_area_year.setdefault((area, year), set()).add(school)
    report = []
    for (area, year), holders in sorted(by_area_year.items()):
        previous = by_area_year.get((area, year - 1))
        if previous:
            report.append(BuyBack(area, year, len(previous), len(previous & holders)))
    return report


def years_held(period_start: dt.date, covered_until: dt.date, payer_type: str) -> list[int]:
    """Edition years whose first day (1 April maintained, 1 September academies) this coverage includes."""
    month = 9 if payer_type == "academy" else 4
    found = []
    year = period_start.year
    while dt.date(year, month, 1) <= covered_until:
        if dt.date(year, month, 1) >= period_start:
            found.append(year)
        year += 1
    return found
