"""Members of the partnership and the rules for joining. Pure Python, no I/O.

A school is identified by its URN (6 digits; LA-registered early years
providers use 500000-799999) and its DfE number (LAESTAB, `NNN/NNNN`: LA code
and establishment number). One open membership per URN.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import re

from membership.domain import la_codes

# ASCII digits only, to the very end: `\d` also matches other scripts' digits and `$` matches
# before a trailing newline, so "110394\n" would pass as a second, different URN.
URN_PATTERN = re.compile(r"^[0-9]{6}\Z")
DFE_NUMBER_PATTERN = re.compile(r"^[0-9]{3}/[0-9]{4}\Z")
EARLY_YEARS_URNS = range(500000, 800000)
# England's schools in the DfE register (every type this partnership admits except LA-registered early years
# providers): 100000-199999. The GIAS links file (../shared/data/gias, 2025-04-22) has English establishments
# from 100006 to 151866, allocated in sequence (academies opened in 2024 took 149461-151534), and 400000+
# for Welsh ones; see the README ("Identity checks") for the derivation and the headroom.
SCHOOL_URNS = range(100000, 200000)
# The establishment number's first digit is the DfE's category (1 nursery/PRU ... 7 special); never 0.
ESTABLISHMENT_NUMBERS = range(1000, 10000)

PHASES = ("early_years", "primary", "secondary", "all_through", "special", "not_applicable")
MEMBER_KINDS = ("school", "early_years_provider", "mat", "council", "partner")
ACADEMY_TYPES = ("academy_converter", "academy_sponsor_led", "free_school", "academy_special", "university_technical_college",
                 "studio_school")
MAINTAINED_TYPES = ("community", "foundation", "voluntary_aided", "voluntary_controlled", "community_special",
                    "foundation_special", "nursery", "pupil_referral_unit")
ESTABLISHMENT_TYPES = MAINTAINED_TYPES + ACADEMY_TYPES + ("early_years_provider",)


class MembershipRuleBroken(Exception):
    """A domain rule refused the change; `field` names what was wrong. `refusal` is its kind, which
    `shared.http` answers the same way in every service (422 here)."""

    refusal = "rule_broken"

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


class AlreadyMember(MembershipRuleBroken):
    """The school is a member (or applicant) already: a conflict with the register's state (409)."""

    refusal = "conflict"


def check_urn(urn: str, *, early_years: bool = False, field: str = "urn") -> None:
    """Six digits, in the range of its kind of establishment: 500000-799999 for an LA-registered early years
    provider, 100000-199999 for a school (the DfE's English school range)."""
    if not URN_PATTERN.match(urn or ""):
        raise MembershipRuleBroken(field, "a URN is exactly 6 digits")
    if early_years and int(urn) not in EARLY_YEARS_URNS:
        raise MembershipRuleBroken(field, "an LA-registered early years provider's URN is in 500000-799999")
    if not early_years and int(urn) not in SCHOOL_URNS:
        raise MembershipRuleBroken(field, f"URN {urn} is not a school's: the DfE numbers England's schools "
                                          "100000-199999 (early years providers 500000-799999)")


def check_dfe_number(dfe_number: str) -> None:
    """The format only (NNN/NNNN); `check_identity` checks it against the member's local authority."""
    if not DFE_NUMBER_PATTERN.match(dfe_number or ""):
        raise MembershipRuleBroken("dfe_number", "a DfE number is the LA code and establishment number, NNN/NNNN")


