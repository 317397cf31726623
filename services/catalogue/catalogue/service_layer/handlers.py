"""Catalogue use cases: each takes a unit of work (or a factory of them) and a validated command.

Every state change commits together with the events it causes (the outbox);
a refused command raises a `CatalogueRuleBroken` before anything is written.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import time
import uuid
from decimal import Decimal

from shared import bulk

from catalogue.adapters import repository
from catalogue.adapters.tables import subscriptions
from catalogue.domain import member_copy, model
from catalogue.service_layer import commands
from catalogue.domain.pricing import (PriceTerms, PricingError, check_terms, quote, terms_from_json, terms_to_json,
                                      uplifted)
from catalogue.messages.consumed import CensusReturn, Conversion, DetailsChange, Erasure, Joining, Leaving, RoleChange

SERVICE = "catalogue"


class UnknownOffering(Exception):
    """No such offering (or edition of it): 404, naming `offering_code`."""

    refusal = "not_found"
    field = "offering_code"

    def __init__(self, code: str):
        super().__init__(f"no offering {code}")


class UnknownSubscription(Exception):
    """No such subscription: 404, naming `subscription_id`."""

    refusal = "not_found"
    field = "subscription_id"

    def __init__(self, subscription_id):
        super().__init__(f"no subscription {subscription_id}")


# -- membership's events -----------------------------------------------------------------------
# Each applies an event only where it is newer than what the catalogue's copy holds, facet by
# facet (`catalogue.domain.member_copy`); otherwise it is only recorded as seen (the unit of
# work's inbox row), so the copy ends the same whatever order the events arrive in.
def _numbered(aggregate: str | None, about: str, sequence: int | None) -> int | None:
    """The event's number, checked to be numbered in the aggregate it is about (`about`)."""
    if sequence is not None and aggregate is not None and aggregate != about:
        # a number from another aggregate says nothing about this one's order: a producer's bug
        raise ValueError(f"event numbered {sequence} in {aggregate!r}, expected {about!r}")
    return sequence


def _change_member(session, urn: str, change) -> tuple[member_copy.MemberCopy, member_copy.MemberCopy]:
    """Apply `change` (copy -> copy) to the school's copy, locked; the first event about a school
    creates it. Returns the copy before and after."""
    before = repository.member_copy(session, urn, for_update=True)
    if before is None:
        before = member_copy.MemberCopy(urn)
        after = change(before)
        if repository.save_member_copy(session, after, new=True):
            return before, after
        before = repository.member_copy(session, urn, for_update=True)  # another event about it came first
    after = change(before)
    if after != before:
        repository.save_member_copy(session, after, new=False)
    return before, after


def record_member_joined(uow, joining: Joining, *, sequence: int | None = None, aggregate: str | None = None) -> None:
    """Keep the catalogue's copy of a member (membership's `member_joined`); a joining older than
    the school's recorded leaving never makes it a member again."""
    number = _numbered(aggregate, f"school:{joining.urn}", sequence)
    with uow:
        _change_member(uow.session, joining.urn, lambda m: member_copy.joined(
            m, joining.details, joining.roll, joining.joined_on, number))
        uow.commit()


def record_member_details_changed(uow, change: DetailsChange, *, sequence: int | None = None,
                                  aggregate: str | None = None) -> None:
    """The member's current details, unless newer ones are recorded."""
    number = _numbered(aggregate, f"school:{change.urn}", sequence)
    with uow:
        _change_member(uow.session, change.urn, lambda m: member_copy.details_changed(m, change.details, number))
        uow.commit()


def record_census(uow, census: CensusReturn, *, sequence: int | None = None, aggregate: str | None = None) -> None:
    """The newest census prices the member's next per-pupil purchase or renewal (never an SLA already sold)."""
    number = _numbered(aggregate, f"school:{census.urn}", sequence)
    with uow:
        _change_member(uow.session, census.urn, lambda m: member_copy.census_recorded(m, census.roll, number))
        uow.commit()


def record_contact_role(uow, change: RoleChange, *, sequence: int | None = None, aggregate: str | None = None) -> None:
    """A person's role at a member, unless a newer change of that role is recorded or the person was erased."""
    number = _numbered(aggregate, f"contact:{change.contact_id}", sequence)
    with uow:
        session = uow.session
        repository.lock_contact(session, change.contact_id)
        recorded = repository.recorded_role(session, change.contact_id, change.urn, change.role)
        if member_copy.role_change_applies(recorded, erased=repository.is_erased(session, change.contact_id),
                                           effective_date=change.effective_date, sequence=number):
            version = number if number is not None else recorded and recorded.version
            repository.save_role(session, dict(dataclasses.asdict(change), version=version), new=recorded is None)
        uow.commit()


