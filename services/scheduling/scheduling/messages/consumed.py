"""Scheduling's own, lenient copies of the upstream events it reads (unknown fields excluded),
trimmed to the fields it uses, exactly as docs/events.md fixes them.

Each loads into a frozen fact of `scheduling.domain.upstream` (`@post_load`), so use cases never
read a raw payload; nested objects are folded into their event's fact (a MAT into `mat_id`).
"""
from marshmallow import EXCLUDE, Schema, fields, post_load

from scheduling.domain import upstream


def _mat_id(mat) -> str | None:
    return mat["id"] if mat else None


class _Lenient(Schema):
    class Meta:
        unknown = EXCLUDE


class _Mat(_Lenient):
    id = fields.String(required=True)


class _Entitlement(_Lenient):
    kind = fields.String(required=True)
    quantity = fields.Integer(required=True)

    @post_load
    def _fact(self, data, **_):
        return upstream.Entitlement(**data)


class MemberJoined(_Lenient):
    """membership's `member_joined` v1."""

    urn = fields.String(required=True)
    name = fields.String(required=True)
    phase = fields.String(required=True)
    mat = fields.Nested(_Mat, allow_none=True, required=True)
    postcode = fields.String(required=True)
    establishment_type = fields.String(load_default=None)
    local_authority = fields.String(load_default=None)
    number_on_roll = fields.Integer(load_default=None, allow_none=True)
    joined_on = fields.Date(load_default=None)

    @post_load
    def _fact(self, data, **_):
        details = upstream.SchoolDetails(
            name=data["name"], phase=data["phase"], postcode=data["postcode"], mat_id=_mat_id(data["mat"]),
            establishment_type=data["establishment_type"], local_authority=data["local_authority"])
        return upstream.Joining(urn=data["urn"], details=details, number_on_roll=data["number_on_roll"],
                                joined_on=data["joined_on"])


class MemberLeft(_Lenient):
    """membership's `member_left` v1."""

    urn = fields.String(required=True)
    effective_date = fields.Date(required=True)

    @post_load
    def _fact(self, data, **_):
        return upstream.Leaving(**data)


class MemberDetailsChanged(_Lenient):
    """membership's `member_details_changed` v1 (the member's current details)."""

    urn = fields.String(required=True)
    effective_date = fields.Date(required=True)
    name = fields.String(required=True)
    establishment_type = fields.String(required=True)
    phase = fields.String(required=True)
    mat = fields.Nested(_Mat, allow_none=True, required=True)
    local_authority = fields.String(required=True)
    postcode = fields.String(required=True)

    @post_load
    def _fact(self, data, **_):
        details = upstream.SchoolDetails(
            name=data["name"], phase=data["phase"], postcode=data["postcode"], mat_id=_mat_id(data["mat"]),
            establishment_type=data["establishment_type"], local_authority=data["local_authority"])
        return upstream.DetailsChange(urn=data["urn"], effective_date=data["effective_date"], details=details)


class CensusRecorded(_Lenient):
    """membership's `census_recorded` v1."""

    urn = fields.String(required=True)
    number_on_roll = fields.Integer(required=True)

    @post_load
    def _fact(self, data, **_):
        return upstream.Census(**data)


class _Predecessor(_Lenient):
    urn = fields.String(required=True)


class _Successor(_Lenient):
    urn = fields.String(required=True)
    name = fields.String(required=True)
    establishment_type = fields.String(required=True)
    phase = fields.String(required=True)
    local_authority = fields.String(required=True)
    postcode = fields.String(required=True)
    number_on_roll = fields.Integer(load_default=None, allow_none=True)


class SchoolConvertedToAcademy(_Lenient):
    """membership's `school_converted_to_academy` v1: one event, no join or leave."""

    conversion_date = fields.Date(required=True)
    predecessor = fields.Nested(_Predecessor, required=True)
    successor = fields.Nested(_Successor, required=True)
    mat = fields.Nested(_Mat, required=True)

    @post_load
    def _fact(self, data, **_):
        new, mat_id = data["successor"], data["mat"]["id"]
        details = upstream.SchoolDetails(
            name=new["name"], phase=new["phase"], postcode=new["postcode"], mat_id=mat_id,
            establishment_type=new["establishment_type"], local_authority=new["local_authority"])
        return upstream.Conversion(
            conversion_date=data["conversion_date"], predecessor_urn=data["predecessor"]["urn"], mat_id=mat_id,
            successor=upstream.Successor(urn=new["urn"], details=details, number_on_roll=new["number_on_roll"]))


