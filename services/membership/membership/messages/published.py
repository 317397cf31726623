"""What membership publishes: strict schemas, one per event type and version.

`member_joined` v1 fires when a school's membership is committed; it carries
everything a consumer needs to act without calling back (type, phase, MAT,
number on roll and the census it came from).
"""
from marshmallow import RAISE, Schema, fields, validate

from shared.envelope import PayloadSchemas

from membership.domain.model import ESTABLISHMENT_TYPES, MEMBER_KINDS, PHASES


class MatSchema(Schema):
    class Meta:
        unknown = RAISE

    id = fields.String(required=True)
    name = fields.String(required=True)


class MemberJoinedV1(Schema):
    """A school or early years provider became a member on `joined_on`."""

    class Meta:
        unknown = RAISE

    urn = fields.String(required=True, validate=validate.Regexp(r"^\d{6}$"))
    dfe_number = fields.String(required=True, validate=validate.Regexp(r"^\d{3}/\d{4}$"))
    name = fields.String(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(MEMBER_KINDS))
    establishment_type = fields.String(required=True, validate=validate.OneOf(ESTABLISHMENT_TYPES))
    phase = fields.String(required=True, validate=validate.OneOf(PHASES))
    is_academy = fields.Boolean(required=True)
    mat = fields.Nested(MatSchema, required=True, allow_none=True)
    local_authority = fields.String(required=True)
    postcode = fields.String(required=True)
    number_on_roll = fields.Integer(required=True, strict=True, validate=validate.Range(min=0))
    census_date = fields.Date(required=True)
    joined_on = fields.Date(required=True)


PUBLISHED = PayloadSchemas({("member_joined", 1): MemberJoinedV1()})

EXAMPLES = {
    ("member_joined", 1): {
        "urn": "110394", "dfe_number": "825/2001", "name": "Haddenham Community Infant School",
        "kind": "school", "establishment_type": "community", "phase": "primary", "is_academy": False,
        "mat": None, "local_authority": "Buckinghamshire", "postcode": "HP17 8DS", "number_on_roll": 172,
        "census_date": "2025-10-02", "joined_on": "2026-04-01",
    },
}
