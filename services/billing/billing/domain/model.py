"""Charges and who pays them. Pure Python, no I/O.

The payer of a charge is decided on the charge's date: a school pays for
itself unless it is an academy whose MAT pays centrally (a setting per MAT,
central by default). Money is integer pence.

A charge remembers its pro-rating basis (`basis_pence` for `basis_days`: the
annual price for its agreement year, or a session's price for one day), so a
credit for the unexpired part is worked out on the same basis as the charge
that replaces it: credit and re-charge are equal, and together with what the
old payer keeps they never exceed the whole.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from typing import Mapping, Sequence

from billing.domain.money import prorate
from billing.domain.periods import DAY, agreement_year_containing, days_between, shift_years, year_ending
from billing.domain.upstream import Attendance, Component, Mat, Subscription, is_newer, later_version


@dataclasses.dataclass(frozen=True)
class Payer:
    kind: str  # "school" or "mat"
    id: str
    name: str


@dataclasses.dataclass(frozen=True)
class Charge:
    id: str
    subscription_id: str
    urn: str
    payer: Payer
    offering_code: str
    offering_name: str
    service_area: str
    period_start: dt.date
    period_end: dt.date
    amount_pence: int
    vat_treatment: str
    census_date: dt.date | None
    number_on_roll: int | None
    kind: str = "charge"  # "charge", or "credit" (the unexpired part of a charge, given back)
    source: str = "subscription"  # "subscription", "attendance" or "correction"
    quantity: int = 1
    unit_price_pence: int = 0
    basis_pence: int = 0
    basis_days: int = 1
    attendance_id: str | None = None
    credits_charge_id: str | None = None
    description: str = ""
    po_number: str | None = None  # the school's purchase order, as given when it bought the SLA
    components: tuple[Component, ...] = ()  # a bundle's included offerings: one invoice line each

    @property
    def charge_date(self) -> dt.date:
        """The date that decides the payer: the first day the charge covers."""
        return self.period_start


def payer_for(*, urn: str, school_name: str, mat_id: str | None, mat_name: str | None,
              mat_pays_centrally: bool) -> Payer:
    if mat_id and mat_pays_centrally:
        return Payer("mat", mat_id, mat_name or mat_id)
    return Payer("school", urn, school_name)


def first_year_end(period_start: dt.date, period_end: dt.date) -> dt.date:
    """Charges are annual: the first charge of an agreement covers at most its first year."""
    try:
        anniversary = period_start.replace(year=period_start.year + 1)
    except ValueError:  # a 29 February start: the next year has no 29 February, its anniversary is 1 March
        anniversary = dt.date(period_start.year + 1, 3, 1)
    one_year_on = anniversary - dt.timedelta(days=1)
    return min(one_year_on, period_end)


def first_charged_year(subscription: Subscription) -> tuple[dt.date, dt.date, dt.date]:
    """(charged from, charged to, start of the whole year it is a part of) for an SLA's first charge.

    Agreement years are counted back from the SLA's end: a new agreement is charged its
    first year from its start; one that starts late (a school that joined during the
    period, or an SLA carried on at academy conversion, `continues_subscription_id`) is
    charged up to the end of the agreement year it starts in, pro-rated by days.
    """
    start, end = subscription.period_start, subscription.period_end
    year_start, year_end = agreement_year_containing(start, end)
    return start, year_end, year_start


def subscription_year_charge(subscription: Subscription | Mapping, payer: Payer, start: dt.date, end: dt.date,
                             year_start: dt.date) -> Charge:
    """The charge for `start`..`end` of the agreement year beginning `year_start`, pro-rated by days."""
    if not isinstance(subscription, Subscription):
        # The billing run (reworked separately) still hands over an SLA's stored terms as a
        # mapping (`repository.open_subscriptions`); read into the same value here until it doesn't.
        subscription = Subscription.from_terms(subscription)
    census = subscription.census
    # The catalogue's `annual_price_pence` is the SLA's whole annual price: it already counts the
    # quantity bought (per-session days, per-delegate places); the line shows quantity x unit price.
    annual = subscription.annual_price_pence
    quantity = subscription.quantity if annual % max(subscription.quantity, 1) == 0 else 1
    year_days = days_between(year_start, year_ending(shift_years(year_start, 1) - DAY)[1])
    amount = annual if start <= year_start else prorate(annual, days_between(start, end), year_days)
    description = subscription.offering_name
    if amount != annual:
        description += f" ({days_between(start, end)} of {year_days} days)"
    return Charge(id=str(uuid.uuid4()), subscription_id=str(subscription.subscription_id),
                  urn=subscription.urn, payer=payer, offering_code=subscription.offering_code,
                  offering_name=subscription.offering_name, service_area=subscription.service_area,
                  period_start=start, period_end=end, amount_pence=amount,
                  vat_treatment=subscription.vat_treatment, census_date=census.date,
                  number_on_roll=census.number_on_roll, quantity=quantity,
                  unit_price_pence=annual // quantity, basis_pence=annual, basis_days=year_days,
                  description=description, po_number=subscription.po_number,
                  components=tuple(subscription.components))


def charge_for_subscription(subscription: Subscription, payer: Payer) -> Charge:
    """The first charge of an SLA: its first (or, when carried on, current) agreement year, pro-rated by days."""
    start, end, year_start = first_charged_year(subscription)
    return subscription_year_charge(subscription, payer, start, end, year_start)


def later_agreement_years(period_start: dt.date, period_end: dt.date, *, up_to: dt.date,
                          ends_from: dt.date | None = None) -> list[tuple[dt.date, dt.date]]:
    """The whole agreement years after the first one that start on or before `up_to`
    (and before `ends_from`, the first day no longer covered, when the SLA ended early).

    Counted back from the end, as `first_charged_year`: after a late start (moved at
    conversion, or joined during the period) the next year starts on the agreement's anniversary."""
    years = []
    start = agreement_year_containing(period_start, period_end)[1] + DAY
    while start <= period_end and start <= up_to and (ends_from is None or start < ends_from):
        end = min(shift_years(start, 1) - DAY, period_end)
        years.append((start, end))
        start = end + DAY
    return years


