"""What billing learns from the other functions' events, in its own terms, and how it orders them.
Pure Python, no I/O.

`billing.messages.consumed` loads each upstream event into one of these frozen
values; use cases and domain rules read nothing else.

Ordering. Each event names the aggregate it is about and that aggregate's
producer-assigned sequence number, strictly increasing (`Position`). Billing keeps a
version per fact it copies (a member's details, its lifecycle, each dated standing,
each SLA's end) and applies an event to a fact only if it is newer than the version
applied to that fact (`is_newer`); otherwise the event is only recorded as seen. So
the final state is the same whatever order the broker delivers in. An event written
before sequencing carries no position and is applied as it always was.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any, Mapping


@dataclasses.dataclass(frozen=True)
class Position:
    """Where an event stands in its aggregate's history (both None: an event from before sequencing)."""

    aggregate: str | None = None
    sequence: int | None = None

    def within(self, aggregate: str) -> int | None:
        """This event's sequence number in `aggregate`; None when it carries no order for that aggregate
        (no position at all, or another aggregate's, whose numbers are not comparable)."""
        return self.sequence if self.aggregate == aggregate else None


UNORDERED = Position()

# The successor academy's facts come first from the conversion, an event of the predecessor's
# aggregate; they rank below any event of the successor's own aggregate (which number from 1).
BEFORE_OWN_EVENTS = 0


def is_newer(incoming: int | None, applied: int | None) -> bool:
    """Whether an event numbered `incoming` may change a fact last set by an event numbered `applied`.

    None incoming: the event carries no order and is applied as before sequencing existed.
    None applied: nothing ordered has set the fact yet."""
    return incoming is None or applied is None or incoming > applied


def later_version(incoming: int | None, applied: int | None) -> int | None:
    """The version a fact has after an event numbered `incoming` changed it (an unordered event keeps it)."""
    return applied if incoming is None else incoming


def school_aggregate(urn: str) -> str:
    """The aggregate membership and the catalogue number a school's events in (`school:<urn>`)."""
    return f"school:{urn}"


# -- membership ----------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Mat:
    id: str
    name: str


@dataclasses.dataclass(frozen=True)
class School:
    urn: str
    name: str
    postcode: str | None = None
    local_authority: str | None = None


@dataclasses.dataclass(frozen=True)
class Joining:
    """A school joined the partnership (`member_joined`): its standing from `joined_on` (None: always)."""

    urn: str
    name: str
    is_academy: bool
    mat: Mat | None
    joined_on: dt.date | None
    postcode: str | None = None  # membership publishes a school's postcode and LA, not its street address
    local_authority: str | None = None


@dataclasses.dataclass(frozen=True)
class Leaving:
    """A member left (`member_left`): a member up to the day before `effective_date`."""

    urn: str
    effective_date: dt.date
    reason: str | None


@dataclasses.dataclass(frozen=True)
class DetailsChange:
    """A member's details changed from `effective_date` (`member_details_changed`): `changed` names
    the fields that changed; name, academy status and MAT are the member's values after the change."""

    urn: str
    effective_date: dt.date
    changed: frozenset[str]
    name: str
    is_academy: bool
    mat: Mat | None
    postcode: str | None = None
    local_authority: str | None = None
    # The changed fields' values from `effective_date` (`changes[field].new`): for a backdated change
    # they differ from the snapshot above, which is the member's latest state.
    new_values: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def changes_standing(self) -> bool:
        """Whether it changes what decides a payer (MAT, academy status) or the name on invoices."""
        return bool(self.changed & {"mat", "is_academy", "name"})

    def standing_from(self, known: "Mapping[str, Any] | None") -> tuple[str, bool, Mat | None]:
        """(name, is_academy, mat) in force from `effective_date`: a changed field's new value; an
        unchanged one as `known` on that date (billing's own dated standing), else the snapshot."""
        def value(field: str, latest):
            if field in self.new_values:
                return self.new_values[field]
            if known is not None and field in known:
                return known[field]
            return latest
        return value("name", self.name), value("is_academy", self.is_academy), value("mat", self.mat)


@dataclasses.dataclass(frozen=True)
class Conversion:
    """A maintained school closed on `conversion_date` and an academy (new URN) opened that day in `mat`
    (`school_converted_to_academy`; the successor's first event)."""

    conversion_date: dt.date
    predecessor: School
    successor: School
    mat: Mat


