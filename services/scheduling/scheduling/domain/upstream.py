"""What scheduling learns from the other functions' events, as immutable facts. Pure Python, no I/O.

`scheduling.messages.consumed` loads each upstream event into one of these; use cases and domain
rules take them and never read an event's raw payload. Each holds only what scheduling uses.
"""
from __future__ import annotations

import dataclasses
import datetime as dt


@dataclasses.dataclass(frozen=True)
class SchoolDetails:
    """A member's details as membership states them (the whole set, never a partial change)."""

    name: str
    phase: str
    postcode: str
    mat_id: str | None
    establishment_type: str | None = None
    local_authority: str | None = None


@dataclasses.dataclass(frozen=True)
class Joining:
    """`member_joined`: a school became a member on `joined_on` (None: not said)."""

    urn: str
    details: SchoolDetails
    number_on_roll: int | None
    joined_on: dt.date | None


@dataclasses.dataclass(frozen=True)
class Leaving:
    """`member_left`: `effective_date` is the school's first day no longer a member."""

    urn: str
    effective_date: dt.date


@dataclasses.dataclass(frozen=True)
class DetailsChange:
    """`member_details_changed`: the member's details from `effective_date` on."""

    urn: str
    effective_date: dt.date
    details: SchoolDetails


@dataclasses.dataclass(frozen=True)
class Census:
    """`census_recorded`: pupils on roll."""

    urn: str
    number_on_roll: int


@dataclasses.dataclass(frozen=True)
class Successor:
    """The academy a conversion opens; its details name the conversion's MAT."""

    urn: str
    details: SchoolDetails
    number_on_roll: int | None


@dataclasses.dataclass(frozen=True)
class Conversion:
    """`school_converted_to_academy`: the maintained school closes on `conversion_date` (its first day
    closed) and its successor opens on it, in `mat_id`; membership is continuous."""

    conversion_date: dt.date
    predecessor_urn: str
    successor: Successor
    mat_id: str


@dataclasses.dataclass(frozen=True)
class ContactRole:
    """`contact_role_changed`: the person's role at a member school now (`active` false: they left it);
    `may_commit_spending`: the role lets them commit the school's spending (book paid places)."""

    contact_id: str
    urn: str
    display_name: str
    role: str
    active: bool
    may_commit_spending: bool = False


@dataclasses.dataclass(frozen=True)
class ContactErasure:
    """`contact_erased`: every copy of the person's personal data must go, for good."""

    contact_id: str


@dataclasses.dataclass(frozen=True)
class Offering:
    """`offering_published`."""

    offering_code: str
    name: str
    service_area: str
    vat_treatment: str


@dataclasses.dataclass(frozen=True)
class Entitlement:
    """Something an SLA or edition includes, e.g. `included_place` x 2."""

    kind: str
    quantity: int


def included_places(entitlements: tuple[Entitlement, ...]) -> int:
    """Places on courses included in the price."""
    return sum(e.quantity for e in entitlements if e.kind == "included_place")


@dataclasses.dataclass(frozen=True)
class EditionPrice:
    """`edition_priced`: an offering's per-delegate prices and inclusions for one academic year."""

    offering_code: str
    edition_year: int
    model: str
    subscriber_price_pence: int | None
    non_subscriber_price_pence: int | None
    entitlements: tuple[Entitlement, ...] = ()


@dataclasses.dataclass(frozen=True)
class Component:
    """One offering a bundle includes: the school has its cover as if bought separately."""

    offering_code: str
    service_area: str
    entitlements: tuple[Entitlement, ...] = ()

    @property
    def included_places(self) -> int:
        return included_places(self.entitlements)


@dataclasses.dataclass(frozen=True)
class SLA:
    """`subscription_started` / `subscription_renewed`: a school's agreement for an offering and a period.
    `continues_subscription_id`: the agreement it carries on (at conversion, or the term it renews).
    `components`: for a bundle, each included offering (empty for any other SLA). `quantity`: places
    bought with a per-delegate SLA (1 for other models); `edition_year`: the edition it was sold from."""

    subscription_id: str
    urn: str
    offering_code: str
    service_area: str
    period_start: dt.date
    period_end: dt.date
    entitlements: tuple[Entitlement, ...] = ()
    continues_subscription_id: str | None = None
    components: tuple[Component, ...] = ()
    quantity: int = 1
    edition_year: int | None = None

    @property
    def included_places(self) -> int:
        return included_places(self.entitlements)


@dataclasses.dataclass(frozen=True)
class SLAEnding:
    """`subscription_cancelled` / `subscription_ended`: `effective_date` is the first day no longer covered."""

    subscription_id: str
    urn: str
    effective_date: dt.date