def erase_contact(uow, erasure: Erasure, *, sequence: int | None = None, aggregate: str | None = None) -> None:
    """Remove the person's name and roles wherever the catalogue kept them (their SLAs stay, anonymised),
    and keep a tombstone so that no role change, whenever it arrives, brings them back."""
    number = _numbered(aggregate, f"contact:{erasure.contact_id}", sequence)
    with uow:
        repository.lock_contact(uow.session, erasure.contact_id)
        repository.erase_contact(uow.session, erasure.contact_id, number)
        uow.commit()


def ending_payload(ending: model.Ending) -> dict:
    return {"subscription_id": ending.subscription_id, "urn": ending.urn, "effective_date": ending.effective_date,
            "reason": ending.reason}


def _publish_ending(uow, ending: model.Ending) -> None:
    uow.publish("subscription_ended", ending_payload(ending), aggregate=f"school:{ending.urn}")


def _end_subscription(uow, sub: model.Subscription, day: dt.date, reason: str) -> model.Ending | None:
    """End an SLA from `day` if it still runs then: recorded as ended and `subscription_ended` published."""
    ending = model.end_from(sub, day, reason)
    if ending is not None:
        repository.record_ending(uow.session, ending, status="ended")
        _publish_ending(uow, ending)
    return ending


def _carry_to_successor(uow, sub: model.Subscription, successor, day: dt.date, offering) -> model.Subscription:
    """At a conversion an ended SLA carries on for the successor at the same frozen price: `subscription_started`."""
    carried = model.moved_to_successor(sub, successor=successor, conversion_date=day)
    repository.add_subscription(uow.session, carried)
    uow.publish("subscription_started", subscription_payload(carried, successor, offering),
                aggregate=f"school:{carried.urn}")
    return carried


def _follow_standing(uow, sub: model.Subscription, member: model.KnownMember, offering) -> None:
    """An SLA of a school whose leaving or conversion is already recorded (its date may be ahead) ends
    from that day, as the school's older SLAs did; at a conversion it carries on for the successor,
    and follows that one's recorded leaving or conversion in turn."""
    session = uow.session
    followed = set()
    while member is not None and member.left_on is not None and member.urn not in followed:
        followed.add(member.urn)
        converted = member.status == member_copy.CONVERTED
        if _end_subscription(uow, sub, member.left_on, "converted" if converted else "left") is None or not converted:
            return
        successor = repository.member(session, repository.member_copy(session, member.urn).successor_urn)
        if successor is None:
            return
        sub = _carry_to_successor(uow, sub, successor, member.left_on, offering)
        member = successor


def _running_from(session, urn: str, day: dt.date, *, latest: bool) -> list[model.Subscription]:
    """The school's SLAs a leaving or conversion from `day` ends. When it is not the school's latest
    standing (it re-joined later, and that arrived first) only those begun before `day`: anything
    from then on was bought in the later membership."""
    running = repository.covering_from(session, urn, day)
    return running if latest else [sub for sub in running if sub.period_start < day]


def record_member_left(uow, leaving: Leaving, *, sequence: int | None = None,
                       aggregate: str | None = None) -> list[model.Ending]:
    """A member left: its SLAs end from the leaving date (`subscription_ended`, reason left).

    The leaving date may be in the future: the school stays a member (and may buy) until the day
    before it (`KnownMember.is_member_on`); the stored status says what will happen, `left_on` when.
    A leaving that arrives before the school's joining is recorded all the same: the school is
    then known as left, and the joining arriving later does not make it a member again."""
    number = _numbered(aggregate, f"school:{leaving.urn}", sequence)
    with uow:
        session = uow.session
        left_on = leaving.effective_date
        before, _ = _change_member(session, leaving.urn, lambda m: member_copy.left(m, left_on, number))
        latest = member_copy.is_latest_standing(before, number)
        endings = [_end_subscription(uow, sub, left_on, "left")
                   for sub in _running_from(session, leaving.urn, left_on, latest=latest)]
        uow.commit()
    return [ending for ending in endings if ending is not None]


