"""What billing publishes: strict schemas, one per event type and version.

- `charge_recorded` v1: a charge is committed against its payer (for an unknown
  school: when membership's event makes the payer known; again, same `charge_id`, when
  news about the school's standing on the charge's date moves it before it is invoiced).
- `invoice_issued` v1: a billing run (or a re-bill) issued an invoice.
- `credit_note_issued` v1: a credit note referencing an invoice was issued.
- `payment_recorded` v1: a payment was recorded against an invoice.
- `invoice_overdue` v1: an invoice was found unpaid after its due date.
All money is integer pence.
"""
from marshmallow import RAISE, Schema, fields, validate

from shared import handover
from shared.envelope import PayloadSchemas
from shared.handover import with_handover


class _Strict(Schema):
    class Meta:
        unknown = RAISE


class PayerRef(_Strict):
    kind = fields.String(required=True, validate=validate.OneOf(("school", "mat")))
    id = fields.String(required=True)
    name = fields.String(required=True)


class ChargeRecordedV1(_Strict):
    """A charge for a school's SLA was recorded against its payer, not yet invoiced. Published again, with
    the same `charge_id`, if later news about the school's standing on the charge's date moves it to
    another payer before it is invoiced; the later one (`occurred_at`) supersedes the earlier."""

    charge_id = fields.UUID(required=True)
    subscription_id = fields.String(required=True, allow_none=True)
    urn = fields.String(required=True, validate=validate.Regexp(r"^\d{6}$"))
    payer = fields.Nested(PayerRef, required=True)
    source = fields.String(validate=validate.OneOf(("subscription", "attendance", "correction")))
    attendance_id = fields.String(allow_none=True)
    offering_code = fields.String(required=True)
    service_area = fields.String(required=True)
    period_start = fields.Date(required=True)
    period_end = fields.Date(required=True)
    amount_pence = fields.Integer(required=True, strict=True, validate=validate.Range(min=0))
    vat_treatment = fields.String(required=True, validate=validate.OneOf(("standard", "zero", "exempt")))
    census_date = fields.Date(required=True, allow_none=True)
    number_on_roll = fields.Integer(required=True, strict=True, allow_none=True)


class OperatorRef(_Strict):
    name = fields.String(required=True)
    legal_name = fields.String(required=True)
    vat_number = fields.String(required=True)


_PENCE = dict(required=True, strict=True)


class InvoiceIssuedV1(_Strict):
    """An invoice was issued to a payer: its number (gap-free per operator), dates and totals."""

    invoice_id = fields.UUID(required=True)
    invoice_number = fields.String(required=True)
    operator = fields.Nested(OperatorRef, required=True)
    payer = fields.Nested(PayerRef, required=True)
    billing_period = fields.String(required=True, allow_none=True)
    issue_date = fields.Date(required=True)
    due_date = fields.Date(required=True)
    line_count = fields.Integer(required=True, strict=True, validate=validate.Range(min=1))
    net_pence = fields.Integer(**_PENCE)
    vat_pence = fields.Integer(**_PENCE)
    gross_pence = fields.Integer(**_PENCE)
    currency = fields.String(required=True, validate=validate.Equal("GBP"))


class CreditNoteIssuedV1(_Strict):
    """A credit note was issued to a payer against one of its invoices (cancellation, conversion, correction)."""

    credit_note_id = fields.UUID(required=True)
    credit_note_number = fields.String(required=True)
    invoice_number = fields.String(required=True)
    operator = fields.Nested(OperatorRef, required=True)
    payer = fields.Nested(PayerRef, required=True)
    reason = fields.String(required=True)
    issue_date = fields.Date(required=True)
    net_pence = fields.Integer(**_PENCE, validate=validate.Range(min=0))
    vat_pence = fields.Integer(**_PENCE, validate=validate.Range(min=0))
    gross_pence = fields.Integer(**_PENCE, validate=validate.Range(min=0))
    currency = fields.String(required=True, validate=validate.Equal("GBP"))


