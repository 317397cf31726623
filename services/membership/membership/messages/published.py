"""What membership publishes: strict schemas, one per event type and version (docs/events.md).

Each event is committed to the outbox with the change it reports and carries everything a consumer
needs to act without calling back. `member_joined` v1 is unchanged for its existing consumers.
"""
from marshmallow import RAISE, Schema, fields, validate

from shared import handover
from shared.envelope import PayloadSchemas
from shared.handover import with_handover

from membership.domain.contacts import ALL_ORGANISATION_ROLES, ORGANISATION_ROLES
from membership.domain.contacts import ROLES as CONTACT_ROLES
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



URN = validate.Regexp(r"^\d{6}$")
DFE_NUMBER = validate.Regexp(r"^\d{3}/\d{4}$")


class MemberLeftV1(Schema):
    """A member left: `effective_date` is its first day no longer a member."""

    class Meta:
        unknown = RAISE

    urn = fields.String(required=True, validate=URN)
    name = fields.String(required=True)
    effective_date = fields.Date(required=True)
    reason = fields.String(required=True, validate=validate.Length(min=1))


class ChangeSchema(Schema):
    class Meta:
        unknown = RAISE

    old = fields.Raw(required=True, allow_none=True)
    new = fields.Raw(required=True, allow_none=True)


class MemberDetailsChangedV1(Schema):
    """A member's details changed from `effective_date`: `changes` holds each changed field's old and new value;
    the member's current details follow."""

    class Meta:
        unknown = RAISE

    urn = fields.String(required=True, validate=URN)
    effective_date = fields.Date(required=True)
    changes = fields.Dict(required=True, keys=fields.String(validate=validate.OneOf(
        ("dfe_number", "name", "establishment_type", "phase", "local_authority", "postcode", "mat"))),
        values=fields.Nested(ChangeSchema))
    name = fields.String(required=True)
    establishment_type = fields.String(required=True, validate=validate.OneOf(ESTABLISHMENT_TYPES))
    phase = fields.String(required=True, validate=validate.OneOf(PHASES))
    is_academy = fields.Boolean(required=True)
    mat = fields.Nested(MatSchema, required=True, allow_none=True)
    local_authority = fields.String(required=True)
    postcode = fields.String(required=True)


class CensusRecordedV1(Schema):
    """Pupils on roll recorded for a school at a census date, with the figure it replaces (null if none)."""

    class Meta:
        unknown = RAISE

    urn = fields.String(required=True, validate=URN)
    census_date = fields.Date(required=True)
    old_number_on_roll = fields.Integer(required=True, strict=True, allow_none=True, validate=validate.Range(min=0))
    number_on_roll = fields.Integer(required=True, strict=True, validate=validate.Range(min=0))


class Predecessor(Schema):
    class Meta:
        unknown = RAISE

    urn = fields.String(required=True, validate=URN)
    dfe_number = fields.String(required=True, validate=DFE_NUMBER)
    name = fields.String(required=True)


class Successor(Schema):
    class Meta:
        unknown = RAISE

    urn = fields.String(required=True, validate=URN)
    dfe_number = fields.String(required=True, validate=DFE_NUMBER)
    name = fields.String(required=True)
    establishment_type = fields.String(required=True, validate=validate.OneOf(ESTABLISHMENT_TYPES))
    phase = fields.String(required=True, validate=validate.OneOf(PHASES))
    local_authority = fields.String(required=True)
    postcode = fields.String(required=True)
    number_on_roll = fields.Integer(required=True, strict=True, validate=validate.Range(min=0))
    census_date = fields.Date(required=True)


class SchoolConvertedToAcademyV1(Schema):
    """A maintained school converted: it closed the day before `conversion_date` and its successor (new URN) opened
    on it as an academy in `mat`, with the membership continuous. The only event of a conversion."""

    class Meta:
        unknown = RAISE

    conversion_date = fields.Date(required=True)
    predecessor = fields.Nested(Predecessor, required=True)
    successor = fields.Nested(Successor, required=True)
    mat = fields.Nested(MatSchema, required=True)


class ContactRoleChangedV1(Schema):
    """A person took a role at a member, had its spending authority changed, or left it (`active` false), from
    `effective_date`. Catalogue authorises purchases on `may_commit_spending`."""

    class Meta:
        unknown = RAISE

    contact_id = fields.UUID(required=True)
    urn = fields.String(required=True, validate=URN)
    display_name = fields.String(required=True)
    role = fields.String(required=True, validate=validate.OneOf(CONTACT_ROLES))
    may_commit_spending = fields.Boolean(required=True)
    active = fields.Boolean(required=True)
    effective_date = fields.Date(required=True)


