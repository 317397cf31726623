"""Scheduling's own, lenient copies of the upstream events it reads (unknown fields excluded)."""
from marshmallow import EXCLUDE, Schema, fields


class _Lenient(Schema):
    class Meta:
        unknown = EXCLUDE


class _Mat(_Lenient):
    id = fields.String(required=True)


class MemberJoined(_Lenient):
    """membership's `member_joined` v1."""

    urn = fields.String(required=True)
    name = fields.String(required=True)
    phase = fields.String(required=True)
    mat = fields.Nested(_Mat, allow_none=True, required=True)
    postcode = fields.String(required=True)


class SubscriptionStarted(_Lenient):
    """catalogue's `subscription_started` v1."""

    subscription_id = fields.String(required=True)
    urn = fields.String(required=True)
    offering_code = fields.String(required=True)
    service_area = fields.String(required=True)
    period_start = fields.Date(required=True)
    period_end = fields.Date(required=True)
