"""Rows of the DfE register (GIAS column layout) to members. Pure Python: the caller reads the files.

A row is accepted when its URN, LAESTAB, type, phase, pupils and postcode make a valid member. The
establishment type must be in the DfE's own type list (loaded from its CSV); types outside what the
partnership admits (independent schools, colleges, universities, Welsh establishments...) are
rejected by name. Column names are read as GIAS writes them (`TypeOfEstablishment (name)`,
`LA (code)`, `Trusts (name)`...) or in the short form (`TypeOfEstablishment`, `LAESTAB`, `Trusts`).
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import re

from membership.domain import la_codes
from membership.domain.model import (ACADEMY_TYPES, PHASES, Mat, MembershipRuleBroken, check_dfe_number,
                                     check_laestab, check_urn)

# DfE type name -> this service's establishment type. Names in the DfE list but not here are refused.
GIAS_TYPES = {
    "Community school": "community",
    "Voluntary aided school": "voluntary_aided",
    "Voluntary controlled school": "voluntary_controlled",
    "Foundation school": "foundation",
    "Pupil referral unit": "pupil_referral_unit",
    "Local authority nursery school": "nursery",
    "Community special school": "community_special",
    "Foundation special school": "foundation_special",
    "Academy sponsor led": "academy_sponsor_led",
    "Academy special sponsor led": "academy_special",
    "Academy converter": "academy_converter",
    "Academy alternative provision converter": "academy_converter",
    "Academy alternative provision sponsor led": "academy_sponsor_led",
    "Academy special converter": "academy_special",
    "Academy 16-19 converter": "academy_converter",
    "Academy 16 to 19 sponsor led": "academy_sponsor_led",
    "Free schools": "free_school",
    "Free schools special": "academy_special",
    "Free schools alternative provision": "free_school",
    "Free schools 16 to 19": "free_school",
    "University technical college": "university_technical_college",
    "Studio schools": "studio_school",
}
GIAS_PHASES = {
    "Nursery": "early_years", "Primary": "primary", "Middle deemed primary": "primary",
    "Secondary": "secondary", "Middle deemed secondary": "secondary", "16 plus": "secondary",
    "All-through": "all_through", "Not applicable": "not_applicable",
}
POSTCODE = re.compile(r"^[A-Z]{1,2}[0-9][A-Z0-9]? ?[0-9][A-Z]{2}\Z")
LAESTAB = re.compile(r"^([0-9]{3})/?([0-9]{4})\Z")
COLUMNS = {
    "urn": ("URN",),
    "laestab": ("LAESTAB",),
    "la_code": ("LA (code)", "LA"),
    "establishment_number": ("EstablishmentNumber",),
    "la_name": ("LA (name)",),
    "name": ("EstablishmentName",),
    "type": ("TypeOfEstablishment (name)", "TypeOfEstablishment"),
    "phase": ("PhaseOfEducation (name)", "PhaseOfEducation"),
    "pupils": ("NumberOfPupils",),
    "postcode": ("Postcode",),
    "trust_name": ("Trusts (name)", "Trusts"),
    "trust_code": ("Trusts (code)", "TrustsCode"),
    "census_date": ("CensusDate",),
    "status": ("EstablishmentStatus (name)", "EstablishmentStatus"),
}
REQUIRED = ("urn", "name", "type", "phase", "pupils", "postcode")


class RowRejected(Exception):
    def __init__(self, field: str, reason: str):
        super().__init__(reason)
        self.field, self.reason = field, reason


@dataclasses.dataclass(frozen=True)
class RegisterRow:
    """One accepted row, in this service's terms."""

    line: int
    urn: str
    dfe_number: str
    name: str
    establishment_type: str
    phase: str
    local_authority: str
    postcode: str
    number_on_roll: int
    census_date: dt.date
    mat: Mat | None


def column_map(header: list[str]) -> dict[str, str]:
    """Our field -> the file's column name; raises ValueError naming the missing columns."""
    present = {h.strip().lstrip("\ufeff"): h for h in header}
    found = {}
    for field, names in COLUMNS.items():
        for name in names:
            if name in present:
                found[field] = present[name]
                break
    missing = [COLUMNS[f][0] for f in REQUIRED if f not in found]
    if "laestab" not in found and not ("la_code" in found and "establishment_number" in found):
        missing.append("LAESTAB (or LA (code) and EstablishmentNumber)")
    if missing:
        raise ValueError(f"the file has no column {', '.join(missing)}")
    return found