def record_conversion(uow, conversion: Conversion, *, sequence: int | None = None,
                      aggregate: str | None = None) -> list[tuple[model.Ending, model.Subscription]]:
    """Academy conversion: the successor becomes a member (same membership, continuous); each
    predecessor SLA still running ends on the conversion date (reason converted) and carries on
    for the successor at the same frozen price, to the old period's end (and, if the successor's
    own leaving arrived first, ends from that as well).

    The event is numbered in the predecessor's aggregate: it is the predecessor's standing; for the
    successor it is the first event, so its facts there yield to any of the successor's own."""
    old, new, day = conversion.predecessor_urn, conversion.successor_urn, conversion.conversion_date
    number = _numbered(aggregate, f"school:{old}", sequence)
    with uow:
        session = uow.session
        before, _ = _change_member(session, old, lambda m: member_copy.converted_predecessor(m, day, new, number))
        latest = member_copy.is_latest_standing(before, number)
        _, after = _change_member(session, new, lambda m: member_copy.converted_successor(
            m, day, conversion.successor_details, conversion.successor_roll, old))
        successor = after.known()
        moved = []
        for sub in _running_from(session, old, day, latest=latest):
            ending = _end_subscription(uow, sub, day, "converted")
            if ending is not None:
                offering = repository.offering(session, sub.offering_code)
                carried = _carry_to_successor(uow, sub, successor, day, offering)
                _follow_standing(uow, carried, successor, offering)
                moved.append((ending, carried))
        uow.commit()
    return moved


# -- offerings and editions --------------------------------------------------------------------
def offering_payload(item: model.Offering) -> dict:
    return {"offering_code": item.code, "name": item.name, "service_area": item.service_area,
            "provider": item.provider, "description": item.description, "vat_treatment": item.vat_treatment,
            "eligibility": {"phases": list(item.eligible_phases), "establishment_types": list(item.eligible_types)},
            "capacity": item.capacity}


def edition_payload(item: model.Edition) -> dict:
    return {"offering_code": item.offering_code, "edition_year": item.year, "pricing": terms_to_json(item.terms),
            "entitlements": repository.entitlements_to_json(item.entitlements), "on_sale": item.on_sale}


def _terms(data: dict) -> PriceTerms:
    terms = terms_from_json(data)
    try:
        check_terms(terms)
    except PricingError as exc:
        raise model.NotAllowed(f"terms.{exc.field}", exc.message) from None
    return terms


def _edition(code: str, command: commands.PriceEdition) -> model.Edition:
    return model.Edition(offering_code=code, year=command.year, terms=_terms(command.terms),
                         on_sale=command.on_sale,
                         entitlements=tuple(model.Entitlement(e["kind"], e["quantity"])
                                            for e in command.entitlements))


def publish_offering(uow, command: commands.PublishOffering, provider: str) -> model.Offering:
    """Add an offering (and its first edition if given): `offering_published`, `edition_priced`."""
    with uow:
        uow.lock(f"offering:{command.code}")  # replicas: one change of an offering at a time
        if repository.offering(uow.session, command.code) is not None:
            raise model.Conflicting("code", f"offering {command.code} already exists")
        item = model.Offering(code=command.code, name=command.name, service_area=command.service_area,
                              provider=provider, vat_treatment=command.vat_treatment,
                              eligible_phases=tuple(command.eligible_phases),
                              description=command.description,
                              eligible_types=tuple(command.eligible_establishment_types),
                              capacity=command.capacity, sold_whole=command.sold_whole)
        edition = _edition(item.code, command.edition) if command.edition is not None else None
        if edition is not None:
            _check_bundle(uow.session, edition)
        repository.add_offering(uow.session, item)
        uow.publish("offering_published", offering_payload(item), aggregate=f"offering:{item.code}")
        if edition is not None:
            repository.add_edition(uow.session, edition)
            uow.publish("edition_priced", edition_payload(edition), aggregate=f"offering:{item.code}")
        uow.commit()
    return item


def _check_bundle(session, edition: model.Edition) -> None:
    for code in edition.terms.includes:
        if code == edition.offering_code or repository.offering(session, code) is None:
            raise model.NotAllowed("terms.includes", f"a bundle packages existing offerings; {code} is not one")


def add_edition(uow, offering_code: str, command: commands.PriceEdition) -> model.Edition:
    """Price a new edition of an offering (`edition_priced`); an edition's price never changes once set."""
    with uow:
        uow.lock(f"offering:{offering_code}")  # replicas: one change of an offering at a time
        found = repository.offering(uow.session, offering_code)
        if found is None:
            raise UnknownOffering(offering_code)
        if found.withdrawn_on is not None:
            raise model.NotAllowed("offering_code", f"{found.name} was withdrawn on {found.withdrawn_on.isoformat()}")
        if repository.edition(uow.session, offering_code, command.year) is not None:
            raise model.Conflicting("year", f"{found.name} already has a {command.year} edition; "
                                            f"a sold price never changes")
        edition = _edition(offering_code, command)
        _check_bundle(uow.session, edition)
        repository.add_edition(uow.session, edition)
        uow.publish("edition_priced", edition_payload(edition), aggregate=f"offering:{offering_code}")
        uow.commit()
    return edition


