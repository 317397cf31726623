"""Catalogue's own, lenient copies of the upstream events it reads (unknown fields excluded).
Trimmed to what it uses; `tests/contracts` checks them against the producers' schemas."""
from marshmallow import EXCLUDE, Schema, fields


class _Mat(Schema):
    class Meta:
        unknown = EXCLUDE

    id = fields.String(required=True)
    name = fields.String(required=True)


class MemberJoined(Schema):
    """membership's `member_joined` v1."""

    class Meta:
        unknown = EXCLUDE

    urn = fields.String(required=True)
    name = fields.String(required=True)
    establishment_type = fields.String(required=True)
    phase = fields.String(required=True)
    is_academy = fields.Boolean(required=True)
    mat = fields.Nested(_Mat, allow_none=True, required=True)
    number_on_roll = fields.Integer(required=True)
    census_date = fields.Date(required=True)
    joined_on = fields.Date(required=True)
