"""What the catalogue's use cases are asked to do: each a frozen dataclass, loaded from a request by
its schema (`catalogue.entrypoints.service`) or built by a test. The schema has validated every field;
a use case still checks the rules that need stored state."""
from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any, Mapping


@dataclasses.dataclass(frozen=True)
class PriceEdition:
    """An offering's edition for a year: its price terms (`catalogue.domain.pricing.terms_from_json`
    reads them), what it entitles a buyer to (each `{"kind", "quantity"}`), whether it is on sale."""

    year: int
    terms: Mapping[str, Any]
    entitlements: tuple[Mapping[str, Any], ...] = ()
    on_sale: bool = True


@dataclasses.dataclass(frozen=True)
class PublishOffering:
    """A new offering, and its first edition if given."""

    code: str
    name: str
    service_area: str
    vat_treatment: str
    eligible_phases: tuple[str, ...] = ()
    eligible_establishment_types: tuple[str, ...] = ()
    capacity: int | None = None
    description: str = ""
    edition: PriceEdition | None = None
    sold_whole: bool = False


@dataclasses.dataclass(frozen=True)
class Quote:
    """The price a member would pay for `quantity` of an edition."""

    urn: str
    offering_code: str
    edition_year: int
    quantity: int = 1


@dataclasses.dataclass(frozen=True)
class BuySubscription:
    """A member's purchase, by the contact who commits its spending (`contact_id`, from their token)."""

    urn: str
    offering_code: str
    edition_year: int
    years: int = 1
    quantity: int = 1
    po_number: str | None = None
    renew: bool = False
    contact_id: str | None = None


@dataclasses.dataclass(frozen=True)
class CancelSubscription:
    """Cancel from `effective_date`, or (without one) stop the renewal by the notice date."""

    reason: str
    effective_date: dt.date | None = None
    contact_id: str | None = None


@dataclasses.dataclass(frozen=True)
class ConfirmRenewal:
    """A contact who may commit the school's spending confirms a late renewal."""

    contact_id: str | None = None
