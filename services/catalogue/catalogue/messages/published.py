"""What the catalogue publishes: strict schemas, one per event type and version (docs/events.md).

- `offering_published`: an offering was added to the catalogue;
- `edition_priced`: an edition (one academic year) of an offering was priced, or put
  on / taken off sale; it carries the pricing terms and the entitlements, which
  scheduling and billing keep;
- `offering_withdrawn`: an offering is no longer sold from a date;
- `subscription_started`: a school bought an SLA, or an academy's SLA carries on its
  predecessor's at conversion (`continues_subscription_id`);
- `subscription_renewed`: the renewal round renewed an SLA for a new term;
- `subscription_cancelled`: a school cancelled an SLA (its renewal, or from a date);
- `subscription_ended`: an SLA ended because the school left or converted, the
  offering was withdrawn, or it expired without renewal.
"""
from marshmallow import RAISE, Schema, fields, validate

from shared import handover
from shared.envelope import PayloadSchemas
from shared.handover import with_handover

from catalogue.domain.model import END_REASONS, PHASES, SERVICE_AREAS, VAT_TREATMENTS
from catalogue.domain.pricing import PRICING_MODELS, SESSION_UNITS

DECIMAL_STRING = r"^-?\d+(\.\d+)?$"


class _Strict(Schema):
    class Meta:
        unknown = RAISE


class MatRef(_Strict):
    id = fields.String(required=True)
    name = fields.String(required=True)


class PriceStep(_Strict):
    label = fields.String(required=True)
    amount_pence = fields.String(required=True, validate=validate.Regexp(DECIMAL_STRING))


class Census(_Strict):
    date = fields.Date(required=True)
    number_on_roll = fields.Integer(required=True, strict=True, validate=validate.Range(min=0))


class EntitlementOut(_Strict):
    kind = fields.String(required=True, validate=validate.Regexp(r"^[a-z][a-z0-9_]*$"))
    quantity = fields.Integer(required=True, strict=True, validate=validate.Range(min=0))


class ComponentOut(_Strict):
    """One offering a bundle SLA includes: its cover (entitlements), its VAT treatment and its share of the
    bundle's annual price (the shares sum exactly to the bundle's `annual_price_pence`)."""

    offering_code = fields.String(required=True)
    offering_name = fields.String(required=True)
    service_area = fields.String(required=True, validate=validate.OneOf(SERVICE_AREAS))
    vat_treatment = fields.String(required=True, validate=validate.OneOf(VAT_TREATMENTS))
    entitlements = fields.List(fields.Nested(EntitlementOut), required=True)
    annual_price_pence = fields.Integer(required=True, strict=True, validate=validate.Range(min=0))


class Eligibility(_Strict):
    phases = fields.List(fields.String(validate=validate.OneOf(PHASES)), required=True)
    establishment_types = fields.List(fields.String(), required=True)


class Band(_Strict):
    up_to_pupils = fields.Integer(required=True, allow_none=True, strict=True, validate=validate.Range(min=0))
    price_pence = fields.Integer(required=True, strict=True, validate=validate.Range(min=0))


class Pricing(_Strict):
    """`model` and that model's own terms (amounts in integer pence, per-pupil rates as decimal strings)."""

    model = fields.String(required=True, validate=validate.OneOf(PRICING_MODELS))
    flat_fee_pence = fields.Integer(strict=True, validate=validate.Range(min=0))
    base_fee_pence = fields.Integer(strict=True, validate=validate.Range(min=0))
    rate_by_phase = fields.Dict(keys=fields.String(validate=validate.OneOf(PHASES)),
                                values=fields.String(validate=validate.Regexp(DECIMAL_STRING)))
    minimum_pence = fields.Integer(allow_none=True, strict=True, validate=validate.Range(min=0))
    maximum_pence = fields.Integer(allow_none=True, strict=True, validate=validate.Range(min=0))
    bands = fields.List(fields.Nested(Band))
    unit = fields.String(validate=validate.OneOf(SESSION_UNITS))
    unit_price_pence = fields.Integer(strict=True, validate=validate.Range(min=0))
    subscriber_price_pence = fields.Integer(strict=True, validate=validate.Range(min=0))
    non_subscriber_price_pence = fields.Integer(strict=True, validate=validate.Range(min=0))
    bundle_price_pence = fields.Integer(strict=True, validate=validate.Range(min=0))
    includes = fields.List(fields.String())


class OfferingPublishedV1(_Strict):
    """An offering was added to the catalogue, with its eligibility, capacity and VAT treatment."""

    offering_code = fields.String(required=True)
    name = fields.String(required=True)
    service_area = fields.String(required=True, validate=validate.OneOf(SERVICE_AREAS))
    provider = fields.String(required=True)
    description = fields.String(required=True)
    vat_treatment = fields.String(required=True, validate=validate.OneOf(VAT_TREATMENTS))
    eligibility = fields.Nested(Eligibility, required=True)
    capacity = fields.Integer(required=True, allow_none=True, strict=True, validate=validate.Range(min=1))


class EditionPricedV1(_Strict):
    """An edition (academic year) of an offering was priced, or put on or taken off sale; carries its terms and entitlements."""

    offering_code = fields.String(required=True)
    edition_year = fields.Integer(required=True, strict=True)
    pricing = fields.Nested(Pricing, required=True)
    entitlements = fields.List(fields.Nested(EntitlementOut), required=True)
    on_sale = fields.Boolean(required=True)