def check_laestab(dfe_number: str, local_authority: str) -> None:
    """A LAESTAB whose LA code is a DfE code of England, is the code of `local_authority`, and whose
    establishment number is one the DfE issues (1000-9999)."""
    check_dfe_number(dfe_number)
    code, number = dfe_number.split("/")
    if code not in la_codes.LA_CODES:
        raise MembershipRuleBroken("dfe_number", f"{code} is not a DfE local authority code in England")
    if la_codes.code_of(local_authority) is None and not la_codes.matches(code, local_authority):
        raise MembershipRuleBroken("local_authority", f"{local_authority!r} is not a local authority in the "
                                                      "DfE's list; give its name as the register does (e.g. "
                                                      "Buckinghamshire)")
    if not la_codes.matches(code, local_authority):
        raise MembershipRuleBroken("dfe_number", f"the LA code {code} is {la_codes.name_of(code)}'s, not "
                                                 f"{local_authority}'s (code {la_codes.code_of(local_authority)})")
    if int(number) not in ESTABLISHMENT_NUMBERS:
        raise MembershipRuleBroken("dfe_number", f"establishment number {number} is not one the DfE issues "
                                                 "(1000-9999)")


@dataclasses.dataclass(frozen=True)
class Mat:
    """A multi-academy trust, by its DfE group id."""

    id: str
    name: str


@dataclasses.dataclass
class SchoolMember:
    """A school (or early years provider) in the partnership."""

    urn: str
    dfe_number: str
    name: str
    establishment_type: str
    phase: str
    local_authority: str
    postcode: str
    number_on_roll: int
    census_date: dt.date
    joined_on: dt.date
    mat: Mat | None = None
    status: str = "active"
    left_on: dt.date | None = None
    left_reason: str | None = None
    # first day of continuous membership: an academy keeps its predecessor's
    member_since: dt.date | None = None

    def __post_init__(self):
        if self.member_since is None:
            self.member_since = self.joined_on

    def is_member_on(self, day: dt.date) -> bool:
        """A member from `joined_on` up to the day before `left_on` (events.md's effective dates)."""
        return self.status != "applied" and self.joined_on <= day and (self.left_on is None or day < self.left_on)

    @property
    def is_academy(self) -> bool:
        return self.establishment_type in ACADEMY_TYPES

    @property
    def kind(self) -> str:
        return "early_years_provider" if self.establishment_type == "early_years_provider" else "school"


def join_school(*, open_member: SchoolMember | None, urn: str, dfe_number: str, name: str, establishment_type: str,
                phase: str, local_authority: str, postcode: str, number_on_roll: int, census_date: dt.date,
                joined_on: dt.date, mat: Mat | None, last_left_on: dt.date | None = None,
                status: str = "active") -> SchoolMember:
    """A school joins on `joined_on`. Refuses a second open record for the URN, an academy
    without its MAT, a maintained school with one, and a census after the joining date's year."""
    check_urn(urn, early_years=establishment_type == "early_years_provider")
    check_laestab(dfe_number, local_authority)
    if open_member is not None:
        raise AlreadyMember("urn", f"URN {urn} is already an open member (joined {open_member.joined_on.isoformat()})")
    if establishment_type not in ESTABLISHMENT_TYPES:
        raise MembershipRuleBroken("establishment_type", f"unknown establishment type {establishment_type!r}")
    if establishment_type in ACADEMY_TYPES and mat is None:
        raise MembershipRuleBroken("mat", "an academy belongs to a multi-academy trust; give its MAT")
    if establishment_type in MAINTAINED_TYPES and mat is not None:
        raise MembershipRuleBroken("mat", "a maintained school is not in a multi-academy trust")
    if number_on_roll < 0:
        raise MembershipRuleBroken("number_on_roll", "the number on roll cannot be negative")
    if census_date > joined_on + dt.timedelta(days=366):
        raise MembershipRuleBroken("census_date", "the census date is more than a year after joining")
    if last_left_on is not None and joined_on < last_left_on:
        raise MembershipRuleBroken("joined_on", f"URN {urn} left on {last_left_on.isoformat()}; "
                                               "it cannot re-join before that date")
    if phase not in PHASES:
        raise MembershipRuleBroken("phase", f"unknown phase {phase!r}")
    return SchoolMember(urn=urn, dfe_number=dfe_number, name=name.strip(), establishment_type=establishment_type,
                        phase=phase, local_authority=local_authority.strip(), postcode=postcode.strip().upper(),
                        number_on_roll=number_on_roll, census_date=census_date, joined_on=joined_on, mat=mat,
                        status=status)


