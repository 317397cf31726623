"""What billing publishes: strict schemas, one per event type and version.

`charge_recorded` v1 fires when a charge is committed: who pays, for what
period, how much (integer pence) and the census figure behind the price.
"""
from marshmallow import RAISE, Schema, fields, validate

from shared.envelope import PayloadSchemas


class _Strict(Schema):
    class Meta:
        unknown = RAISE


class PayerRef(_Strict):
    kind = fields.String(required=True, validate=validate.OneOf(("school", "mat")))
    id = fields.String(required=True)
    name = fields.String(required=True)


class ChargeRecordedV1(_Strict):
    """A charge for a school's SLA was recorded against its payer, not yet invoiced."""

    charge_id = fields.UUID(required=True)
    subscription_id = fields.String(required=True)
    urn = fields.String(required=True, validate=validate.Regexp(r"^\d{6}$"))
    payer = fields.Nested(PayerRef, required=True)
    offering_code = fields.String(required=True)
    service_area = fields.String(required=True)
    period_start = fields.Date(required=True)
    period_end = fields.Date(required=True)
    amount_pence = fields.Integer(required=True, strict=True, validate=validate.Range(min=0))
    vat_treatment = fields.String(required=True, validate=validate.OneOf(("standard", "zero", "exempt")))
    census_date = fields.Date(required=True)
    number_on_roll = fields.Integer(required=True, strict=True)


PUBLISHED = PayloadSchemas({("charge_recorded", 1): ChargeRecordedV1()})

EXAMPLES = {
    ("charge_recorded", 1): {
        "charge_id": "0d5cf1f4-6a9e-4b8e-8a0e-5f0c9a1e2b3c", "subscription_id": "6b0f3c1e-8a43-4a8e-9a55-0f6f0f1b2c3d",
        "urn": "110394", "payer": {"kind": "school", "id": "110394", "name": "Haddenham Community Infant School"},
        "offering_code": "SI-CORE", "service_area": "school_improvement", "period_start": "2026-04-01",
        "period_end": "2027-03-31", "amount_pence": 291900, "vat_treatment": "standard",
        "census_date": "2025-10-02", "number_on_roll": 172,
    },
}