def set_on_sale(uow, offering_code: str, year: int, on_sale: bool) -> model.Edition:
    with uow:
        uow.lock(f"offering:{offering_code}")  # replicas: one change of an offering at a time
        found = repository.offering(uow.session, offering_code)
        if found is None:
            raise UnknownOffering(offering_code)
        edition = repository.edition(uow.session, offering_code, year)
        if edition is None:
            raise UnknownOffering(f"{offering_code} {year}")
        if on_sale and found.withdrawn_on is not None:
            raise model.NotAllowed("on_sale", f"{found.name} was withdrawn on {found.withdrawn_on.isoformat()}")
        if edition.on_sale != on_sale:
            repository.set_on_sale(uow.session, offering_code, year, on_sale)
            edition = dataclasses.replace(edition, on_sale=on_sale)
            uow.publish("edition_priced", edition_payload(edition), aggregate=f"offering:{offering_code}")
        uow.commit()
    return edition


def withdraw_offering(uow, offering_code: str, effective_date: dt.date) -> list[model.Ending]:
    """Stop selling an offering from a date: its editions go off sale and its SLAs end then (reason withdrawn)."""
    with uow:
        uow.lock(f"offering:{offering_code}")  # replicas: one change of an offering at a time
        session = uow.session
        found = repository.offering(session, offering_code)
        if found is None:
            raise UnknownOffering(offering_code)
        if found.withdrawn_on is not None:
            raise model.Conflicting("offering_code", f"{found.name} was already withdrawn on "
                                                     f"{found.withdrawn_on.isoformat()}")
        on_sale = [e for _, eds in repository.all_offerings(session, offering_code) for e in eds if e.on_sale]
        repository.withdraw_offering(session, offering_code, effective_date)
        uow.publish("offering_withdrawn", {"offering_code": offering_code, "effective_date": effective_date},
                    aggregate=f"offering:{offering_code}")
        for edition in on_sale:
            uow.publish("edition_priced", edition_payload(dataclasses.replace(edition, on_sale=False)),
                        aggregate=f"offering:{offering_code}")
        endings = [_end_subscription(uow, sub, effective_date, "withdrawn")
                   for sub in repository.of_offering_from(session, offering_code, effective_date)]
        uow.commit()
    return [ending for ending in endings if ending is not None]


# -- quotes and purchases ----------------------------------------------------------------------
def _priced_context(session, command: commands.Quote | commands.BuySubscription):
    offering = repository.offering(session, command.offering_code)
    if offering is None:
        raise UnknownOffering(command.offering_code)
    edition = repository.edition(session, offering.code, command.edition_year)
    if edition is None:
        raise model.NotAllowed("edition_year", f"{offering.name} has no {command.edition_year} edition")
    member = repository.member(session, command.urn)
    if member is None:
        raise model.NotAllowed("urn", f"URN {command.urn} is not a member known to the catalogue")
    _, start, _ = model.sla_period(edition.year, is_academy=member.is_academy, years=1)
    subscriber = repository.holds_area(session, member.urn, offering.service_area, start, other_than=offering.code)
    return offering, edition, member, subscriber


def quote_for(session, command: commands.Quote, today: dt.date) -> dict:
    """The price a named school would pay for an edition, with the census used and every step."""
    offering, edition, member, subscriber = _priced_context(session, command)
    result = quote(edition.terms, phase=member.phase, number_on_roll=member.number_on_roll,
                   quantity=command.quantity, subscriber=subscriber)
    payer_type, start, end = model.sla_period(edition.year, is_academy=member.is_academy, years=1)
    if member.joined_on is not None and start < member.joined_on <= end:  # as `model.buy`: a late joiner's start
        start = member.joined_on
    if start < today <= end and not offering.sold_whole:  # as `model.buy`: bought during the period
        start = today
    return {"urn": member.urn, "school_name": member.name, "offering_code": offering.code,
            "offering_name": offering.name, "edition_year": edition.year, "on_sale": edition.on_sale,
            "eligible": model.is_eligible(offering, member), "payer_type": payer_type,
            "period_start": start.isoformat(), "period_end": end.isoformat(), "phase": member.phase,
            "census": {"date": member.census_date.isoformat(), "number_on_roll": member.number_on_roll},
            "quantity": result.quantity, "subscriber": subscriber, "pricing": terms_to_json(edition.terms),
            "price_breakdown": result.breakdown(), "annual_price_pence": result.total_pence,
            "vat_treatment": offering.vat_treatment, "sold_whole": offering.sold_whole,
            "entitlements": repository.entitlements_to_json(model.sla_entitlements(edition, result.quantity))}