class PaymentRecordedV1(_Strict):
    """A payment was recorded against an invoice; the invoice's balance after it (negative when overpaid)."""

    payment_id = fields.UUID(required=True)
    invoice_number = fields.String(required=True)
    payer = fields.Nested(PayerRef, required=True)
    amount_pence = fields.Integer(**_PENCE, validate=validate.Range(min=1))
    currency = fields.String(required=True, validate=validate.Equal("GBP"))
    received_on = fields.Date(required=True)
    reference = fields.String(required=True, allow_none=True)
    balance_pence = fields.Integer(**_PENCE)
    status = fields.String(required=True, validate=validate.OneOf(("part_paid", "paid", "overpaid")))


class InvoiceOverdueV1(_Strict):
    """An invoice still owed money after its due date, as found by the overdue check of `as_of`."""

    invoice_number = fields.String(required=True)
    payer = fields.Nested(PayerRef, required=True)
    due_date = fields.Date(required=True)
    as_of = fields.Date(required=True)
    days_overdue = fields.Integer(required=True, strict=True, validate=validate.Range(min=1))
    balance_pence = fields.Integer(**_PENCE, validate=validate.Range(min=1))


PUBLISHED = with_handover(PayloadSchemas({
    ("charge_recorded", 1): ChargeRecordedV1(),
    ("invoice_issued", 1): InvoiceIssuedV1(),
    ("credit_note_issued", 1): CreditNoteIssuedV1(),
    ("payment_recorded", 1): PaymentRecordedV1(),
    ("invoice_overdue", 1): InvoiceOverdueV1(),
}))
_OPERATOR = {"name": "bucks-learning-trust", "legal_name": "Bucks Learning Trust", "vat_number": "GB123456789"}
_PAYER = {"kind": "school", "id": "110394", "name": "Haddenham Community Infant School"}

EXAMPLES = {
    ("charge_recorded", 1): {
        "charge_id": "0d5cf1f4-6a9e-4b8e-8a0e-5f0c9a1e2b3c", "subscription_id": "6b0f3c1e-8a43-4a8e-9a55-0f6f0f1b2c3d",
        "urn": "110394", "payer": {"kind": "school", "id": "110394", "name": "Haddenham Community Infant School"},
        "offering_code": "SI-CORE", "service_area": "school_improvement", "period_start": "2026-04-01",
        "period_end": "2027-03-31", "amount_pence": 291900, "vat_treatment": "standard",
        "census_date": "2025-10-02", "number_on_roll": 172,
    },
    ("invoice_issued", 1): {
        "invoice_id": "1f3b7c2a-4d5e-4f60-8a71-92b3c4d5e6f7", "invoice_number": "BLT-000001", "operator": _OPERATOR,
        "payer": _PAYER, "billing_period": "2026/27", "issue_date": "2026-09-01", "due_date": "2026-10-01",
        "line_count": 1, "net_pence": 291900, "vat_pence": 58380, "gross_pence": 350280, "currency": "GBP",
    },
    ("credit_note_issued", 1): {
        "credit_note_id": "2a4c6e80-1b3d-4f5a-8c7e-9d0f1a2b3c4d", "credit_note_number": "BLT-CN000001",
        "invoice_number": "BLT-000001", "operator": _OPERATOR, "payer": _PAYER, "reason": "cancelled",
        "issue_date": "2027-01-04", "net_pence": 71971, "vat_pence": 14394, "gross_pence": 86365, "currency": "GBP",
    },
    ("payment_recorded", 1): {
        "payment_id": "3b5d7f91-2c4e-4a6b-9d8f-0e1a2b3c4d5e", "invoice_number": "BLT-000001", "payer": _PAYER,
        "amount_pence": 200000, "currency": "GBP", "received_on": "2026-09-20", "reference": "BACS 4471",
        "balance_pence": 150280, "status": "part_paid",
    },
    ("invoice_overdue", 1): {
        "invoice_number": "BLT-000001", "payer": _PAYER, "due_date": "2026-10-01", "as_of": "2026-11-02",
        "days_overdue": 32, "balance_pence": 150280,
    },
}
EXAMPLES.update(handover.EXAMPLES)