class OrganisationContactRoleChangedV1(Schema):
    """A person took a role at a MAT, council or partner, or left it (`active` false), from `effective_date`.
    Roles: a MAT's ceo, finance_contact, peer_review_lead; a council's or partner's finance_contact,
    main_contact. Billing invoices a MAT's central billing to its active finance_contact."""

    class Meta:
        unknown = RAISE

    contact_id = fields.UUID(required=True)
    organisation_kind = fields.String(required=True, validate=validate.OneOf(tuple(ORGANISATION_ROLES)))
    organisation_id = fields.String(required=True, validate=validate.Length(min=1))
    organisation_name = fields.String(required=True)
    display_name = fields.String(required=True)
    email = fields.String(required=True, allow_none=True)
    role = fields.String(required=True, validate=validate.OneOf(ALL_ORGANISATION_ROLES))
    may_commit_spending = fields.Boolean(required=True)
    active = fields.Boolean(required=True)
    effective_date = fields.Date(required=True)


class ContactErasedV1(Schema):
    """A person's personal data was erased here (a school's contact or a MAT's, council's or partner's): every
    copy of it must go."""

    class Meta:
        unknown = RAISE

    contact_id = fields.UUID(required=True)


PUBLISHED = with_handover(PayloadSchemas({
    ("member_joined", 1): MemberJoinedV1(),
    ("member_left", 1): MemberLeftV1(),
    ("member_details_changed", 1): MemberDetailsChangedV1(),
    ("census_recorded", 1): CensusRecordedV1(),
    ("school_converted_to_academy", 1): SchoolConvertedToAcademyV1(),
    ("contact_role_changed", 1): ContactRoleChangedV1(),
    ("contact_erased", 1): ContactErasedV1(),
    ("organisation_contact_role_changed", 1): OrganisationContactRoleChangedV1(),
}))

CONTACT_ID = "3f2b6c1e-8d4a-4e7b-9c2d-1a5e6f7b8c9d"
EXAMPLES = {
    ("member_joined", 1): {
        "urn": "110394", "dfe_number": "825/2001", "name": "Haddenham Community Infant School",
        "kind": "school", "establishment_type": "community", "phase": "primary", "is_academy": False,
        "mat": None, "local_authority": "Buckinghamshire", "postcode": "HP17 8DS", "number_on_roll": 172,
        "census_date": "2025-10-02", "joined_on": "2026-04-01",
    },
    ("member_left", 1): {"urn": "110394", "name": "Haddenham Community Infant School",
                         "effective_date": "2027-04-01", "reason": "stopped buying traded services"},
    ("member_details_changed", 1): {
        "urn": "110394", "effective_date": "2026-09-01",
        "changes": {"name": {"old": "Haddenham Infant School", "new": "Haddenham Community Infant School"}},
        "name": "Haddenham Community Infant School", "establishment_type": "community", "phase": "primary",
        "is_academy": False, "mat": None, "local_authority": "Buckinghamshire", "postcode": "HP17 8DS",
    },
    ("census_recorded", 1): {"urn": "110394", "census_date": "2026-10-01", "old_number_on_roll": 172,
                             "number_on_roll": 181},
    ("school_converted_to_academy", 1): {
        "conversion_date": "2027-09-01",
        "predecessor": {"urn": "110394", "dfe_number": "825/2001", "name": "Haddenham Community Infant School"},
        "successor": {"urn": "149876", "dfe_number": "825/2001", "name": "Haddenham Infant Academy",
                      "establishment_type": "academy_converter", "phase": "primary",
                      "local_authority": "Buckinghamshire", "postcode": "HP17 8DS", "number_on_roll": 181,
                      "census_date": "2026-10-01"},
        "mat": {"id": "TR01234", "name": "Chiltern Learning Trust"},
    },
    ("contact_role_changed", 1): {"contact_id": CONTACT_ID, "urn": "110394", "display_name": "A. Head",
                                  "role": "head_teacher", "may_commit_spending": True, "active": True,
                                  "effective_date": "2026-04-01"},
    ("contact_erased", 1): {"contact_id": CONTACT_ID},
    ("organisation_contact_role_changed", 1): {
        "contact_id": "7a1c2e3f-4b5d-4c6e-8f90-1a2b3c4d5e6f", "organisation_kind": "mat",
        "organisation_id": "TR01234", "organisation_name": "Chiltern Learning Trust", "display_name": "B. Finance",
        "email": "finance@chiltern.example", "role": "finance_contact", "may_commit_spending": True, "active": True,
        "effective_date": "2026-04-01"},
}
EXAMPLES.update(handover.EXAMPLES)