def bundle_components(edition: model.Edition, member: model.KnownMember, price_pence: int, *,
                      offering_of, edition_of) -> tuple[model.Component, ...]:
    """A bundle SLA's components (empty for any other SLA): each included offering with its edition of the
    same year, weighted by its own price for this school (0 where it cannot be priced for it), sharing
    `price_pence` exactly (`model.bundle_components`). `offering_of`/`edition_of`: lookups by code."""
    if edition.terms.model != "bundle":
        return ()
    parts = []
    for code in edition.terms.includes:
        item, part = offering_of(code), edition_of(code)
        if item is None or part is None:
            raise model.NotAllowed("offering_code", f"the bundle includes {code}, which has no {edition.label} "
                                                    f"edition whose cover it could give")
        try:
            own = quote(part.terms, phase=member.phase, number_on_roll=member.number_on_roll).total_pence
        except PricingError:
            own = 0
        parts.append((item, part, own))
    return model.bundle_components(price_pence, parts)


def buy_subscription(uow, command: commands.BuySubscription, today: dt.date) -> model.Subscription:
    """A school buys an SLA; commits it and `subscription_started` together.

    Replicas: the school's lock (`UnitOfWork.lock`) is taken before its SLAs are read, so of two
    identical purchases at once the second sees the first's SLA and is refused as overlapping (409)."""
    with uow:
        uow.lock(f"school:{command.urn}")
        session = uow.session
        offering, edition, member, subscriber = _priced_context(session, command)
        years = command.years
        _, start, end = model.sla_period(edition.year, is_academy=member.is_academy, years=max(1, min(years, 3)))
        if offering.capacity:
            # count the places and take one under the offering's lock: never two buyers of the last place
            repository.lock_offering(session, offering.code)
        components = ()
        if edition.terms.model == "bundle":
            components = bundle_components(
                edition, member, quote(edition.terms, phase=member.phase, number_on_roll=member.number_on_roll)
                .total_pence, offering_of=lambda code: repository.offering(session, code),
                edition_of=lambda code: repository.edition(session, code, edition.year))
        subscription = model.buy(
            member=member, urn=command.urn, offering=offering, edition=edition, years=years,
            buyer=repository.contact(session, command.contact_id, command.urn),
            contact_id=command.contact_id, po_number=command.po_number, today=today,
            live_periods=repository.live_periods(session, command.urn, offering.code),
            quantity=command.quantity, subscriber=subscriber,
            holders=repository.holders(session, offering.code, start, end) if offering.capacity else 0,
            holdings=repository.school_holdings(session, command.urn), components=components,
            confirm_renewal=command.renew)
        repository.add_subscription(session, subscription)
        uow.publish("subscription_started", subscription_payload(subscription, member, offering),
                    aggregate=f"school:{subscription.urn}")
        # bought before a known leaving or conversion date: treated as the school's older SLAs were
        _follow_standing(uow, subscription, member, offering)
        uow.commit()
    return subscription


def cancel_subscription(uow, subscription_id: str, command: commands.CancelSubscription, today: dt.date) -> model.Ending:
    """Cancel an SLA's renewal (up to its notice date) or end it from a date: `subscription_cancelled`."""
    with uow:
        uow.lock(f"subscription:{subscription_id}")  # replicas: one change of an SLA at a time
        session = uow.session
        sub = repository.subscription(session, subscription_id)
        if sub is None:
            raise UnknownSubscription(subscription_id)
        model.check_authorised(repository.contact(session, command.contact_id, sub.urn),
                               contact_id=command.contact_id, urn=sub.urn)
        ending = model.cancel(sub, effective_date=command.effective_date, today=today,
                              reason=command.reason)
        if command.effective_date is None:
            repository.stop_renewal(session, sub.id, today, command.reason)
        else:
            repository.record_ending(session, ending, status="cancelled", cancelled_on=today)
        _publish_cancelled(uow, ending, today)
        # A renewal recorded before the notice date (a round run too early) is undone: the SLA does not
        # renew, so its renewal never covers anything and billing credits its whole charge.
        renewal = repository.renewal_of(session, sub.id)
        undone = renewal and model.end_from(renewal, renewal.period_start, command.reason)
        if undone is not None:
            repository.record_ending(session, undone, status="cancelled", cancelled_on=today)
            _publish_cancelled(uow, undone, today)
        uow.commit()
    return ending


