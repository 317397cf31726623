"""Catalogue use cases: each takes a unit of work and a validated command."""
from __future__ import annotations

import datetime as dt

from catalogue.adapters import repository
from catalogue.domain import model
from catalogue.domain.pricing import PriceTerms


class UnknownOffering(Exception):
    pass


def record_member_joined(uow, payload: dict) -> None:
    """Keep the catalogue's own copy of a member (membership's `member_joined`)."""
    with uow:
        mat = payload.get("mat")
        repository.upsert_member(uow.session, {
            "urn": payload["urn"], "name": payload["name"], "establishment_type": payload["establishment_type"],
            "phase": payload["phase"], "is_academy": payload["is_academy"],
            "mat_id": mat["id"] if mat else None, "mat_name": mat["name"] if mat else None,
            "number_on_roll": payload["number_on_roll"], "census_date": payload["census_date"],
            "status": "active", "joined_on": payload["joined_on"]})
        uow.commit()


def publish_offering(uow, command: dict, provider: str) -> model.Offering:
    """Add an offering with its first edition (no event yet: nobody consumes offerings so far)."""
    with uow:
        if repository.offering(uow.session, command["code"]) is not None:
            raise model.CatalogueRuleBroken("code", f"offering {command['code']} already exists")
        item = model.Offering(code=command["code"], name=command["name"], service_area=command["service_area"],
                              provider=provider, vat_treatment=command["vat_treatment"],
                              eligible_phases=tuple(command["eligible_phases"]),
                              description=command.get("description", ""))
        repository.add_offering(uow.session, item)
        edition = command["edition"]
        repository.add_edition(uow.session, model.Edition(offering_code=item.code, year=edition["year"],
                                                          terms=PriceTerms(**edition["terms"]), on_sale=True))
        uow.commit()
    return item


def buy_subscription(uow, command: dict, today: dt.date) -> model.Subscription:
    """A school buys an SLA; commits it and `subscription_started` together."""
    with uow:
        session = uow.session
        offering = repository.offering(session, command["offering_code"])
        if offering is None:
            raise UnknownOffering(command["offering_code"])
        edition = repository.edition(session, offering.code, command["edition_year"])
        if edition is None:
            raise model.NotAllowed("edition_year", f"{offering.name} has no {command['edition_year']} edition")
        member = repository.member(session, command["urn"])
        buyer = command["purchased_by"]
        subscription = model.buy(member=member, urn=command["urn"], offering=offering, edition=edition,
                                 years=command["years"], purchased_by_name=buyer["name"],
                                 purchased_by_role=buyer["role"], po_number=command.get("po_number"),
                                 today=today, live_periods=repository.live_periods(session, command["urn"],
                                                                                   offering.code))
        repository.add_subscription(session, subscription)
        uow.publish("subscription_started", subscription_started_payload(subscription, member, offering),
                    aggregate=f"school:{subscription.urn}")
        uow.commit()
    return subscription


def subscription_started_payload(sub: model.Subscription, member: model.KnownMember, offering: model.Offering):
    return {
        "subscription_id": sub.id, "urn": sub.urn, "school_name": member.name, "is_academy": member.is_academy,
        "mat": {"id": member.mat_id, "name": member.mat_name} if member.mat_id else None,
        "payer_type": sub.payer_type, "offering_code": offering.code, "offering_name": offering.name,
        "service_area": offering.service_area, "vat_treatment": offering.vat_treatment,
        "edition_year": sub.edition_year, "period_start": sub.period_start, "period_end": sub.period_end,
        "years": sub.years, "quantity": 1, "annual_price_pence": sub.annual_price_pence,
        "price_breakdown": sub.quote.breakdown(),
        "census": {"date": sub.census_date, "number_on_roll": sub.number_on_roll},
        "po_number": sub.po_number, "purchased_on": sub.purchased_on,
    }