def unexpired_credit(charge: Charge, effective_date: dt.date) -> int:
    """What to give back of `charge` when its cover stops from `effective_date` (first day not covered).

    Worked out on the charge's own basis, and never more than the charge itself.
    """
    if effective_date > charge.period_end:
        return 0
    if effective_date <= charge.period_start:
        return charge.amount_pence
    unexpired = days_between(effective_date, charge.period_end)
    return min(charge.amount_pence, prorate(charge.basis_pence, unexpired, charge.basis_days))


def credit_for(charge: Charge, effective_date: dt.date, reason: str) -> Charge | None:
    """A credit (negative on the payer's account) for the unexpired part of `charge`, to the same payer."""
    return further_credit(charge, effective_date, reason, ())


def further_credit(charge: Charge, effective_date: dt.date, reason: str,
                   credited: Sequence[Charge]) -> Charge | None:
    """What `charge` is still owed when its cover stops from `effective_date`, beyond the credits it was
    already given: with them, exactly the unexpired part from that date (never more than the charge);
    None when nothing more is owed (an earlier end already gave as much or more).

    An SLA's end only moves earlier (cancelled from March, then the school leaves in January), so the
    further credit covers the days from the new end up to the first day already credited."""
    owed = unexpired_credit(charge, effective_date) - sum(c.amount_pence for c in credited)
    if owed <= 0:
        return None
    start = max(effective_date, charge.period_start)
    end = min([c.period_start - DAY for c in credited], default=charge.period_end)
    return dataclasses.replace(
        charge, id=str(uuid.uuid4()), kind="credit", subscription_id=None, attendance_id=None,
        period_start=start, period_end=max(start, end), amount_pence=owed, credits_charge_id=charge.id,
        description=f"Credit: {charge.offering_name} from {start.isoformat()} ({reason})")


def conversion_split(old_charge: Charge, successor_subscription: Subscription, new_payer: Payer) -> tuple[Charge | None, Charge]:
    """At academy conversion: (the old payer's credit for the unexpired part, the new payer's charge for it).

    The successor's SLA starts on the conversion date and is charged to the end of
    the agreement year on the same annual basis, so the credit equals the new charge
    and the old payer's remainder plus the new charge is exactly the old charge.
    """
    credit = credit_for(old_charge, successor_subscription.period_start, "converted")
    return credit, charge_for_subscription(successor_subscription, new_payer)


def attendance_charge(attendance: Attendance, payer: Payer) -> Charge:
    """A chargeable place at a session: one delegate at the session's unit price, on the session's date."""
    day = attendance.session_date
    price = attendance.unit_price_pence
    return Charge(id=str(uuid.uuid4()), subscription_id=None, urn=attendance.urn, payer=payer,
                  offering_code=attendance.offering_code or attendance.course_code,
                  offering_name=attendance.course_code, service_area=attendance.service_area,
                  period_start=day, period_end=day, amount_pence=price, vat_treatment=attendance.vat_treatment,
                  census_date=None, number_on_roll=None, source="attendance", quantity=1, unit_price_pence=price,
                  basis_pence=price, basis_days=1, attendance_id=str(attendance.attendance_id),
                  description=f"{attendance.course_code} session {day.isoformat()} ({attendance.price_basis})")


