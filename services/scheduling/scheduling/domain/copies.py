"""Scheduling's own copies of upstream facts, and how each event changes them. Pure Python, no I/O.

Every method returns the copy after one event, applied under `scheduling.domain.ordering`: a facet
changes only if the event is newer than what last set it. So any delivery order of the same events
(and any duplicates) ends in the same copies as the order the producers published them in.

- `SchoolCopy` facets: details (name, phase, postcode, type, LA, current MAT), roll, lifecycle
  (active / `closed_on`). An event about a school not yet known makes a copy with what it says;
  until the copy holds both details and lifecycle it is *partial* and the school is not a member
  for any rule (`is_member_record`).
- `ContactCopy`: the person's role; an erasure is a tombstone that no role change undoes.
- `SLACopy`: the agreement's terms; endings only ever shorten its cover, so the earliest one counts.
"""
from __future__ import annotations

import dataclasses
import datetime as dt

from scheduling.domain import calendar as cal
from scheduling.domain.ordering import BEFORE_OWN_EVENTS, is_newer, version_after
from scheduling.domain.upstream import (SLA, ContactRole, Conversion, DetailsChange, Joining, Leaving, SchoolDetails,
                                        SLAEnding)


@dataclasses.dataclass(frozen=True)
class SchoolCopy:
    """One school as scheduling knows it from membership; each `*_sequence` is its facet's version."""

    urn: str
    name: str | None = None
    phase: str | None = None
    postcode: str | None = None
    mat_id: str | None = None
    establishment_type: str | None = None
    local_authority: str | None = None
    details_sequence: int | None = None
    number_on_roll: int | None = None
    roll_sequence: int | None = None
    active: bool = False
    closed_on: dt.date | None = None
    lifecycle_sequence: int | None = None
    predecessor_urn: str | None = None

    @property
    def is_member_record(self) -> bool:
        """The copy knows the school's details and whether it is (or was) a member: only then can
        it be a member on any day."""
        return is_member_record(self.details_sequence, self.lifecycle_sequence)

    def _details(self, details: SchoolDetails, sequence: int | None) -> "SchoolCopy":
        if not is_newer(sequence, self.details_sequence):
            return self
        return dataclasses.replace(
            self, name=details.name, phase=details.phase, postcode=details.postcode, mat_id=details.mat_id,
            establishment_type=details.establishment_type, local_authority=cal.la_key(details.local_authority),
            details_sequence=version_after(sequence, self.details_sequence))

    def _roll(self, number_on_roll: int | None, sequence: int | None) -> "SchoolCopy":
        if number_on_roll is None or not is_newer(sequence, self.roll_sequence):
            return self
        return dataclasses.replace(self, number_on_roll=number_on_roll,
                                   roll_sequence=version_after(sequence, self.roll_sequence))

    def _lifecycle(self, active: bool, closed_on: dt.date | None, sequence: int | None) -> "SchoolCopy":
        if not is_newer(sequence, self.lifecycle_sequence):
            return self
        return dataclasses.replace(self, active=active, closed_on=closed_on,
                                   lifecycle_sequence=version_after(sequence, self.lifecycle_sequence))

    def joined(self, joining: Joining, sequence: int | None) -> "SchoolCopy":
        return (self._details(joining.details, sequence)._roll(joining.number_on_roll, sequence)
                ._lifecycle(True, None, sequence))

    def left(self, leaving: Leaving, sequence: int | None) -> "SchoolCopy":
        return self._lifecycle(False, leaving.effective_date, sequence)

    def details_changed(self, change: DetailsChange, sequence: int | None) -> "SchoolCopy":
        # Only the details: a change of details says nothing of membership (a row it creates stays partial).
        return self._details(change.details, sequence)

    def census_recorded(self, number_on_roll: int, sequence: int | None) -> "SchoolCopy":
        return self._roll(number_on_roll, sequence)

    def converted(self, conversion: Conversion, sequence: int | None) -> "SchoolCopy":
        """The predecessor: closed from the conversion date."""
        return self._lifecycle(False, conversion.conversion_date, sequence)

    def opened_by(self, conversion: Conversion) -> "SchoolCopy":
        """The successor: open, in the MAT, with the conversion's details and roll, unless its own
        events (newer by definition) already said otherwise."""
        successor = conversion.successor
        opened = (self._details(successor.details, BEFORE_OWN_EVENTS)._roll(successor.number_on_roll, BEFORE_OWN_EVENTS)
                  ._lifecycle(True, None, BEFORE_OWN_EVENTS))
        return dataclasses.replace(opened, predecessor_urn=conversion.predecessor_urn)


