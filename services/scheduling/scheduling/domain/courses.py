"""Courses, sessions, bookings and waiting lists. Pure Python, no I/O.

A session confirms bookings up to its capacity, then puts further bookings on a
waiting list in the order they came. When a confirmed place is cancelled (before the
session's cancellation cut-off) the first on the list is promoted. Price basis is
fixed when a place is confirmed, from the SLA the school holds on that day: an
included place while the SLA's allowance lasts, else the subscriber price; without an
SLA the non-subscriber price.
"""
from __future__ import annotations

import dataclasses
import datetime as dt

CONFIRMED, WAITLISTED, CANCELLED = "confirmed", "waitlisted", "cancelled"
PRICE_BASES = ("included_place", "subscriber", "non_subscriber", "free")


class BookingRefused(Exception):
    """A rule refuses the booking or change; the message names it."""


@dataclasses.dataclass(frozen=True)
class Price:
    subscriber_pence: int
    non_subscriber_pence: int


@dataclasses.dataclass(frozen=True)
class Entitlement:
    """An SLA of the school for the course's offering, and its included places."""

    subscription_id: str
    period_start: dt.date
    period_end: dt.date
    included_places: int

    def covers(self, day: dt.date) -> bool:
        return self.period_start <= day <= self.period_end


@dataclasses.dataclass(frozen=True)
class PriceDecision:
    basis: str
    unit_price_pence: int
    subscription_id: str | None


def places_held(included_places: int, delegate_places_bought: int) -> int:
    """Places an SLA gives on its offering's courses at no further charge: those it includes plus, for a
    per-delegate SLA, the `quantity` of delegate places the school already paid for with it (so the
    N+1th booking is the first charged)."""
    return max(0, included_places) + max(0, delegate_places_bought)


def price_for(day: dt.date, price: Price | None, entitlements: list[Entitlement],
              included_used: dict[str, int]) -> PriceDecision:
    """What a place costs a school confirmed on `day`."""
    held = sorted((e for e in entitlements if e.covers(day)), key=lambda e: (e.period_start, e.subscription_id))
    for e in held:
        if included_used.get(e.subscription_id, 0) < e.included_places:
            return PriceDecision("included_place", 0, e.subscription_id)
    if price is None:
        return PriceDecision("free", 0, held[0].subscription_id if held else None)
    if held:
        return PriceDecision("subscriber", price.subscriber_pence, held[0].subscription_id)
    return PriceDecision("non_subscriber", price.non_subscriber_pence, None)


def status_for_new_booking(capacity: int, confirmed: int) -> str:
    if capacity < 0:
        raise BookingRefused("capacity must not be negative")
    return CONFIRMED if confirmed < capacity else WAITLISTED


def may_cancel(session_date: dt.date, cutoff_days: int, today: dt.date) -> None:
    last = session_date - dt.timedelta(days=cutoff_days)
    if today > last:
        raise BookingRefused(f"cancellation cut-off: places on the session of {session_date} can be cancelled "
                             f"until {last}")


def may_book(session_date: dt.date, booking_cutoff_days: int, booked_on: dt.date) -> None:
    """A place can be booked until the booking cut-off (`booking_cutoff_days` before the session; 0: up
    to the day itself), never after the session."""
    if booked_on > session_date:
        raise BookingRefused("the session has already taken place")
    last = session_date - dt.timedelta(days=booking_cutoff_days)
    if booked_on > last:
        raise BookingRefused(f"booking cut-off: places on the session of {session_date} can be booked until {last}")


def must_have_spending_authority(decision: PriceDecision, may_commit_spending: bool, contact_id: str, urn: str) -> None:
    """Only a person who may commit the school's spending takes a place the school pays for; an included
    or free place needs no authority."""
    if chargeable(decision.basis, decision.unit_price_pence) and not may_commit_spending:
        raise BookingRefused(f"person {contact_id} may not commit school {urn}'s spending: a paid place "
                             f"({decision.basis}, {decision.unit_price_pence}p) is booked by someone who may, "
                             f"e.g. the head teacher or business manager")


def next_in_line(waitlist: list[tuple[int, str]]) -> str | None:
    """The booking to promote: lowest waiting-list position. `waitlist` is (position, booking_id)."""
    return min(waitlist)[1] if waitlist else None


def chargeable(decision_basis: str, unit_price_pence: int) -> bool:
    return decision_basis in ("subscriber", "non_subscriber") and unit_price_pence > 0
