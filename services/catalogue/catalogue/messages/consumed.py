"""Catalogue's own, lenient copies of the upstream events it reads (unknown fields excluded).
Trimmed to what it uses; `tests/contracts` checks them against the producers' schemas.
All come from membership (exchange `membership.events`), as docs/events.md fixes them.

Each schema loads into a frozen dataclass of the catalogue's own (`Joining`, `Leaving`, ...),
so nothing past the entrypoint reads a raw payload; the facts they carry are the domain's
value objects (`SchoolDetails`, `Roll`, `Mat`)."""
from __future__ import annotations

import dataclasses
import datetime as dt

from marshmallow import EXCLUDE, Schema, fields, post_load

from catalogue.domain.member_copy import Mat, Roll, SchoolDetails


@dataclasses.dataclass(frozen=True)
class Joining:
    """A school joined the partnership on `joined_on` (`member_joined`)."""

    urn: str
    details: SchoolDetails
    roll: Roll
    joined_on: dt.date


@dataclasses.dataclass(frozen=True)
class Leaving:
    """A member leaves; `effective_date` is its first day no longer a member (`member_left`)."""

    urn: str
    effective_date: dt.date
    reason: str


@dataclasses.dataclass(frozen=True)
class DetailsChange:
    """A member's current details after a change effective on `effective_date` (`member_details_changed`)."""

    urn: str
    effective_date: dt.date
    details: SchoolDetails


@dataclasses.dataclass(frozen=True)
class CensusReturn:
    """A census figure for a member (`census_recorded`)."""

    urn: str
    roll: Roll


@dataclasses.dataclass(frozen=True)
class Conversion:
    """A maintained school closes on `conversion_date` and its successor opens as an academy in `mat`
    (`school_converted_to_academy`)."""

    conversion_date: dt.date
    predecessor_urn: str
    successor_urn: str
    successor_details: SchoolDetails
    successor_roll: Roll


@dataclasses.dataclass(frozen=True)
class RoleChange:
    """A person's role at a member, as from `effective_date` (`contact_role_changed`)."""

    contact_id: str
    urn: str
    display_name: str
    role: str
    may_commit_spending: bool
    active: bool
    effective_date: dt.date


@dataclasses.dataclass(frozen=True)
class Erasure:
    """A person's data is to be erased wherever it is kept (`contact_erased`)."""

    contact_id: str


class _Lenient(Schema):
    class Meta:
        unknown = EXCLUDE


class _Mat(_Lenient):
    id = fields.String(required=True)
    name = fields.String(required=True)

    @post_load
    def _typed(self, data, **_):
        return Mat(id=data["id"], name=data["name"])


def _details(data: dict, *, is_academy: bool, mat: Mat | None) -> SchoolDetails:
    return SchoolDetails(name=data["name"], establishment_type=data["establishment_type"], phase=data["phase"],
                         is_academy=is_academy, mat=mat)


class MemberJoined(_Lenient):
    """membership's `member_joined` v1."""

    urn = fields.String(required=True)
    name = fields.String(required=True)
    establishment_type = fields.String(required=True)
    phase = fields.String(required=True)
    is_academy = fields.Boolean(required=True)
    mat = fields.Nested(_Mat, allow_none=True, required=True)
    number_on_roll = fields.Integer(required=True)
    census_date = fields.Date(required=True)
    joined_on = fields.Date(required=True)

    @post_load
    def _typed(self, data, **_) -> Joining:
        return Joining(urn=data["urn"], details=_details(data, is_academy=data["is_academy"], mat=data["mat"]),
                       roll=Roll(number_on_roll=data["number_on_roll"], census_date=data["census_date"]),
                       joined_on=data["joined_on"])


class MemberLeft(_Lenient):
    """membership's `member_left` v1: the member's SLAs end from `effective_date`."""

    urn = fields.String(required=True)
    effective_date = fields.Date(required=True)
    reason = fields.String(required=True)

    @post_load
    def _typed(self, data, **_) -> Leaving:
        return Leaving(urn=data["urn"], effective_date=data["effective_date"], reason=data["reason"])


class MemberDetailsChanged(_Lenient):
    """membership's `member_details_changed` v1 (the member's current details are what is kept)."""

    urn = fields.String(required=True)
    effective_date = fields.Date(required=True)
    name = fields.String(required=True)
    establishment_type = fields.String(required=True)
    phase = fields.String(required=True)
    is_academy = fields.Boolean(required=True)
    mat = fields.Nested(_Mat, allow_none=True, required=True)

    @post_load
    def _typed(self, data, **_) -> DetailsChange:
        return DetailsChange(urn=data["urn"], effective_date=data["effective_date"],
                             details=_details(data, is_academy=data["is_academy"], mat=data["mat"]))


class CensusRecorded(_Lenient):
    """membership's `census_recorded` v1: the roll that prices the next per-pupil purchase."""

    urn = fields.String(required=True)
    census_date = fields.Date(required=True)
    number_on_roll = fields.Integer(required=True)

    @post_load
    def _typed(self, data, **_) -> CensusReturn:
        return CensusReturn(urn=data["urn"], roll=Roll(number_on_roll=data["number_on_roll"],
                                                        census_date=data["census_date"]))


class _Predecessor(_Lenient):
    urn = fields.String(required=True)


class _Successor(_Lenient):
    urn = fields.String(required=True)
    name = fields.String(required=True)
    establishment_type = fields.String(required=True)
    phase = fields.String(required=True)
    number_on_roll = fields.Integer(required=True)
    census_date = fields.Date(required=True)


class SchoolConvertedToAcademy(_Lenient):
    """membership's `school_converted_to_academy` v1: predecessor closes, successor opens in a MAT."""

    conversion_date = fields.Date(required=True)
    predecessor = fields.Nested(_Predecessor, required=True)
    successor = fields.Nested(_Successor, required=True)
    mat = fields.Nested(_Mat, required=True)

    @post_load
    def _typed(self, data, **_) -> Conversion:
        new = data["successor"]
        return Conversion(conversion_date=data["conversion_date"], predecessor_urn=data["predecessor"]["urn"],
                          successor_urn=new["urn"], successor_details=_details(new, is_academy=True, mat=data["mat"]),
                          successor_roll=Roll(number_on_roll=new["number_on_roll"], census_date=new["census_date"]))


class ContactRoleChanged(_Lenient):
    """membership's `contact_role_changed` v1: who may commit a school's spending."""

    contact_id = fields.String(required=True)
    urn = fields.String(required=True)
    display_name = fields.String(required=True)
    role = fields.String(required=True)
    may_commit_spending = fields.Boolean(required=True)
    active = fields.Boolean(required=True)
    effective_date = fields.Date(required=True)

    @post_load
    def _typed(self, data, **_) -> RoleChange:
        return RoleChange(**data)


class ContactErased(_Lenient):
    """membership's `contact_erased` v1: every copy of that person's data goes."""

    contact_id = fields.String(required=True)

    @post_load
    def _typed(self, data, **_) -> Erasure:
        return Erasure(contact_id=data["contact_id"])