def trust_id(name: str) -> str:
    """A stable MAT id when the file names a trust without its group code."""
    return "T" + hashlib.sha1(" ".join(name.lower().split()).encode()).hexdigest()[:10].upper()


def _date(text: str) -> dt.date:
    text = text.strip()
    for pattern in ("%d-%m-%Y", "%Y-%m-%d", "%d/%m/%Y"):
        try:
            return dt.datetime.strptime(text, pattern).date()
        except ValueError:
            continue
    raise RowRejected("CensusDate", f"{text!r} is not a date (DD-MM-YYYY or YYYY-MM-DD)")


def read_row(line: int, row: dict, columns: dict[str, str], *, known_types: set[str], default_census: dt.date,
             joined_on: dt.date) -> RegisterRow:
    """Validate one row; raises `RowRejected(column, reason)`."""
    def value(field):
        column = columns.get(field)
        return (row.get(column) or "").strip() if column else ""

    status = value("status")
    if status and status.lower().startswith("closed"):
        raise RowRejected(columns["status"], f"the establishment is {status.lower()}")
    urn = value("urn")
    try:
        check_urn(urn)
    except MembershipRuleBroken as exc:
        raise RowRejected(columns["urn"], exc.message) from None
    if "laestab" in columns:
        match = LAESTAB.match(value("laestab"))
        if not match:
            raise RowRejected(columns["laestab"], f"{value('laestab')!r} is not an LAESTAB (NNNNNNN or NNN/NNNN)")
        dfe_number = f"{match.group(1)}/{match.group(2)}"
    else:
        dfe_number = f"{value('la_code')}/{value('establishment_number')}"
        try:
            check_dfe_number(dfe_number)
        except MembershipRuleBroken:
            raise RowRejected(columns["establishment_number"], "LA (code) and EstablishmentNumber do not make "
                                                               "a DfE number NNN/NNNN") from None
    name = " ".join(value("name").split())
    if not name or len(name) > 200:
        raise RowRejected(columns["name"], "the name is empty or longer than 200 characters")
    type_name = value("type")
    if type_name not in known_types:
        raise RowRejected(columns["type"], f"{type_name!r} is not in the DfE establishment type list")
    if type_name not in GIAS_TYPES:
        raise RowRejected(columns["type"], f"{type_name!r} establishments are not admitted to the partnership")
    establishment_type = GIAS_TYPES[type_name]
    phase_name = value("phase")
    if phase_name not in GIAS_PHASES:
        raise RowRejected(columns["phase"], f"{phase_name!r} is not a DfE phase of education")
    phase = GIAS_PHASES[phase_name]
    pupils = value("pupils")
    if not pupils.isascii() or not pupils.isdigit() or int(pupils) > 10000:
        raise RowRejected(columns["pupils"], f"{pupils!r} is not a number of pupils (0-10000)")
    postcode = " ".join(value("postcode").upper().split())
    if not POSTCODE.match(postcode):
        raise RowRejected(columns["postcode"], f"{postcode!r} is not a UK postcode")
    trust_name = " ".join(value("trust_name").split())
    mat = None
    if establishment_type in ACADEMY_TYPES:
        if not trust_name:
            raise RowRejected(columns.get("trust_name", "Trusts"), "an academy needs its trust (MAT)")
        code = value("trust_code")
        if len(code) > 20:
            raise RowRejected(columns["trust_code"], "a trust code is at most 20 characters")
        mat = Mat(code or trust_id(trust_name), trust_name[:200])
    census = _date(value("census_date")) if value("census_date") else default_census
    if census > joined_on + dt.timedelta(days=366):
        raise RowRejected(columns.get("census_date", "CensusDate"), "the census date is more than a year after joining")
    local_authority = value("la_name") or la_codes.name_of(dfe_number[:3]) or f"LA {dfe_number[:3]}"
    try:
        check_laestab(dfe_number, local_authority)
    except MembershipRuleBroken as exc:
        column = columns.get("la_name", "LA (name)") if exc.field == "local_authority" else \
            columns.get("laestab") or columns["la_code"]
        raise RowRejected(column, exc.message) from None
    return RegisterRow(line, urn, dfe_number, name, establishment_type, phase, local_authority[:100], postcode,
                       int(pupils), census, mat)


assert set(GIAS_PHASES.values()) <= set(PHASES)