# --- lifecycle: apply -> active -> left (or converted), re-join ------------------------------------------------

STATUSES = ("applied", "active", "left", "converted")
DETAIL_FIELDS = ("dfe_number", "name", "establishment_type", "phase", "local_authority", "postcode", "mat")
CONVERTED = "converted_to_academy"


class NotAMember(MembershipRuleBroken):
    """The URN has no open membership in the state the change needs (404)."""

    refusal = "not_found"


def apply_to_join(**arguments) -> SchoolMember:
    """A school applies; the same rules as joining, but it is not a member until activated."""
    return join_school(status="applied", **arguments)


def activate(member: SchoolMember, effective_date: dt.date) -> SchoolMember:
    """An application accepted: a member from `effective_date`."""
    if member.status != "applied":
        raise MembershipRuleBroken("status", f"URN {member.urn} is {member.status}, not an application")
    if member.census_date > effective_date + dt.timedelta(days=366):
        raise MembershipRuleBroken("effective_date", "the census date is more than a year after joining")
    return dataclasses.replace(member, status="active", joined_on=effective_date, member_since=effective_date)


def leave(member: SchoolMember, *, effective_date: dt.date, reason: str) -> SchoolMember:
    """The member leaves: `effective_date` is its first day no longer a member."""
    if member.status != "active":
        raise MembershipRuleBroken("status", f"URN {member.urn} is {member.status}; only an active member leaves")
    if effective_date <= member.joined_on:
        raise MembershipRuleBroken("effective_date", f"leaving on {effective_date.isoformat()} is not after "
                                                     f"joining on {member.joined_on.isoformat()}")
    reason = (reason or "").strip()
    if not reason:
        raise MembershipRuleBroken("reason", "give the reason for leaving")
    return dataclasses.replace(member, status="left", left_on=effective_date, left_reason=reason)


def _check_establishment(establishment_type: str, mat: Mat | None, phase: str) -> None:
    if establishment_type not in ESTABLISHMENT_TYPES:
        raise MembershipRuleBroken("establishment_type", f"unknown establishment type {establishment_type!r}")
    if phase not in PHASES:
        raise MembershipRuleBroken("phase", f"unknown phase {phase!r}")
    if establishment_type in ACADEMY_TYPES and mat is None:
        raise MembershipRuleBroken("mat", "an academy belongs to a multi-academy trust; give its MAT")
    if establishment_type not in ACADEMY_TYPES and mat is not None:
        raise MembershipRuleBroken("mat", "a maintained school is not in a multi-academy trust")


def _tidy(field: str, value):
    if field in ("name", "local_authority") and isinstance(value, str):
        return value.strip()
    if field == "postcode" and isinstance(value, str):
        return value.strip().upper()
    return value


def _check_transition(before: SchoolMember, after: SchoolMember) -> None:
    if (before.establishment_type not in ACADEMY_TYPES and after.establishment_type in ACADEMY_TYPES
            and before.establishment_type != "early_years_provider"):
        raise MembershipRuleBroken("establishment_type", "a maintained school becomes an academy by conversion "
                                                         "(a new URN), not by a change of details")
    if (before.establishment_type in ACADEMY_TYPES) != (after.establishment_type in ACADEMY_TYPES):
        raise MembershipRuleBroken("establishment_type", "an academy cannot become a maintained school by a "
                                                         "change of details")
    if (before.establishment_type == "early_years_provider") != (after.establishment_type == "early_years_provider"):
        raise MembershipRuleBroken("establishment_type", "an early years provider and a school have different "
                                                         "kinds of URN; this is a new establishment")
    _check_establishment(after.establishment_type, after.mat, after.phase)
    if not after.name:
        raise MembershipRuleBroken("name", "the name cannot be empty")