# -- catalogue -------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Census:
    date: dt.date
    number_on_roll: int


@dataclasses.dataclass(frozen=True)
class Component:
    """One offering included in a bundle SLA, with its own VAT treatment and its share of the bundle's
    annual price (the catalogue makes the shares sum exactly to the bundle's price)."""

    offering_code: str
    offering_name: str
    service_area: str
    vat_treatment: str
    annual_price_pence: int


@dataclasses.dataclass(frozen=True)
class Subscription:
    """An SLA as sold (`subscription_started`): its period, whole annual price and the census that priced it;
    the school's purchase order number, when it gave one; `components`: empty unless a bundle."""

    subscription_id: str
    urn: str
    school_name: str
    mat: Mat | None
    offering_code: str
    offering_name: str
    service_area: str
    vat_treatment: str
    period_start: dt.date
    period_end: dt.date
    quantity: int
    annual_price_pence: int
    census: Census
    continues_subscription_id: str | None = None  # a renewal, or the predecessor's SLA moved at conversion
    renewal_of: str | None = None
    po_number: str | None = None
    purchased_on: dt.date | None = None
    payer_type: str | None = None  # "maintained" (April-March) or "academy" (September-August)
    components: tuple[Component, ...] = ()

    @property
    def known_from(self) -> dt.date:
        """The first day billing's reports count the SLA as known: its purchase (else its start)."""
        return self.purchased_on or self.period_start

    @classmethod
    def from_terms(cls, terms: Mapping[str, Any]) -> "Subscription":
        """From the stored terms (`dataclasses.asdict` of one, dates already parsed; terms stored before
        a field existed lack it)."""
        mat, census = terms.get("mat"), terms["census"]
        purchased_on = terms.get("purchased_on")
        return cls(**{**{f.name: terms.get(f.name) for f in dataclasses.fields(cls)},
                      "mat": Mat(**mat) if mat else None,
                      "census": census if isinstance(census, Census) else Census(**census),
                      "purchased_on": dt.date.fromisoformat(purchased_on) if isinstance(purchased_on, str)
                      else purchased_on,
                      "components": tuple(c if isinstance(c, Component) else Component(**c)
                                          for c in terms.get("components") or ())})


@dataclasses.dataclass(frozen=True)
class Renewal(Subscription):
    """A new SLA for the next term of `renewal_of` (`subscription_renewed`); charged as any SLA."""


@dataclasses.dataclass(frozen=True)
class SubscriptionEnd:
    """An SLA no longer covers anything from `effective_date` (its first uncovered day)."""

    subscription_id: str
    urn: str
    effective_date: dt.date
    reason: str
    decided_on: dt.date | None = None  # when the end was decided (`cancelled_on`), if the event says

    @property
    def known_on(self) -> dt.date:
        """The first day billing's reports count the end as known: when it was decided, else its effect."""
        return self.decided_on or self.effective_date


@dataclasses.dataclass(frozen=True)
class Cancellation(SubscriptionEnd):
    """`subscription_cancelled`: the school cancelled (reason "cancelled" unless it gave one)."""


@dataclasses.dataclass(frozen=True)
class Ending(SubscriptionEnd):
    """`subscription_ended`: left, converted, expired, withdrawn (reason "ended" unless given)."""


# -- membership: people ----------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class RoleChange:
    """A person's role at an organisation from `effective_date` (`contact_role_changed` for a school,
    `organisation_contact_role_changed` for a MAT, council or partner); `active` False: they left it.

    `organisation` is the payer-style key: `school:<urn>`, `mat:<id>`, `council:<id>`, `partner:<id>`."""

    contact_id: str
    organisation: str
    display_name: str
    email: str | None
    role: str
    active: bool
    effective_date: dt.date


@dataclasses.dataclass(frozen=True)
class Erasure:
    """A person's data was erased at membership (`contact_erased`): every copy of it goes."""

    contact_id: str


def contact_aggregate(contact_id: str) -> str:
    """The aggregate membership numbers a person's events in (`contact:<id>`)."""
    return f"contact:{contact_id}"


# -- scheduling ------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Attendance:
    """A place at a session was recorded (`attendance_recorded`), once per booking with its own id."""

    attendance_id: str
    course_code: str
    offering_code: str | None
    service_area: str
    urn: str
    session_date: dt.date
    attended: bool
    chargeable: bool
    price_basis: str
    unit_price_pence: int
    vat_treatment: str