class OfferingWithdrawnV1(_Strict):
    """An offering is no longer sold from `effective_date`; its SLAs end then (`subscription_ended`, reason withdrawn)."""

    offering_code = fields.String(required=True)
    effective_date = fields.Date(required=True)


class SubscriptionStartedV1(_Strict):
    """A school bought an SLA, or an academy's SLA carries on its predecessor's at conversion; the price in it is frozen for the whole agreement."""

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
    entitlements = fields.List(fields.Nested(EntitlementOut), required=True)
    continues_subscription_id = fields.UUID(required=True, allow_none=True)
    # empty unless a bundle: then one per included offering, whose cover the school holds (consumers
    # written before it treat a missing `components` as empty)
    components = fields.List(fields.Nested(ComponentOut), required=True)


class SubscriptionRenewedV1(SubscriptionStartedV1):
    """The renewal round renewed an SLA for a new term: a new subscription_id, its own period and price, and the term it renews."""

    renewal_of = fields.UUID(required=True)


class SubscriptionCancelledV1(_Strict):
    """A school cancelled an SLA: its renewal (effective the day after it ends) or from a date (billing pro-rates)."""

    subscription_id = fields.UUID(required=True)
    urn = fields.String(required=True, validate=validate.Regexp(r"^\d{6}$"))
    cancelled_on = fields.Date(required=True)
    effective_date = fields.Date(required=True)
    reason = fields.String(required=True)


class SubscriptionEndedV1(_Strict):
    """An SLA stopped covering the school from `effective_date`: it left, converted, the offering was withdrawn, or the SLA expired unrenewed."""

    subscription_id = fields.UUID(required=True)
    urn = fields.String(required=True, validate=validate.Regexp(r"^\d{6}$"))
    effective_date = fields.Date(required=True)
    reason = fields.String(required=True, validate=validate.OneOf(END_REASONS))


PUBLISHED = with_handover(PayloadSchemas({
    ("offering_published", 1): OfferingPublishedV1(),
    ("edition_priced", 1): EditionPricedV1(),
    ("offering_withdrawn", 1): OfferingWithdrawnV1(),
    ("subscription_started", 1): SubscriptionStartedV1(),
    ("subscription_renewed", 1): SubscriptionRenewedV1(),
    ("subscription_cancelled", 1): SubscriptionCancelledV1(),
    ("subscription_ended", 1): SubscriptionEndedV1(),
}))

_STARTED_EXAMPLE = {
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
    "entitlements": [{"kind": "in_house_session", "quantity": 2}, {"kind": "induction_place", "quantity": 1}],
    "continues_subscription_id": None,
    "components": [],
}

EXAMPLES = {
    ("offering_published", 1): {
        "offering_code": "SI-CORE", "name": "School improvement core offer", "service_area": "school_improvement",
        "provider": "bucks-learning-trust", "description": "Reviews, improvement planning and inspection preparation.",
        "vat_treatment": "standard", "eligibility": {"phases": ["primary", "secondary"], "establishment_types": []},
        "capacity": None,
    },
    ("edition_priced", 1): {
        "offering_code": "SI-CORE", "edition_year": 2026,
        "pricing": {"model": "per_pupil", "base_fee_pence": 150000,
                    "rate_by_phase": {"primary": "825", "secondary": "610"},
                    "minimum_pence": 200000, "maximum_pence": 900000},
        "entitlements": [{"kind": "in_house_session", "quantity": 2}, {"kind": "induction_place", "quantity": 1}],
        "on_sale": True,
    },
    ("offering_withdrawn", 1): {"offering_code": "SI-CORE", "effective_date": "2027-04-01"},
    ("subscription_started", 1): _STARTED_EXAMPLE,
    ("subscription_renewed", 1): {
        **_STARTED_EXAMPLE, "subscription_id": "0d6c1a52-3f7e-4b8a-9c1d-2e3f4a5b6c7d", "edition_year": 2027,
        "period_start": "2027-04-01", "period_end": "2028-03-31", "annual_price_pence": 300657,
        "price_breakdown": [{"label": "base fee", "amount_pence": "154500"},
                            {"label": "172 pupils x 849.75p (primary)", "amount_pence": "146157.00"}],
        "census": {"date": "2026-10-01", "number_on_roll": 172}, "purchased_on": "2027-01-11",
        "continues_subscription_id": "6b0f3c1e-8a43-4a8e-9a55-0f6f0f1b2c3d",
        "renewal_of": "6b0f3c1e-8a43-4a8e-9a55-0f6f0f1b2c3d",
    },
    ("subscription_cancelled", 1): {
        "subscription_id": "6b0f3c1e-8a43-4a8e-9a55-0f6f0f1b2c3d", "urn": "110394", "cancelled_on": "2026-11-20",
        "effective_date": "2027-04-01", "reason": "budget cut",
    },
    ("subscription_ended", 1): {
        "subscription_id": "6b0f3c1e-8a43-4a8e-9a55-0f6f0f1b2c3d", "urn": "110394", "effective_date": "2027-01-01",
        "reason": "converted",
    },
}
EXAMPLES.update(handover.EXAMPLES)
