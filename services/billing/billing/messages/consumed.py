"""Billing's own, lenient copies of the upstream events it reads (unknown fields excluded).

Each schema loads its event into a frozen value of `billing.domain.upstream` (`post_load`),
so nothing past this module reads an event's raw dict.
"""
from marshmallow import EXCLUDE, Schema, fields, post_load

from billing.domain import upstream


class _Lenient(Schema):
    class Meta:
        unknown = EXCLUDE


class _Mat(_Lenient):
    id = fields.String(required=True)
    name = fields.String(required=True)

    @post_load
    def _typed(self, data, **kwargs) -> upstream.Mat:
        return upstream.Mat(**data)


class MemberJoined(_Lenient):
    """membership's `member_joined` v1."""

    urn = fields.String(required=True)
    name = fields.String(required=True)
    is_academy = fields.Boolean(required=True)
    mat = fields.Nested(_Mat, allow_none=True, required=True)
    joined_on = fields.Date(load_default=None)
    # Where it is: membership publishes a postcode and local authority, no street address.
    postcode = fields.String(load_default=None, allow_none=True)
    local_authority = fields.String(load_default=None, allow_none=True)

    @post_load
    def _typed(self, data, **kwargs) -> upstream.Joining:
        return upstream.Joining(**data)


class _Census(_Lenient):
    date = fields.Date(required=True)
    number_on_roll = fields.Integer(required=True)

    @post_load
    def _typed(self, data, **kwargs) -> upstream.Census:
        return upstream.Census(**data)


class _Component(_Lenient):
    """One offering of a bundle (its entitlements are scheduling's business, not billing's)."""

    offering_code = fields.String(required=True)
    offering_name = fields.String(required=True)
    service_area = fields.String(required=True)
    vat_treatment = fields.String(required=True)
    annual_price_pence = fields.Integer(required=True, strict=True)

    @post_load
    def _typed(self, data, **kwargs) -> upstream.Component:
        return upstream.Component(**data)


class SubscriptionStarted(_Lenient):
    """catalogue's `subscription_started` v1."""

    typed = upstream.Subscription

    subscription_id = fields.String(required=True)
    urn = fields.String(required=True)
    school_name = fields.String(required=True)
    mat = fields.Nested(_Mat, allow_none=True, required=True)
    offering_code = fields.String(required=True)
    offering_name = fields.String(required=True)
    service_area = fields.String(required=True)
    vat_treatment = fields.String(required=True)
    period_start = fields.Date(required=True)
    period_end = fields.Date(required=True)
    quantity = fields.Integer(required=True)
    annual_price_pence = fields.Integer(required=True)
    census = fields.Nested(_Census, required=True)
    # Optional (docs/events.md): a renewal, or the predecessor's SLA moved at academy conversion.
    continues_subscription_id = fields.String(allow_none=True, load_default=None)
    renewal_of = fields.String(allow_none=True, load_default=None)
    # The school's purchase order (printed on its invoice lines), when it gave one.
    po_number = fields.String(allow_none=True, load_default=None)
    purchased_on = fields.Date(allow_none=True, load_default=None)
    payer_type = fields.String(allow_none=True, load_default=None)
    # A bundle's included offerings; empty, null or missing: not a bundle.
    components = fields.List(fields.Nested(_Component), allow_none=True, load_default=list)

    @post_load
    def _typed(self, data, **kwargs) -> upstream.Subscription:
        return self.typed(**{**data, "components": tuple(data.get("components") or ())})


class MemberLeft(_Lenient):
    """membership's `member_left` v1."""

    urn = fields.String(required=True)
    effective_date = fields.Date(required=True)
    reason = fields.String(load_default=None, allow_none=True)

    @post_load
    def _typed(self, data, **kwargs) -> upstream.Leaving:
        return upstream.Leaving(**data)


class MemberDetailsChanged(_Lenient):
    """membership's `member_details_changed` v1 (billing reads MAT, academy status and name)."""

    urn = fields.String(required=True)
    effective_date = fields.Date(required=True)
    changes = fields.Dict(required=True)
    name = fields.String(required=True)
    is_academy = fields.Boolean(required=True)
    mat = fields.Nested(_Mat, allow_none=True, required=True)
    postcode = fields.String(load_default=None, allow_none=True)
    local_authority = fields.String(load_default=None, allow_none=True)

    @post_load
    def _typed(self, data, **kwargs) -> upstream.DetailsChange:
        changes = data.pop("changes")
        new_values = {}
        for field in ("name", "is_academy", "mat"):
            change = changes.get(field)
            if isinstance(change, dict) and "new" in change:
                value = change["new"]
                new_values[field] = upstream.Mat(id=value["id"], name=value["name"]) if (
                    field == "mat" and isinstance(value, dict)) else value
        return upstream.DetailsChange(**data, changed=frozenset(changes), new_values=new_values)