def details_on(entries: list["HistoryEntry"], day: dt.date) -> dict | None:
    """The details (`DETAIL_FIELDS`, `mat` as a `Mat`) in force on `day`, replaying the dated history in
    effective-date order (same date: in the order recorded); None before the first record began."""
    state = None
    for entry in sorted(entries, key=lambda e: e.effective_date):
        if entry.effective_date > day:
            break
        if entry.kind in ("joined", "applied", "activated", "opened_by_conversion"):
            state = {f: entry.details.get(f) for f in DETAIL_FIELDS}
        elif entry.kind == "details_changed" and state is not None:
            state.update({f: c["new"] for f, c in entry.details.items() if f in DETAIL_FIELDS})
    if state is not None and isinstance(state.get("mat"), dict):
        state["mat"] = Mat(state["mat"]["id"], state["mat"]["name"])
    return state


def change_details(member: SchoolMember, *, effective_date: dt.date, history: list["HistoryEntry"] = (),
                   **proposed) -> tuple[SchoolMember, dict]:
    """New details for an open member from `effective_date`. Returns the member's current record and only the
    real changes as `{field: {"old": .., "new": ..}}` (empty when nothing changed), `old` being the value in
    force on `effective_date`. A maintained school becoming an academy is a conversion (new URN), never a
    change of details.

    A backdated change never overwrites a later-dated one: given the member's dated `history`, a field
    changed again with a later effective date keeps that later value in the current record (the backdated
    value holds only between the two dates, in the history)."""
    if member.status not in ("active", "applied"):
        raise MembershipRuleBroken("status", f"URN {member.urn} is {member.status}; its details are closed")
    unknown = set(proposed) - set(DETAIL_FIELDS)
    if unknown:
        raise MembershipRuleBroken(sorted(unknown)[0], "not a detail that can be changed")
    if effective_date < member.joined_on:
        raise MembershipRuleBroken("effective_date", "a change cannot apply before the member joined")
    then = details_on([e for e in history if e.effective_date >= member.joined_on], effective_date)
    before = member if then is None else dataclasses.replace(
        member, **{f: v for f, v in then.items() if v is not None or f == "mat"})
    superseded = {f for e in history if e.kind == "details_changed" and e.effective_date > effective_date
                  for f in e.details}
    changes = {}
    for field, value in proposed.items():
        value = _tidy(field, value)
        old = getattr(before, field)
        if value != old:
            changes[field] = {"old": old, "new": value}
    if not changes:
        return member, {}
    after_then = dataclasses.replace(before, **{f: c["new"] for f, c in changes.items()})
    current = dataclasses.replace(member, **{f: c["new"] for f, c in changes.items() if f not in superseded})
    if "dfe_number" in changes or "local_authority" in changes:
        check_laestab(after_then.dfe_number, after_then.local_authority)
        check_laestab(current.dfe_number, current.local_authority)
    _check_transition(before, after_then)
    _check_transition(member, current)
    return current, changes


@dataclasses.dataclass(frozen=True)
class CensusRecorded:
    urn: str
    census_date: dt.date
    old_number_on_roll: int | None
    number_on_roll: int
    is_latest: bool


def record_census(member: SchoolMember, *, census_date: dt.date, number_on_roll: int,
                  previous_on_that_date: int | None, latest_before: int | None) -> tuple[SchoolMember, CensusRecorded | None]:
    """Pupils on roll at a census. The old figure is the one recorded for that census date if any, else the
    latest earlier census. Returns None for the event when the same figure is recorded again."""
    if member.status not in ("active", "applied"):
        raise MembershipRuleBroken("urn", f"URN {member.urn} is {member.status}; census figures are for open members")
    if isinstance(number_on_roll, bool) or not isinstance(number_on_roll, int) or number_on_roll < 0:
        raise MembershipRuleBroken("number_on_roll", "the number on roll is a whole number, 0 or more")
    if previous_on_that_date == number_on_roll:
        return member, None
    old = previous_on_that_date if previous_on_that_date is not None else latest_before
    is_latest = census_date >= member.census_date
    if is_latest:
        member = dataclasses.replace(member, census_date=census_date, number_on_roll=number_on_roll)
    return member, CensusRecorded(member.urn, census_date, old, number_on_roll, is_latest)


# --- academy conversion ----------------------------------------------------------------------------------------



