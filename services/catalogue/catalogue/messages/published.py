"""What the catalogue publishes: strict schemas, one per event type and version.

`subscription_started` v1 fires when a school's purchase of an SLA is
committed. It carries the school, its MAT, the payer type that set the period,
the edition, the period, the quantity, the price with every step of its
calculation, and the census figure used, so billing and scheduling act on it
without calling back.
"""
from marshmallow import RAISE, Schema, fields, validate

from shared.envelope import PayloadSchemas

from catalogue.domain.model import SERVICE_AREAS, VAT_TREATMENTS


class _Strict(Schema):
    class Meta:
        unknown = RAISE


class MatRef(_Strict):
    id = fields.String(required=True)
    name = fields.String(required=True)


class PriceStep(_Strict):
    label = fields.String(required=True)
    amount_pence = fields.String(required=True, validate=validate.Regexp(r"^-?\d+(\.\d+)?$"))


class Census(_Strict):
    date = fields.Date(required=True)
    number_on_roll = fields.Integer(required=True, strict=True, validate=validate.Range(min=0))


class SubscriptionStartedV1(_Strict):
    """A school bought an SLA; the price in it is frozen for the whole agreement."""

    subscription_id = fields.UUID(required=True)
    urn = fields.String(required=True, validate=validate.Regexp(r"^\d{6}$"))
    school_name = fields.String(required=True)
    is_academy = fields.Boolean(required=True)
    mat = fields.Nested(MatRef, required=True, allow_none=True)
    payer_type = fields.String(required=True, validate=validate.OneOf(("maintained", "academy")))
    offering_code = fields.String(required=True)
    offering_name = fields.String(required=True)
    service_area = fields.String(required=True, validate=validate.OneOf(SERVICE_AREAS))
    vat_treatment = fields.String(required=True, validate=validate.OneOf(VAT_TREATMENTS))
    edition_year = fields.Integer(required=True, strict=True)
    period_start = fields.Date(required=True)
    period_end = fields.Date(required=True)
    years = fields.Integer(required=True, strict=True, validate=validate.OneOf((1, 2, 3)))
    quantity = fields.Integer(required=True, strict=True, validate=validate.Range(min=1))
    annual_price_pence = fields.Integer(required=True, strict=True, validate=validate.Range(min=0))
    price_breakdown = fields.List(fields.Nested(PriceStep), required=True)
    census = fields.Nested(Census, required=True)
    po_number = fields.String(required=True, allow_none=True)
    purchased_on = fields.Date(required=True)


PUBLISHED = PayloadSchemas({("subscription_started", 1): SubscriptionStartedV1()})

EXAMPLES = {
    ("subscription_started", 1): {
        "subscription_id": "6b0f3c1e-8a43-4a8e-9a55-0f6f0f1b2c3d", "urn": "110394",
        "school_name": "Haddenham Community Infant School", "is_academy": False, "mat": None,
        "payer_type": "maintained", "offering_code": "SI-CORE", "offering_name": "School improvement core offer",
        "service_area": "school_improvement", "vat_treatment": "standard", "edition_year": 2026,
        "period_start": "2026-04-01", "period_end": "2027-03-31", "years": 1, "quantity": 1,
        "annual_price_pence": 291900,
        "price_breakdown": [{"label": "base fee", "amount_pence": "150000"},
                            {"label": "172 pupils x 825p (primary)", "amount_pence": "141900"}],
        "census": {"date": "2025-10-02", "number_on_roll": 172}, "po_number": "PO-4471",
        "purchased_on": "2026-03-02",
    },
}