class _Predecessor(_Lenient):
    urn = fields.String(required=True)
    name = fields.String(required=True)

    @post_load
    def _typed(self, data, **kwargs) -> upstream.School:
        return upstream.School(**data)


class _Successor(_Lenient):
    urn = fields.String(required=True)
    name = fields.String(required=True)
    postcode = fields.String(load_default=None, allow_none=True)
    local_authority = fields.String(load_default=None, allow_none=True)

    @post_load
    def _typed(self, data, **kwargs) -> upstream.School:
        return upstream.School(**data)


class SchoolConvertedToAcademy(_Lenient):
    """membership's `school_converted_to_academy` v1."""

    conversion_date = fields.Date(required=True)
    predecessor = fields.Nested(_Predecessor, required=True)
    successor = fields.Nested(_Successor, required=True)
    mat = fields.Nested(_Mat, required=True)

    @post_load
    def _typed(self, data, **kwargs) -> upstream.Conversion:
        return upstream.Conversion(**data)


class SubscriptionRenewed(SubscriptionStarted):
    """catalogue's `subscription_renewed` v1: every field of `subscription_started`, plus `renewal_of`."""

    typed = upstream.Renewal


class SubscriptionCancelled(_Lenient):
    """catalogue's `subscription_cancelled` v1 (of a renewal: effective its first day, the whole of it)."""

    subscription_id = fields.String(required=True)
    urn = fields.String(required=True)
    effective_date = fields.Date(required=True)
    reason = fields.String(load_default=None, allow_none=True)
    cancelled_on = fields.Date(load_default=None, allow_none=True)

    @post_load
    def _typed(self, data, **kwargs) -> upstream.Cancellation:
        decided_on = data.pop("cancelled_on", None)
        return upstream.Cancellation(**{**data, "reason": data.get("reason") or "cancelled",
                                        "decided_on": decided_on})


class SubscriptionEnded(_Lenient):
    """catalogue's `subscription_ended` v1."""

    subscription_id = fields.String(required=True)
    urn = fields.String(required=True)
    effective_date = fields.Date(required=True)
    reason = fields.String(load_default=None, allow_none=True)

    @post_load
    def _typed(self, data, **kwargs) -> upstream.Ending:
        return upstream.Ending(**{**data, "reason": data.get("reason") or "ended"})


class ContactRoleChanged(_Lenient):
    """membership's `contact_role_changed` v1: a person's role at a school (billing reads the business
    manager and head teacher, to address the school's invoices to)."""

    contact_id = fields.String(required=True)
    urn = fields.String(required=True)
    display_name = fields.String(required=True)
    email = fields.String(load_default=None, allow_none=True)
    role = fields.String(required=True)
    active = fields.Boolean(required=True)
    effective_date = fields.Date(required=True)

    @post_load
    def _typed(self, data, **kwargs) -> upstream.RoleChange:
        urn = data.pop("urn")
        return upstream.RoleChange(**data, organisation=f"school:{urn}")


class OrganisationContactRoleChanged(_Lenient):
    """membership's `organisation_contact_role_changed` v1: a person's role at a MAT, council or partner
    (billing reads a MAT's finance contact, to address its central invoices to)."""

    contact_id = fields.String(required=True)
    organisation_kind = fields.String(required=True)
    organisation_id = fields.String(required=True)
    display_name = fields.String(required=True)
    email = fields.String(load_default=None, allow_none=True)
    role = fields.String(required=True)
    active = fields.Boolean(required=True)
    effective_date = fields.Date(required=True)

    @post_load
    def _typed(self, data, **kwargs) -> upstream.RoleChange:
        organisation = f"{data.pop('organisation_kind')}:{data.pop('organisation_id')}"
        return upstream.RoleChange(**data, organisation=organisation)


class ContactErased(_Lenient):
    """membership's `contact_erased` v1: every copy of that person's data goes."""

    contact_id = fields.String(required=True)

    @post_load
    def _typed(self, data, **kwargs) -> upstream.Erasure:
        return upstream.Erasure(contact_id=data["contact_id"])


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

    @post_load
    def _typed(self, data, **kwargs) -> upstream.Attendance:
        return upstream.Attendance(**data)
