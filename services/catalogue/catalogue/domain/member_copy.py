"""The catalogue's own copy of membership's members and contacts, kept from membership's events
whatever order they are delivered in. Pure Python, no I/O.

Membership numbers each school's events (`school:<urn>`) and each person's (`contact:<id>`)
strictly increasingly; events travel on one queue per type, with retries, so they arrive in
any order. A single "last applied" number per school would be wrong: events carry different
facts, and an older `member_joined` arriving after a newer `member_details_changed` still
brings the joining date and the census the newer event did not carry. So the copy keeps a
version per facet, and an event sets a facet only if it is newer than what set it:

- details (name, establishment type, phase, academy, MAT): `member_joined`,
  `member_details_changed`;
- roll (number on roll and census date): `member_joined`, `census_recorded`; the newest
  census wins (census date first, then event number), since membership also announces a
  census taken before the latest one;
- joining date: `member_joined`;
- standing (status and `left_on`): `member_joined` (active), `member_left` (left),
  `school_converted_to_academy` (converted, numbered in the predecessor's aggregate).

A conversion is the successor's first event but is numbered in the predecessor's
aggregate: its facts about the successor carry version 0 and are set only where nothing is
recorded yet, so any event of the successor's own overrides them whatever the order.

Events written before sequencing carry no number (None) and are applied as they were
before: unconditionally, except that an older census never replaces a newer one.

A row is created by whichever event about a school arrives first; until its standing is
known (status `unknown`), and as long as its details or roll are missing, it is not a
member (`MemberCopy.known()` is None): it cannot buy, be quoted, viewed or renewed.
"""
from __future__ import annotations

import dataclasses
import datetime as dt

from catalogue.domain.model import KnownMember

UNKNOWN = "unknown"  # standing not yet known: a school only other facts have arrived about
ACTIVE, LEFT, CONVERTED = "active", "left", "converted"
CONVERSION_VERSION = 0  # below every number membership gives: any event of the successor's own is newer


def is_newer(sequence: int | None, applied: int | None) -> bool:
    """Whether an event numbered `sequence` supersedes a fact last set by event `applied` of the same
    aggregate. Unnumbered events (before sequencing) and facts never numbered carry no order: applied."""
    if sequence is None or applied is None:
        return True
    return sequence > applied


@dataclasses.dataclass(frozen=True)
class Mat:
    id: str
    name: str


@dataclasses.dataclass(frozen=True)
class SchoolDetails:
    """What a school is: the facts eligibility, the SLA period and the payer follow."""

    name: str
    establishment_type: str
    phase: str
    is_academy: bool
    mat: Mat | None


@dataclasses.dataclass(frozen=True)
class Roll:
    """Pupils on roll as counted by one census: what prices a per-pupil purchase."""

    number_on_roll: int
    census_date: dt.date


@dataclasses.dataclass(frozen=True)
class MemberCopy:
    """One school as membership's events told the catalogue, facet by facet with the number of the
    event that set each (None: set before sequencing, or not set)."""

    urn: str
    details: SchoolDetails | None = None
    details_version: int | None = None
    roll: Roll | None = None
    roll_version: int | None = None
    joined_on: dt.date | None = None
    joined_version: int | None = None
    status: str = UNKNOWN
    left_on: dt.date | None = None
    standing_version: int | None = None
    predecessor_urn: str | None = None
    successor_urn: str | None = None

    def known(self) -> KnownMember | None:
        """The member as purchases, quotes, views and renewals see it; None until its standing,
        details and roll are all known (a partial copy is not a member)."""
        if self.status == UNKNOWN or self.details is None or self.roll is None:
            return None
        d, mat = self.details, self.details.mat
        return KnownMember(urn=self.urn, name=d.name, establishment_type=d.establishment_type, phase=d.phase,
                           is_academy=d.is_academy, mat_id=mat.id if mat else None, mat_name=mat.name if mat else None,
                           number_on_roll=self.roll.number_on_roll, census_date=self.roll.census_date,
                           status=self.status, joined_on=self.joined_on, left_on=self.left_on)

    # -- one facet each; every change below goes through these ------------------------------------
    def _with_details(self, details: SchoolDetails, sequence: int | None) -> MemberCopy:
        if not is_newer(sequence, self.details_version):
            return self
        return dataclasses.replace(self, details=details, details_version=_version(sequence, self.details_version))

    def _with_roll(self, roll: Roll, sequence: int | None) -> MemberCopy:
        if self.roll is not None and roll.census_date != self.roll.census_date:
            newer = roll.census_date > self.roll.census_date
        else:
            newer = is_newer(sequence, self.roll_version)
        if not newer:
            return self
        return dataclasses.replace(self, roll=roll, roll_version=_version(sequence, self.roll_version))

    def _with_joined_on(self, joined_on: dt.date, sequence: int | None) -> MemberCopy:
        if not is_newer(sequence, self.joined_version):
            return self
        return dataclasses.replace(self, joined_on=joined_on, joined_version=_version(sequence, self.joined_version))

    def _with_standing(self, status: str, left_on: dt.date | None, sequence: int | None) -> MemberCopy:
        if not is_newer(sequence, self.standing_version):
            return self
        return dataclasses.replace(self, status=status, left_on=left_on,
                                   standing_version=_version(sequence, self.standing_version))


