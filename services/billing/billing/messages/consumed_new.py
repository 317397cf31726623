"""Billing's lenient copies (unknown fields excluded) of the upstream events added by
docs/events.md that the producers on this branch do not publish yet.

They live apart from `consumed.py` only because `tests/contracts` checks every schema
of that module against the producer's published one, and these producers' schemas land
with the membership, catalogue and scheduling issues. Once merged, the lead moves them
into `consumed.py` and maps them in `tests/contracts/test_contracts.py::CONSUMERS`.
"""
from marshmallow import EXCLUDE, Schema, fields

from billing.messages.consumed import SubscriptionStarted, _Mat


class _Lenient(Schema):
    class Meta:
        unknown = EXCLUDE


class MemberLeft(_Lenient):
    """membership's `member_left` v1."""

    urn = fields.String(required=True)
    effective_date = fields.Date(required=True)
    reason = fields.String(load_default=None, allow_none=True)


class MemberDetailsChanged(_Lenient):
    """membership's `member_details_changed` v1 (billing reads MAT, academy status and name)."""

    urn = fields.String(required=True)
    effective_date = fields.Date(required=True)
    changes = fields.Dict(required=True)
    name = fields.String(required=True)
    is_academy = fields.Boolean(required=True)
    mat = fields.Nested(_Mat, allow_none=True, required=True)


class _Predecessor(_Lenient):
    urn = fields.String(required=True)
    name = fields.String(required=True)


class _Successor(_Lenient):
    urn = fields.String(required=True)
    name = fields.String(required=True)


class SchoolConvertedToAcademy(_Lenient):
    """membership's `school_converted_to_academy` v1."""

    conversion_date = fields.Date(required=True)
    predecessor = fields.Nested(_Predecessor, required=True)
    successor = fields.Nested(_Successor, required=True)
    mat = fields.Nested(_Mat, required=True)


class SubscriptionRenewed(SubscriptionStarted):
    """catalogue's `subscription_renewed` v1: every field of `subscription_started`, plus `renewal_of`."""


class SubscriptionCancelled(_Lenient):
    """catalogue's `subscription_cancelled` v1."""

    subscription_id = fields.String(required=True)
    urn = fields.String(required=True)
    effective_date = fields.Date(required=True)
    reason = fields.String(load_default=None, allow_none=True)


class SubscriptionEnded(_Lenient):
    """catalogue's `subscription_ended` v1."""

    subscription_id = fields.String(required=True)
    urn = fields.String(required=True)
    effective_date = fields.Date(required=True)
    reason = fields.String(load_default=None, allow_none=True)


class AttendanceRecorded(_Lenient):
    """scheduling's `attendance_recorded` v1."""

    attendance_id = fields.String(required=True)
    course_code = fields.String(required=True)
    offering_code = fields.String(allow_none=True, load_default=None)
    service_area = fields.String(required=True)
    urn = fields.String(required=True)
    session_date = fields.Date(required=True)
    attended = fields.Boolean(required=True)
    chargeable = fields.Boolean(required=True)
    price_basis = fields.String(required=True)
    unit_price_pence = fields.Integer(required=True, strict=True)
    vat_treatment = fields.String(required=True)