def is_member_record(details_sequence: int | None, lifecycle_sequence: int | None) -> bool:
    """See `SchoolCopy.is_member_record` (for a school read as a plain row)."""
    return details_sequence is not None and lifecycle_sequence is not None


@dataclasses.dataclass(frozen=True)
class ContactCopy:
    """A person in a role at a member school; `erased`: only the tombstone is left (no name, no role)."""

    contact_id: str
    urn: str | None = None
    display_name: str | None = None
    role: str | None = None
    active: bool = False
    sequence: int | None = None
    erased: bool = False

    def role_changed(self, change: ContactRole, urn: str, sequence: int | None) -> "ContactCopy":
        """`urn`: where scheduling records the person (the academy if the school has converted)."""
        if self.erased or not is_newer(sequence, self.sequence):
            return self
        return dataclasses.replace(self, urn=urn, display_name=change.display_name, role=change.role,
                                   active=change.active, sequence=version_after(sequence, self.sequence))

    def erased_now(self, sequence: int | None) -> "ContactCopy":
        return ContactCopy(self.contact_id, erased=True, sequence=version_after(sequence, self.sequence))


@dataclasses.dataclass(frozen=True)
class SLACopy:
    """An SLA as scheduling keeps it: its terms (`terms_sequence` None until `subscription_started` or
    `_renewed` arrives) and `ends_on`, the earliest first uncovered day any ending announced.
    `period_end` is the last day covered: the terms' end, cut by the ending."""

    subscription_id: str
    urn: str
    offering_code: str | None = None
    service_area: str | None = None
    period_start: dt.date | None = None
    period_end: dt.date | None = None
    included_places: int = 0
    terms_sequence: int | None = None
    ends_on: dt.date | None = None
    quantity: int = 1
    edition_year: int | None = None
    delegate_places_used_before: int = 0  # of an SLA carried on at conversion, under the one it continues

    @property
    def has_terms(self) -> bool:
        return self.terms_sequence is not None

    def started(self, sla: SLA, included_places: int, sequence: int | None,
                delegate_places_used_before: int = 0) -> "SLACopy":
        if not is_newer(sequence, self.terms_sequence):
            return self
        return dataclasses.replace(
            self, urn=sla.urn, offering_code=sla.offering_code, service_area=sla.service_area,
            period_start=sla.period_start, included_places=included_places, quantity=sla.quantity,
            edition_year=sla.edition_year, delegate_places_used_before=delegate_places_used_before,
            period_end=_covered_until(sla.period_start, sla.period_end, self.ends_on),
            terms_sequence=version_after(sequence, self.terms_sequence))

    def ended(self, ending: SLAEnding) -> "SLACopy":
        # Catalogue never lengthens an SLA's cover once it has announced an ending (an ended or cancelled
        # SLA cannot be cancelled again), so the earliest ending is the one in force whatever the order:
        # no version needed, and a cancellation arriving before its start still ends it.
        ends_on = ending.effective_date if self.ends_on is None else min(self.ends_on, ending.effective_date)
        if not self.has_terms:
            return dataclasses.replace(self, ends_on=ends_on)
        return dataclasses.replace(self, ends_on=ends_on,
                                   period_end=_covered_until(self.period_start, self.period_end, ends_on))


def _covered_until(start: dt.date, end: dt.date, ends_on: dt.date | None) -> dt.date:
    """The last day covered; the day before `start` when the SLA ended before it began."""
    if ends_on is None or ends_on > end:
        return end
    return max(ends_on, start) - dt.timedelta(days=1)