def _publish_cancelled(uow, ending: model.Ending, today: dt.date) -> None:
    uow.publish("subscription_cancelled", {"subscription_id": ending.subscription_id, "urn": ending.urn,
                                           "cancelled_on": today, "effective_date": ending.effective_date,
                                           "reason": ending.reason}, aggregate=f"school:{ending.urn}")


def confirm_renewal(uow, subscription_id: str, command: commands.ConfirmRenewal, today: dt.date) -> model.Subscription:
    """Confirm that an SLA bought after its notice date renews: the next renewal round renews it."""
    with uow:
        uow.lock(f"subscription:{subscription_id}")  # replicas: one change of an SLA at a time
        session = uow.session
        sub = repository.subscription(session, subscription_id)
        if sub is None:
            raise UnknownSubscription(subscription_id)
        model.check_authorised(repository.contact(session, command.contact_id, sub.urn),
                               contact_id=command.contact_id, urn=sub.urn)
        confirmed = model.confirm_renewal(sub, today=today)
        repository.confirm_renewal(session, sub.id)
        uow.commit()
    return confirmed


def subscription_payload(sub: model.Subscription, member: model.KnownMember, offering: model.Offering) -> dict:
    return {
        "subscription_id": sub.id, "urn": sub.urn, "school_name": member.name, "is_academy": member.is_academy,
        "mat": {"id": member.mat_id, "name": member.mat_name} if member.mat_id else None,
        "payer_type": sub.payer_type, "offering_code": offering.code, "offering_name": offering.name,
        "service_area": offering.service_area, "vat_treatment": offering.vat_treatment,
        "edition_year": sub.edition_year, "period_start": sub.period_start, "period_end": sub.period_end,
        "years": sub.years, "quantity": sub.quantity, "annual_price_pence": sub.annual_price_pence,
        "price_breakdown": sub.quote.breakdown(),
        "census": {"date": sub.census_date, "number_on_roll": sub.number_on_roll},
        "po_number": sub.po_number, "purchased_on": sub.purchased_on,
        "entitlements": repository.entitlements_to_json(sub.entitlements),
        "continues_subscription_id": sub.continues_subscription_id,
        "components": repository.components_to_json(sub.components),
    }


# -- renewal round -----------------------------------------------------------------------------

@dataclasses.dataclass
class RoundSummary:
    year: int
    editions_opened: list[str] = dataclasses.field(default_factory=list)
    due: int = 0
    renewed: int = 0
    expired: int = 0
    already_bought: int = 0
    awaiting_notice: int = 0
    events: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def open_editions(uow, year: int, uplift_percent: Decimal) -> list[str]:
    """Open `year`'s edition of every offering still sold that has last year's and not this year's,
    at last year's terms raised by `uplift_percent`, with the same entitlements."""
    opened = []
    with uow:
        for item, editions in repository.all_offerings(uow.session):
            years = {e.year: e for e in editions}
            if item.withdrawn_on is not None or year in years or (year - 1) not in years:
                continue
            last = years[year - 1]
            edition = model.Edition(offering_code=item.code, year=year, terms=uplifted(last.terms, uplift_percent),
                                    on_sale=True, entitlements=last.entitlements)
            repository.add_edition(uow.session, edition)
            uow.publish("edition_priced", edition_payload(edition), aggregate=f"offering:{item.code}")
            opened.append(item.code)
        uow.commit()
    return opened


