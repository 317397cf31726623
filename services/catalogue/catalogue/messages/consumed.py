"""Catalogue's own, lenient copies of the upstream events it reads (unknown fields excluded).
Trimmed to what it uses; `tests/contracts` checks them against the producers' schemas.
All come from membership (exchange `membership.events`), as docs/events.md fixes them."""
from marshmallow import EXCLUDE, Schema, fields


class _Lenient(Schema):
    class Meta:
        unknown = EXCLUDE


class _Mat(_Lenient):
    id = fields.String(required=True)
    name = fields.String(required=True)


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


class MemberLeft(_Lenient):
    """membership's `member_left` v1: the member's SLAs end from `effective_date`."""

    urn = fields.String(required=True)
    effective_date = fields.Date(required=True)
    reason = fields.String(required=True)


class MemberDetailsChanged(_Lenient):
    """membership's `member_details_changed` v1 (the member's current details are what is kept)."""

    urn = fields.String(required=True)
    effective_date = fields.Date(required=True)
    name = fields.String(required=True)
    establishment_type = fields.String(required=True)
    phase = fields.String(required=True)
    is_academy = fields.Boolean(required=True)
    mat = fields.Nested(_Mat, allow_none=True, required=True)


class CensusRecorded(_Lenient):
    """membership's `census_recorded` v1: the roll that prices the next per-pupil purchase."""

    urn = fields.String(required=True)
    census_date = fields.Date(required=True)
    number_on_roll = fields.Integer(required=True)


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


class ContactRoleChanged(_Lenient):
    """membership's `contact_role_changed` v1: who may commit a school's spending."""

    contact_id = fields.String(required=True)
    urn = fields.String(required=True)
    display_name = fields.String(required=True)
    role = fields.String(required=True)
    may_commit_spending = fields.Boolean(required=True)
    active = fields.Boolean(required=True)
    effective_date = fields.Date(required=True)


class ContactErased(_Lenient):
    """membership's `contact_erased` v1: every copy of that person's data goes."""

    contact_id = fields.String(required=True)
