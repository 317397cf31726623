"""Members of the partnership and the rules for joining. Pure Python, no I/O.

A school is identified by its URN (6 digits; LA-registered early years
providers use 500000-799999) and its DfE number (LAESTAB, `NNN/NNNN`: LA code
and establishment number). One open membership per URN.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import re

# ASCII digits only, to the very end: `\d` also matches other scripts' digits and `$` matches
# before a trailing newline, so "110394\n" would pass as a second, different URN.
URN_PATTERN = re.compile(r"^[0-9]{6}\Z")
DFE_NUMBER_PATTERN = re.compile(r"^[0-9]{3}/[0-9]{4}\Z")
EARLY_YEARS_URNS = range(500000, 800000)

PHASES = ("early_years", "primary", "secondary", "all_through", "special", "not_applicable")
MEMBER_KINDS = ("school", "early_years_provider", "mat", "council", "partner")
ACADEMY_TYPES = ("academy_converter", "academy_sponsor_led", "free_school", "academy_special", "university_technical_college",
                 "studio_school")
MAINTAINED_TYPES = ("community", "foundation", "voluntary_aided", "voluntary_controlled", "community_special",
                    "foundation_special", "nursery", "pupil_referral_unit")
ESTABLISHMENT_TYPES = MAINTAINED_TYPES + ACADEMY_TYPES + ("early_years_provider",)


class MembershipRuleBroken(Exception):
    """A domain rule refused the change; `field` names what was wrong."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


class AlreadyMember(MembershipRuleBroken):
    pass


def check_urn(urn: str, *, early_years: bool = False) -> None:
    if not URN_PATTERN.match(urn or ""):
        raise MembershipRuleBroken("urn", "a URN is exactly 6 digits")
    if early_years and int(urn) not in EARLY_YEARS_URNS:
        raise MembershipRuleBroken("urn", "an LA-registered early years provider's URN is in 500000-799999")


def check_dfe_number(dfe_number: str) -> None:
    if not DFE_NUMBER_PATTERN.match(dfe_number or ""):
        raise MembershipRuleBroken("dfe_number", "a DfE number is the LA code and establishment number, NNN/NNNN")


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

    @property
    def is_academy(self) -> bool:
        return self.establishment_type in ACADEMY_TYPES

    @property
    def kind(self) -> str:
        return "early_years_provider" if self.establishment_type == "early_years_provider" else "school"


def join_school(*, open_member: SchoolMember | None, urn: str, dfe_number: str, name: str, establishment_type: str,
                phase: str, local_authority: str, postcode: str, number_on_roll: int, census_date: dt.date,
                joined_on: dt.date, mat: Mat | None) -> SchoolMember:
    """A school joins on `joined_on`. Refuses a second open record for the URN, an academy
    without its MAT, a maintained school with one, and a census after the joining date's year."""
    check_urn(urn, early_years=establishment_type == "early_years_provider")
    check_dfe_number(dfe_number)
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
    return SchoolMember(urn=urn, dfe_number=dfe_number, name=name.strip(), establishment_type=establishment_type,
                        phase=phase, local_authority=local_authority.strip(), postcode=postcode.strip().upper(),
                        number_on_roll=number_on_roll, census_date=census_date, joined_on=joined_on, mat=mat)