def run_renewal_round(uows, *, year: int, today: dt.date, uplift_percent: Decimal = Decimal(0),
                      chunk_size: int = 5000, control=None) -> RoundSummary:
    """The renewal round: open `year`'s editions, then renew every SLA due into them whose notice date
    has passed.

    Due: auto-renewing, not yet continued by a renewal, still covering to its end, and ending in the
    year before `year`'s period starts for its payer type. Each is judged on its own notice date: until
    it has passed (and on it) the school may still cancel, so the SLA is left alone (`awaiting_notice`)
    for a later run; maintained schools' round runs in January, academies' in June, and one round may
    serve both. Once it has passed the SLA is renewed for the same number of years at `year`'s price for
    the school's current census, a subscriber if on the new period's first day it holds the cover of
    another offering of the area (as at purchase, including SLAs renewed in this round), or, when it
    cannot be (the school left, is no longer eligible, the edition is not on sale, no price fits), it
    ends as expired. A school that already bought `year` is left alone. Chunks of `chunk_size` commit
    each with their SLAs and events (bulk inserts into the outbox); a second run resumes where a failed
    one stopped and never renews twice. With a job `control` (shared.jobs) it reports progress after
    each chunk and stops between chunks when the service is stopping (the run resumes later).
    """
    started = time.perf_counter()
    summary = RoundSummary(year=year)
    summary.editions_opened = open_editions(uows(), year, Decimal(uplift_percent))
    windows = {payer: model.due_window(year, payer) for payer in ("maintained", "academy")}
    starts = {payer: model.sla_period(year, is_academy=payer == "academy", years=1)[1]
              for payer in ("maintained", "academy")}
    uow = uows()
    with uow:
        session = uow.session
        selected = repository.due_for_renewal(session, windows)
        editions = repository.editions_of_year(session, year)
        offerings = {o.code: o for o, _ in repository.all_offerings(session)}
        covered = repository.latest_cover(session, min(starts.values()))
        cover = {day: repository.area_cover(session, day) for day in set(starts.values())}
    due = [row for row in selected if model.renews_on(row.period_end, today)]
    summary.awaiting_notice = len(selected) - len(due)
    summary.due = len(due)
    for row in due:  # renewed in this round, so held on the new period's first day (unless it expires)
        day = starts["academy" if row.is_academy else "maintained"]  # as `_renew_chunk` dates the renewal
        area = offerings[row.offering_code].service_area
        cover[day].setdefault((row.urn, area), set()).add(row.offering_code)
    context = _RoundContext(year=year, today=today, editions=editions, offerings=offerings, covered=covered,
                            cover=cover)
    if control is not None:
        control.progress(0, len(due))
    for index in range(0, len(due), chunk_size):
        if control is not None:
            control.check()  # stopping: what is committed stays; a resumed run renews the rest
        with bulk.cyclic_gc_paused():  # resumed between chunks, for the service's other green threads
            _renew_chunk(uows(), due[index:index + chunk_size], context, summary)
        if control is not None:
            control.progress(min(index + chunk_size, len(due)), len(due))
        time.sleep(0)  # under eventlet, let the service's other green threads run between chunks
    summary.seconds = round(time.perf_counter() - started, 3)
    return summary


@dataclasses.dataclass
class _RoundContext:
    year: int
    today: dt.date
    editions: dict
    offerings: dict
    covered: dict
    cover: dict  # new period's first day -> (urn, service area) -> offerings whose cover the school holds
    quotes: dict = dataclasses.field(default_factory=dict)
    members: dict = dataclasses.field(default_factory=dict)


def _renew_chunk(uow, rows, ctx: _RoundContext, summary: RoundSummary) -> None:
    """Renew or expire one chunk of due SLAs in one unit of work: the new SLAs and the expiries with
    their events (`subscription_renewed`, `subscription_ended`), built as a purchase and an ending build
    theirs and written in bulk (`shared.bulk`, `uow.publish_many`)."""
    new_rows, events, expired_ids = [], [], []
    for row in rows:
        offering = ctx.offerings[row.offering_code]
        edition = ctx.editions.get(row.offering_code)
        payer_type, start, end = model.sla_period(ctx.year, is_academy=row.is_academy, years=row.years)
        if ctx.covered.get((row.urn, row.offering_code), start - dt.timedelta(days=1)) >= start:
            # the school bought this year itself: nothing to renew (looked at again by a later run)
            summary.already_bought += 1
            continue
        member = ctx.members.get(row.urn)
        if member is None:  # one per school, not per SLA: the round read each school's row once
            member = ctx.members[row.urn] = model.KnownMember(
                urn=row.urn, name=row.school_name, establishment_type=row.establishment_type, phase=row.phase,
                is_academy=row.is_academy, mat_id=row.mat_id, mat_name=row.mat_name,
                number_on_roll=row.number_on_roll, census_date=row.census_date, status=row.member_status)
        price, components = None, ()
        if (row.member_status == "active" and edition is not None and edition.on_sale
                and (offering.withdrawn_on is None or offering.withdrawn_on > start)
                and model.is_eligible(offering, member)):
            # the rule a purchase applies: the cover of another offering of the area on the first day
            held = ctx.cover.get(start, {}).get((row.urn, offering.service_area), set())
            subscriber = bool(held - {row.offering_code})
            key = (row.offering_code, row.phase, row.number_on_roll, row.quantity, subscriber)
            price = ctx.quotes.get(key)
            if price is None:
                try:
                    price = quote(edition.terms, phase=row.phase, number_on_roll=row.number_on_roll,
                                  quantity=row.quantity, subscriber=subscriber)
                except PricingError:
                    price = False
                ctx.quotes[key] = price
            if price and edition.terms.model == "bundle":
                try:
                    components = bundle_components(edition, member, price.total_pence,
                                                   offering_of=ctx.offerings.get, edition_of=ctx.editions.get)
                except model.CatalogueRuleBroken:  # an included offering has no edition this year
                    price = None
        if not price:
            ending = model.Ending(subscription_id=row.id, urn=row.urn, reason="expired",
                                  effective_date=row.period_end + dt.timedelta(days=1), covered_until=row.period_end)
            expired_ids.append(row.id)
            events.append(("subscription_ended", ending_payload(ending), f"school:{row.urn}"))
            summary.expired += 1
            continue
        renewed = model.Subscription(
            id=str(uuid.uuid4()), urn=row.urn, offering_code=row.offering_code, edition_year=ctx.year,
            payer_type=payer_type, period_start=start, period_end=end, years=row.years,
            annual_price_pence=price.total_pence, quote=price, census_date=row.census_date,
            number_on_roll=row.number_on_roll, po_number=row.po_number, purchased_by_name="renewal round",
            purchased_by_role="automatic_renewal", purchased_on=ctx.today, quantity=row.quantity,
            entitlements=model.sla_entitlements(edition, row.quantity), continues_subscription_id=row.id,
            origin="renewal", components=components)
        new_rows.append(repository.subscription_values(renewed))
        events.append(("subscription_renewed", {**subscription_payload(renewed, member, offering),
                                                "renewal_of": row.id}, f"school:{row.urn}"))
        summary.renewed += 1
    with uow:
        bulk.insert_dicts(uow.session, subscriptions, new_rows)
        repository.mark_expired(uow.session, expired_ids)
        summary.events += uow.publish_many(events)
        uow.commit()