def recredit(charge: Charge, effective_date: dt.date, reason: str, open_credits: Sequence[Charge],
             invoiced_credits: Sequence[Charge]) -> tuple[list[Charge], Charge | None]:
    """How `charge`'s credits change when its cover stops from `effective_date`, given the credits it
    has (not yet invoiced, and invoiced): (credits to withdraw, credit to add).

    Nothing changes unless this end owes more than those credits together: an SLA's end only moves
    earlier, and credits never shrink. Otherwise the credits not yet invoiced are withdrawn and one
    credit added, so that all of them together are exactly the unexpired part from `effective_date`
    and, when nothing was invoiced in between, the books hold what they would had this end come first.
    """
    if unexpired_credit(charge, effective_date) <= sum(c.amount_pence for c in (*open_credits, *invoiced_credits)):
        return [], None
    return list(open_credits), further_credit(charge, effective_date, reason, invoiced_credits)


@dataclasses.dataclass(frozen=True)
class Member:
    """Billing's copy of a member as it stands now (a reports' count; payers come from `Affiliation`s).

    Each group of facts keeps the sequence number of the event that set it, in the school's
    aggregate (`upstream.Position`), and only a newer event changes it: name, academy status and
    MAT (`details_sequence`); membership up to the day before `left_on` (`lifecycle_sequence`).
    An event about a member billing has not heard of makes the copy with what it knows.
    """

    urn: str
    name: str | None = None
    is_academy: bool | None = None
    mat_id: str | None = None
    mat_name: str | None = None
    left_on: dt.date | None = None
    details_sequence: int | None = None
    lifecycle_sequence: int | None = None
    postcode: str | None = None
    local_authority: str | None = None
    successor_urn: str | None = None  # the academy that replaced it at conversion (its lineage)

    def with_details(self, name: str, is_academy: bool, mat: Mat | None, sequence: int | None,
                     postcode: str | None = None, local_authority: str | None = None) -> "Member":
        """Name, academy status, MAT and where it is (postcode, local authority: kept when the event
        gives none) as an event numbered `sequence` gives them, unless a newer one did."""
        if not is_newer(sequence, self.details_sequence):
            return self
        return dataclasses.replace(self, name=name, is_academy=is_academy, mat_id=mat.id if mat else None,
                                   mat_name=mat.name if mat else None,
                                   postcode=postcode or self.postcode,
                                   local_authority=local_authority or self.local_authority,
                                   details_sequence=later_version(sequence, self.details_sequence))

    def succeeded_by(self, urn: str) -> "Member":
        """Replaced by the academy `urn` at conversion: a fact stated once, by the conversion itself."""
        return dataclasses.replace(self, successor_urn=urn)

    def with_lifecycle(self, left_on: dt.date | None, sequence: int | None) -> "Member":
        """A member up to the day before `left_on` (None: a member) as an event numbered `sequence` says,
        unless a newer one said otherwise: so a leaving is never undone by an older joining."""
        if not is_newer(sequence, self.lifecycle_sequence):
            return self
        return dataclasses.replace(self, left_on=left_on,
                                   lifecycle_sequence=later_version(sequence, self.lifecycle_sequence))

    def named(self, name: str) -> "Member":
        """Named `name` if billing knows no name yet (from an event that is not about the details: any
        details event replaces it)."""
        return self if self.name is not None else dataclasses.replace(self, name=name)


@dataclasses.dataclass(frozen=True)
class Affiliation:
    """A member's standing from a date: academy or not, and its MAT; `sequence`: of the event that set
    it, as on `Member` (None: set by an event from before sequencing)."""

    urn: str
    effective_from: dt.date
    name: str
    is_academy: bool
    mat_id: str | None
    mat_name: str | None
    sequence: int | None = None

    def replaces(self, existing: "Affiliation | None") -> bool:
        """Whether this standing, on the same date as `existing`, is to be kept instead of it."""
        return existing is None or is_newer(self.sequence, existing.sequence)


def affiliation_on(history: Sequence[Affiliation], day: dt.date) -> Affiliation | None:
    """The standing in force on `day`: the latest one from on or before it, else the earliest known."""
    if not history:
        return None
    ordered = sorted(history, key=lambda a: a.effective_from)
    current = ordered[0]
    for affiliation in ordered:
        if affiliation.effective_from <= day:
            current = affiliation
    return current


def payer_on(history: Sequence[Affiliation], day: dt.date, pays_centrally) -> Payer | None:
    """Who pays a charge dated `day`; `pays_centrally(mat_id)` says whether a MAT pays for its academies."""
    affiliation = affiliation_on(history, day)
    if affiliation is None:
        return None
    return payer_for(urn=affiliation.urn, school_name=affiliation.name, mat_id=affiliation.mat_id,
                     mat_name=affiliation.mat_name,
                     mat_pays_centrally=pays_centrally(affiliation.mat_id) if affiliation.mat_id else False)