@dataclasses.dataclass(frozen=True)
class Conversion:
    predecessor: SchoolMember
    successor: SchoolMember
    mat: Mat
    conversion_date: dt.date


def convert_to_academy(predecessor: SchoolMember | None, *, successor_open: SchoolMember | None, successor_urn: str,
                       successor_dfe_number: str | None, conversion_date: dt.date, mat: Mat | None,
                       successor_name: str | None = None, establishment_type: str = "academy_converter",
                       phase: str | None = None, postcode: str | None = None, number_on_roll: int | None = None,
                       census_date: dt.date | None = None) -> Conversion:
    """The maintained school closes the day before `conversion_date`; the academy (a new URN, in `mat`) opens on
    it, with the membership continuous (`member_since` carried over)."""
    if predecessor is None or predecessor.status != "active":
        raise NotAMember("urn", "only an active member converts")
    if predecessor.establishment_type not in MAINTAINED_TYPES:
        raise MembershipRuleBroken("urn", f"URN {predecessor.urn} is {predecessor.establishment_type}, not a "
                                          "maintained school; only a maintained school converts")
    check_urn(successor_urn, field="successor_urn")
    if successor_urn == predecessor.urn:
        raise MembershipRuleBroken("successor_urn", "the academy is a new establishment with a new URN")
    if successor_open is not None:
        raise AlreadyMember("successor_urn", f"URN {successor_urn} is already an open member")
    if mat is None:
        raise MembershipRuleBroken("mat", "an academy opens in a multi-academy trust; give its MAT")
    if establishment_type not in ACADEMY_TYPES:
        raise MembershipRuleBroken("establishment_type", f"{establishment_type!r} is not an academy type")
    if conversion_date <= predecessor.joined_on:
        raise MembershipRuleBroken("conversion_date", "the conversion date must be after the school joined "
                                                      f"({predecessor.joined_on.isoformat()})")
    dfe_number = successor_dfe_number or predecessor.dfe_number
    if successor_dfe_number:
        try:
            check_laestab(dfe_number, predecessor.local_authority)
        except MembershipRuleBroken as exc:
            raise MembershipRuleBroken("successor_dfe_number", exc.message) from None
    closed = dataclasses.replace(predecessor, status="converted", left_on=conversion_date, left_reason=CONVERTED)
    successor = SchoolMember(
        urn=successor_urn, dfe_number=dfe_number, name=(successor_name or predecessor.name).strip(),
        establishment_type=establishment_type, phase=phase or predecessor.phase,
        local_authority=predecessor.local_authority, postcode=(postcode or predecessor.postcode).strip().upper(),
        number_on_roll=predecessor.number_on_roll if number_on_roll is None else number_on_roll,
        census_date=census_date or predecessor.census_date, joined_on=conversion_date, mat=mat,
        member_since=predecessor.member_since)
    if successor.number_on_roll < 0:
        raise MembershipRuleBroken("number_on_roll", "the number on roll cannot be negative")
    if successor.phase not in PHASES:
        raise MembershipRuleBroken("phase", f"unknown phase {successor.phase!r}")
    return Conversion(closed, successor, mat, conversion_date)


# --- history ---------------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class HistoryEntry:
    """One dated change in a member's life: `kind` joined/applied/activated/left/converted/details_changed/
    census_recorded/opened_by_conversion; `details` what changed (JSON-safe values)."""

    urn: str
    effective_date: dt.date
    kind: str
    details: dict


def mat_on(entries: list[HistoryEntry], day: dt.date) -> dict | None | bool:
    """The MAT (`{"id","name"}` or None) of a school on `day` by replaying its history; False if it was not a
    member that day."""
    state, member = None, False
    for entry in sorted(entries, key=lambda e: e.effective_date):
        if entry.effective_date > day:
            break
        if entry.kind in ("joined", "activated", "opened_by_conversion"):
            member = True
            state = entry.details.get("mat")
        elif entry.kind in ("left", "converted"):
            member = False
        elif entry.kind == "details_changed" and "mat" in entry.details:
            state = entry.details["mat"]["new"]
    return state if member else False