# -- views and reports -------------------------------------------------------------------------
def renewal_view(session, urn: str, year: int) -> dict:
    """What a school held last year beside this year's price for each, and what it renewed into."""
    member = repository.member(session, urn)
    if member is None:
        raise model.NotAllowed("urn", f"URN {urn} is not a member known to the catalogue")
    lines = []
    subs = repository.subscriptions_of(session, urn)
    by_continuation = {s["continues_subscription_id"]: s for s in subs if s["origin"] == "renewal"}
    for sub in subs:
        if sub["origin"] == "renewal" and sub["edition_year"] == year:
            continue
        start, until = dt.date.fromisoformat(sub["period_start"]), dt.date.fromisoformat(sub["covered_until"])
        if year - 1 not in model.years_held(start, until, sub["payer_type"]):
            continue
        offering = repository.offering(session, sub["offering_code"])
        edition = repository.edition(session, sub["offering_code"], year)
        this_year = None
        if edition is not None:
            try:
                priced = quote(edition.terms, phase=member.phase, number_on_roll=member.number_on_roll,
                               quantity=sub["quantity"])
                this_year = {"edition_year": year, "on_sale": edition.on_sale,
                             "annual_price_pence": priced.total_pence, "price_breakdown": priced.breakdown()}
            except PricingError as exc:
                this_year = {"edition_year": year, "on_sale": edition.on_sale, "not_priced": exc.message}
        renewal = by_continuation.get(sub["id"])
        lines.append({"offering_code": sub["offering_code"], "offering_name": offering.name,
                      "service_area": offering.service_area,
                      "last_year": {k: sub[k] for k in ("id", "edition_year", "period_start", "period_end",
                                                        "annual_price_pence", "quantity", "auto_renew",
                                                        "notice_date")},
                      "this_year": this_year, "renewed_as": renewal["id"] if renewal else None})
    return {"urn": urn, "year": year, "census": {"date": member.census_date.isoformat(),
                                                "number_on_roll": member.number_on_roll}, "lines": lines}


def demand_report(session) -> list[dict]:
    """Buy-back rate by service area and year: schools renewing / schools eligible (held it the year before).
    A converted school and its academy count as one school."""
    successors = repository.successors(session)

    def lineage(urn: str) -> str:
        seen = set()
        while urn in successors and urn not in seen:
            seen.add(urn)
            urn = successors[urn]
        return urn

    facts = set()
    for row in repository.holdings(session):
        for year in model.years_held(row.period_start, row.covered_until, row.payer_type):
            facts.add((lineage(row.urn), row.service_area, year))
    return [{"service_area": r.service_area, "year": r.year, "eligible": r.eligible, "renewing": r.renewing,
             "buy_back_rate": r.rate} for r in model.buy_back(facts)]
