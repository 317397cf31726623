"""Invoices, credit notes, balances and aged debt. Pure Python, no I/O.

- A line's net is its charge's amount (already rounded once); its VAT is
  rounded once, half up; its gross is net + VAT. Totals are sums of lines.
- A payer's uninvoiced charges go on one invoice; a credit for a charge that
  is not invoiced yet is a negative line on that same invoice; a credit for an
  invoiced charge goes on a credit note that references the charge's invoice.
- A bundle's charge is one line per included offering (`lines_for`): the charge's
  amount split in proportion to the components' prices, so the lines sum exactly to
  it, each with its own VAT treatment and VAT rounded once on that line.
- Numbers are gap-free per operator and document kind: `<prefix><000001>` for
  invoices, `<prefix>CN<000001>` for credit notes.
- Debt on a date counts only what was known that day: invoices issued by then, less
  the payments received and credit notes issued by then (`balances_on`).
"""
from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Iterable, Sequence

from billing.domain.money import VAT_CODES, allocate, vat_pence

AGE_BUCKETS = ("current", "1_30", "31_60", "61_90", "over_90")


@dataclasses.dataclass(frozen=True)
class Operator:
    """Who issues the documents; printed on every invoice."""

    name: str
    legal_name: str
    address: str
    vat_number: str
    bank_details: dict
    invoice_prefix: str
    payment_terms_days: int


@dataclasses.dataclass(slots=True)  # not frozen: a national run builds hundreds of thousands
class Line:
    charge_id: str
    urn: str
    offering_code: str
    description: str
    service_area: str
    period_start: dt.date
    period_end: dt.date
    quantity: int
    unit_price_pence: int
    census_date: dt.date | None
    number_on_roll: int | None
    vat_treatment: str
    net_pence: int
    vat_pence: int
    po_number: str | None = None

    @property
    def gross_pence(self) -> int:
        return self.net_pence + self.vat_pence

    @property
    def vat_code(self) -> str:
        return VAT_CODES[self.vat_treatment]


def line_for(charge, sign: int = 1) -> Line:
    """The invoice line of a charge (or, with sign -1, of a credit netted on the same invoice).

    `charge` is a `Charge` or anything with the same attributes (a stored row)."""
    net = sign * charge.amount_pence
    vat = vat_pence(abs(net), charge.vat_treatment) * sign
    # Positional: a national run builds hundreds of thousands of lines, and keywords cost a third more.
    return Line(charge.id, charge.urn, charge.offering_code, charge.description or charge.offering_name,
                charge.service_area, charge.period_start, charge.period_end, charge.quantity,
                charge.unit_price_pence, charge.census_date, charge.number_on_roll, charge.vat_treatment,
                net, vat, charge.po_number)


def lines_for(charge, sign: int = 1) -> list[Line]:
    """The invoice lines of a charge: one (`line_for`), or for a bundle one per component.

    A bundle's lines split the charge's amount in proportion to the components' annual prices
    (largest remainder, so they sum exactly to the charge) and each carries its component's
    offering, service area and VAT treatment, its VAT rounded once on that line."""
    components = charge.components
    if not components:
        return [line_for(charge, sign)]
    parts = allocate(charge.amount_pence, [c.annual_price_pence for c in components])
    description = charge.description or charge.offering_name
    lines = []
    for component, part in zip(components, parts):
        net = sign * part
        vat = vat_pence(part, component.vat_treatment) * sign
        lines.append(Line(charge.id, charge.urn, component.offering_code,
                          f"{description}: {component.offering_name}", component.service_area,
                          charge.period_start, charge.period_end, 1, component.annual_price_pence,
                          charge.census_date, charge.number_on_roll, component.vat_treatment, net, vat,
                          charge.po_number))
    return lines


@dataclasses.dataclass(frozen=True)
class Totals:
    net_pence: int
    vat_pence: int
    gross_pence: int


def totals(lines: Iterable[Line]) -> Totals:
    net = vat = 0
    for line in lines:
        net += line.net_pence
        vat += line.vat_pence
    return Totals(net, vat, net + vat)


def document_number(prefix: str, kind: str, number: int) -> str:
    return f"{prefix}{'CN' if kind == 'credit_note' else ''}{number:06d}"


def due_date(issue_date: dt.date, payment_terms_days: int) -> dt.date:
    return issue_date + dt.timedelta(days=payment_terms_days)


def age_bucket(due: dt.date, as_of: dt.date) -> str:
    """How late a balance is on `as_of`: not yet due, or days past the due date in 30-day bands."""
    late = (as_of - due).days
    if late <= 0:
        return "current"
    if late <= 30:
        return "1_30"
    if late <= 60:
        return "31_60"
    if late <= 90:
        return "61_90"
    return "over_90"


def aged_debt(open_items: Iterable[tuple[dt.date, int]], as_of: dt.date) -> dict[str, int]:
    """Sum of outstanding balances (due date, pence) by age bucket; credit balances are not debt."""
    buckets = {bucket: 0 for bucket in AGE_BUCKETS}
    for due, balance in open_items:
        if balance > 0:
            buckets[age_bucket(due, as_of)] += balance
    buckets["total"] = sum(buckets[b] for b in AGE_BUCKETS)
    return buckets


def balances_on(invoices: Iterable[tuple[str, dt.date, dt.date, int]],
                settlements: dict[str, Sequence[tuple[dt.date, int]]], as_of: dt.date) -> list[tuple[dt.date, int]]:
    """(due date, balance) on `as_of` of each invoice (id, issue date, due date, gross) issued by then:
    its gross less the settlements (date, pence: payments received, credit notes issued) dated by then.
    What happened after `as_of` was not known on it, so it is not counted."""
    found = []
    for invoice_id, issued, due, gross in invoices:
        if issued <= as_of:
            settled = sum(amount for day, amount in settlements.get(invoice_id, ()) if day <= as_of)
            found.append((due, gross - settled))
    return found


def debt_trend(invoices: Sequence[tuple[str, dt.date, dt.date, int]],
               settlements: dict[str, Sequence[tuple[dt.date, int]]], days: Iterable[dt.date]) -> list[dict]:
    """Aged debt (`aged_debt`) on each of `days`, each counting only what was known that day."""
    return [{"as_of": day, **aged_debt(balances_on(invoices, settlements, day), day)} for day in days]


def balance_pence(gross_pence: int, paid_pence: int, credited_pence: int) -> int:
    """What an invoice still owes: its gross less payments and credit notes against it (negative: in credit)."""
    return gross_pence - paid_pence - credited_pence


def is_overdue(due: dt.date, balance_pence: int, as_of: dt.date) -> bool:
    return balance_pence > 0 and as_of > due


def payment_status(gross_pence: int, balance_pence: int) -> str:
    if balance_pence <= 0 and gross_pence > 0:
        return "overpaid" if balance_pence < 0 else "paid"
    if balance_pence < gross_pence:
        return "part_paid"
    return "unpaid"


def statement(entries: Sequence[dict]) -> list[dict]:
    """Entries (date, kind, reference, amount_pence signed: + owed, - paid/credited) with a running balance."""
    running = 0
    out = []
    order = {"invoice": 0, "credit_note": 1, "payment": 2}
    for entry in sorted(entries, key=lambda e: (e["date"], order.get(e["kind"], 3), e["reference"])):
        running += entry["amount_pence"]
        out.append({**entry, "balance_pence": running})
    return out