def _version(sequence: int | None, applied: int | None) -> int | None:
    # An unnumbered event keeps the number already recorded: it says nothing about order.
    return applied if sequence is None else sequence


def joined(copy: MemberCopy, details: SchoolDetails, roll: Roll, joined_on: dt.date,
           sequence: int | None) -> MemberCopy:
    """`member_joined`: each of its facts where it is newer. An older joining arriving after the
    leaving never makes the school a member again; it still brings its date, details and census."""
    return (copy._with_details(details, sequence)._with_roll(roll, sequence)._with_joined_on(joined_on, sequence)
            ._with_standing(ACTIVE, None, sequence))


def details_changed(copy: MemberCopy, details: SchoolDetails, sequence: int | None) -> MemberCopy:
    """`member_details_changed`: the member's current details, unless newer ones are recorded."""
    return copy._with_details(details, sequence)


def census_recorded(copy: MemberCopy, roll: Roll, sequence: int | None) -> MemberCopy:
    """`census_recorded`: the newest census (by census date, then event number) prices the next purchase."""
    return copy._with_roll(roll, sequence)


def left(copy: MemberCopy, left_on: dt.date, sequence: int | None) -> MemberCopy:
    """`member_left`: no longer a member from `left_on`, unless a later standing (a re-join) is recorded."""
    return copy._with_standing(LEFT, left_on, sequence)


def converted_predecessor(copy: MemberCopy, conversion_date: dt.date, successor_urn: str,
                          sequence: int | None) -> MemberCopy:
    """The predecessor's side of a conversion: closed from the conversion date, its standing
    numbered by the conversion."""
    # the link is a fact only the conversion carries: recorded whatever the order
    return dataclasses.replace(copy, successor_urn=successor_urn)._with_standing(CONVERTED, conversion_date, sequence)


def is_latest_standing(before: MemberCopy, sequence: int | None) -> bool:
    """Whether a leaving or conversion numbered `sequence` is newer than the standing recorded `before` it.
    When it is not (the school re-joined, and that arrived first), it still ended the SLAs of the
    membership it closed."""
    return is_newer(sequence, before.standing_version)


def converted_successor(copy: MemberCopy, conversion_date: dt.date, details: SchoolDetails, roll: Roll,
                        predecessor_urn: str) -> MemberCopy:
    """The successor's side of a conversion: an academy member from the conversion date. Each fact is
    set only where none of the successor's own events has set it (version 0), except that a census
    newer than the successor's own still wins, as every census does."""
    version = CONVERSION_VERSION
    return (dataclasses.replace(copy, predecessor_urn=predecessor_urn)._with_details(details, version)
            ._with_roll(roll, version)._with_joined_on(conversion_date, version)._with_standing(ACTIVE, None, version))


@dataclasses.dataclass(frozen=True)
class RecordedRole:
    """What the copy holds on one role of a person at a member: when it took effect, and the number
    of the event that set it (None before sequencing)."""

    effective_date: dt.date
    version: int | None


def role_change_applies(recorded: RecordedRole | None, *, erased: bool, effective_date: dt.date,
                        sequence: int | None) -> bool:
    """Whether a `contact_role_changed` is to be applied to the copy.

    Never after the person's erasure, whatever its number: the tombstone outlives every role
    change, so nothing brings the person's name or spending authority back. Otherwise, a numbered
    change applies if it is newer than the one recorded for the same role (per role: a person's
    events about their other roles say nothing about this one); an unnumbered one, as before
    sequencing, unless the recorded one took effect later."""
    if erased:
        return False
    if recorded is None:
        return True
    if sequence is None:
        return recorded.effective_date <= effective_date
    return is_newer(sequence, recorded.version)