class ContactRoleChanged(_Lenient):
    """membership's `contact_role_changed` v1."""

    contact_id = fields.String(required=True)
    urn = fields.String(required=True)
    display_name = fields.String(required=True)
    role = fields.String(required=True)
    active = fields.Boolean(required=True)
    # no authority unless membership says so (an event without the field commits nobody's money)
    may_commit_spending = fields.Boolean(load_default=False)

    @post_load
    def _fact(self, data, **_):
        return upstream.ContactRole(**data)


class ContactErased(_Lenient):
    """membership's `contact_erased` v1."""

    contact_id = fields.String(required=True)

    @post_load
    def _fact(self, data, **_):
        return upstream.ContactErasure(**data)


class OfferingPublished(_Lenient):
    """catalogue's `offering_published` v1."""

    offering_code = fields.String(required=True)
    name = fields.String(required=True)
    service_area = fields.String(required=True)
    vat_treatment = fields.String(required=True)

    @post_load
    def _fact(self, data, **_):
        return upstream.Offering(**data)


class EditionPriced(_Lenient):
    """catalogue's `edition_priced` v1; scheduling reads per-delegate prices and included places."""

    offering_code = fields.String(required=True)
    edition_year = fields.Integer(required=True)
    pricing = fields.Dict(required=True)
    entitlements = fields.List(fields.Nested(_Entitlement), load_default=list)

    @post_load
    def _fact(self, data, **_):
        pricing = data["pricing"]
        return upstream.EditionPrice(
            offering_code=data["offering_code"], edition_year=data["edition_year"],
            model=pricing.get("model", "unknown"), subscriber_price_pence=pricing.get("subscriber_price_pence"),
            non_subscriber_price_pence=pricing.get("non_subscriber_price_pence"),
            entitlements=tuple(data["entitlements"]))


class _Component(_Lenient):
    offering_code = fields.String(required=True)
    service_area = fields.String(required=True)
    entitlements = fields.List(fields.Nested(_Entitlement), load_default=list)

    @post_load
    def _fact(self, data, **_):
        return upstream.Component(**{**data, "entitlements": tuple(data["entitlements"])})


class SubscriptionStarted(_Lenient):
    """catalogue's `subscription_started` v1. `components` (a bundle's included offerings) is read
    leniently: missing, null or empty means not a bundle."""

    subscription_id = fields.String(required=True)
    urn = fields.String(required=True)
    offering_code = fields.String(required=True)
    service_area = fields.String(required=True)
    period_start = fields.Date(required=True)
    period_end = fields.Date(required=True)
    entitlements = fields.List(fields.Nested(_Entitlement), load_default=list)
    continues_subscription_id = fields.String(load_default=None, allow_none=True)
    components = fields.List(fields.Nested(_Component), load_default=list, allow_none=True)
    quantity = fields.Integer(load_default=1)
    edition_year = fields.Integer(load_default=None, allow_none=True)

    @post_load
    def _fact(self, data, **_):
        return upstream.SLA(**{**data, "entitlements": tuple(data["entitlements"]),
                               "components": tuple(data["components"] or ())})


class SubscriptionRenewed(SubscriptionStarted):
    """catalogue's `subscription_renewed` v1 (every field of `subscription_started`)."""


class SubscriptionCancelled(_Lenient):
    """catalogue's `subscription_cancelled` v1: `effective_date` is the first day no longer covered."""

    subscription_id = fields.String(required=True)
    urn = fields.String(required=True)
    effective_date = fields.Date(required=True)

    @post_load
    def _fact(self, data, **_):
        return upstream.SLAEnding(**data)


class SubscriptionEnded(SubscriptionCancelled):
    """catalogue's `subscription_ended` v1: `effective_date` is the first day no longer covered."""
