"""Read-only views: documents, statements, aged debt, the sustainability picture, exports.

Nothing here writes; every figure is integer pence derived from issued documents
and recorded payments (so it always agrees with the invoices themselves).
"""
from __future__ import annotations

import datetime as dt
import html
import io
import json
from collections import defaultdict

from shared.spreadsheet import SafeWriter

from billing.adapters import repository
from billing.domain import demand, invoicing, model
from billing.domain.periods import academic_year_label, academic_year_of, month_ends_of_academic_year


def _iso(value):
    return value.isoformat() if isinstance(value, (dt.date, dt.datetime)) else value


def document_view(session, number: str) -> dict | None:
    doc = repository.document(session, number=number)
    if doc is None:
        return None
    view = {k: _iso(v) for k, v in doc._mapping.items() if k not in ("operator", "created_at")}
    view["operator"] = json.loads(doc.operator)
    view["lines"] = [{k: _iso(v) for k, v in line._mapping.items() if k != "document_id"}
                     for line in repository.lines_of(session, doc.id)]
    if doc.kind == "invoice":
        paid, credited = repository.paid_and_credited(session, [doc.id]).get(doc.id, (0, 0))
        balance = invoicing.balance_pence(doc.gross_pence, paid, credited)
        view.update(paid_pence=paid, credited_pence=credited, balance_pence=balance,
                    status=invoicing.payment_status(doc.gross_pence, balance))
    else:
        credited = repository.document(session, document_id=doc.credits_document_id)
        view["credits_invoice_number"] = credited.number if credited else None
    return view


def document_list(session, *, payer_key=None, issued_from=None, issued_to=None, kind=None) -> list[dict]:
    docs = repository.invoices(session, payer_key=payer_key, issued_from=issued_from, issued_to=issued_to, kind=kind)
    sums = repository.paid_and_credited(session)
    out = []
    for d in docs:
        paid, credited = sums.get(d.id, (0, 0))
        balance = invoicing.balance_pence(d.gross_pence, paid, credited) if d.kind == "invoice" else 0
        out.append({"number": d.number, "kind": d.kind, "payer_kind": d.payer_kind, "payer_id": d.payer_id,
                    "payer_name": d.payer_name, "billing_period": d.billing_period, "issue_date": _iso(d.issue_date),
                    "due_date": _iso(d.due_date), "net_pence": d.net_pence, "vat_pence": d.vat_pence,
                    "gross_pence": d.gross_pence, "paid_pence": paid if d.kind == "invoice" else 0,
                    "balance_pence": balance})
    return out


def statement(session, payer_key: str, as_of: dt.date | None = None) -> dict:
    docs = repository.invoices(session, payer_key=payer_key, issued_to=as_of)
    numbers = {d.id: d.number for d in docs}
    entries = [{"date": d.issue_date, "kind": d.kind, "reference": d.number,
                "amount_pence": d.gross_pence if d.kind == "invoice" else -d.gross_pence,
                "against": numbers.get(d.credits_document_id)} for d in docs]
    entries += [{"date": p.received_on, "kind": "payment", "reference": p.reference or p.id,
                 "amount_pence": -p.amount_pence, "against": p.number}
                for p in repository.payments_of(session, payer_key=payer_key, received_to=as_of)]
    rows = invoicing.statement(entries)
    return {"payer_key": payer_key, "entries": [{k: _iso(v) for k, v in r.items()} for r in rows],
            "balance_pence": rows[-1]["balance_pence"] if rows else 0}


def _debt_facts(session) -> tuple[list[tuple], dict, dict]:
    """Every invoice as (id, issue date, due date, gross), what settled each and when, and each one's payer."""
    invoices, payers = [], {}
    for d in repository.invoices(session, kind="invoice"):
        invoices.append((d.id, d.issue_date, d.due_date, d.gross_pence))
        payers[d.id] = (d.payer_key, d.payer_name)
    return invoices, repository.settlements(session), payers


def aged_debt(session, as_of: dt.date) -> dict:
    """Aged debt on `as_of` as it stood then: invoices issued by then, less the payments received and the
    credit notes issued by then (a later payment or credit does not shrink a past debt)."""
    invoices, settled, payers = _debt_facts(session)
    by_payer = defaultdict(list)
    for invoice in invoices:
        by_payer[payers[invoice[0]]].append(invoice)
    out = []
    for (key, name), own in sorted(by_payer.items()):
        buckets = invoicing.aged_debt(invoicing.balances_on(own, settled, as_of), as_of)
        if buckets["total"]:
            out.append({"payer_key": key, "payer_name": name, **buckets})
    return {"as_of": as_of.isoformat(),
            "totals": invoicing.aged_debt(invoicing.balances_on(invoices, settled, as_of), as_of),
            "payers": out}


def _payer_type_of(session):
    """For SLAs stored before billing kept their payer type: academy if the school was one on the SLA's start."""
    def payer_type(urn: str, day: dt.date) -> str:
        standing = model.affiliation_on(repository.affiliations(session, urn), day)
        return "academy" if standing is not None and standing.is_academy else "maintained"
    return payer_type


def sustainability(session, as_of: dt.date, known_by: dt.date | None = None) -> dict:
    """The board's picture on `as_of`, from what was known that day: revenue by academic year and service area
    (net of credit notes issued by then), paying members, members, buy-back (by the catalogue's rule, through
    lineage: SLAs bought by then), aged debt, and the debt trend (aged debt at each month end of the academic
    year of `as_of`, up to it, each as it stood that day).

    `known_by` (the metrics' gauges: `dt.date.max`, everything in the books) counts records dated up to it
    instead, with debt still aged on `as_of`: an invoice prepared with a later issue date is in the books."""
    known_by = known_by or as_of
    revenue: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    paying: dict[str, set] = defaultdict(set)
    for line in repository.invoiced_lines(session, issued_to=known_by):
        # A charge counts in the academic year its cover ends in: an April-March SLA is that
        # academic year's revenue, as is a September-August one.
        year = academic_year_label(academic_year_of(line.period_end))
        amount = line.net_pence if line.kind == "invoice" else -line.net_pence
        revenue[year][line.service_area] += amount
        if line.kind == "invoice" and line.net_pence > 0:
            paying[year].add(line.urn)
    facts = demand.holdings_facts(repository.holdings(session, known_by, _payer_type_of(session)),
                                  repository.successors(session))
    begun = demand.current_year(as_of)
    buy_back = {academic_year_label(r.year): {"bought_last_year": r.eligible, "bought_again": r.renewing,
                                              "rate": r.rate}
                for r in demand.buy_back_overall(facts, begun)}
    by_area = [{"service_area": r.service_area, "year": r.year, "eligible": r.eligible, "renewing": r.renewing,
                "buy_back_rate": r.rate} for r in demand.buy_back(facts, begun)]
    invoices, settled, _ = _debt_facts(session)
    debt = invoicing.aged_debt(invoicing.balances_on(invoices, settled, known_by), as_of)
    year = academic_year_of(as_of)
    trend = invoicing.debt_trend(invoices, settled, month_ends_of_academic_year(year, as_of))
    return {
        "as_of": as_of.isoformat(),
        "revenue_pence": {year: dict(sorted(areas.items())) for year, areas in sorted(revenue.items())},
        "revenue_total_pence": {year: sum(areas.values()) for year, areas in sorted(revenue.items())},
        "paying_members": {year: len(urns) for year, urns in sorted(paying.items())},
        "members": repository.members_on(session, as_of),
        "buy_back": buy_back,
        "buy_back_by_service_area": by_area,
        "debt_pence": debt,
        "debt_trend": {"academic_year": academic_year_label(year),
                       "month_ends": [{**point, "as_of": point["as_of"].isoformat()} for point in trend]},
    }


# -- exports --------------------------------------------------------------------------------------
CSV_COLUMNS = ("number", "kind", "issue_date", "tax_point", "due_date", "payer_kind", "payer_id", "payer_name",
               "customer_address", "contact_name", "contact_email", "supplier_legal_name", "supplier_address",
               "supplier_vat_number", "line_no", "urn", "offering_code", "description", "service_area",
               "period_start", "period_end", "quantity", "unit_price_pence", "census_date", "number_on_roll",
               "po_number", "vat_code", "net_pence", "vat_pence", "gross_pence")


def _supplier(document) -> dict:
    """The operator as printed on a document (its identity was copied onto it when issued)."""
    op = json.loads(document.operator)
    return {"supplier_legal_name": op.get("legal_name"), "supplier_address": op.get("address"),
            "supplier_vat_number": op.get("vat_number")}


def invoices_csv(session, issued_from=None, issued_to=None) -> str:
    """One row per document line, with everything the VAT invoice shows: supplier, customer and its address,
    contact, tax point, purchase order, VAT code and amounts."""
    out = io.StringIO()
    writer = SafeWriter(out, lineterminator="\n")  # cells neutralised: see shared.spreadsheet
    writer.writerow(CSV_COLUMNS)
    documents = repository.invoices(session, issued_from=issued_from, issued_to=issued_to)
    lines = repository.lines_by_document(session, [d.id for d in documents])
    for d in documents:
        supplier = _supplier(d)
        for line in lines[d.id]:
            values = {**{k: _iso(v) for k, v in d._mapping.items()}, **supplier,
                      **{k: _iso(v) for k, v in line._mapping.items()}}
            writer.writerow([values.get(c) if values.get(c) is not None else "" for c in CSV_COLUMNS])
    return out.getvalue()


def journal_csv(session, issued_from=None, issued_to=None) -> str:
    """Double-entry journal for the operator's finance system: invoices debit debtors and credit revenue
    (per service area) and VAT; credit notes reverse that; payments debit bank and credit debtors."""
    out = io.StringIO()
    writer = SafeWriter(out, lineterminator="\n")  # cells neutralised: see shared.spreadsheet
    writer.writerow(("date", "reference", "account", "debit_pence", "credit_pence", "payer_id", "description"))
    documents = repository.invoices(session, issued_from=issued_from, issued_to=issued_to)
    lines = repository.lines_by_document(session, [d.id for d in documents])
    for d in documents:
        sign = 1 if d.kind == "invoice" else -1
        rows = [("1100 Debtors", sign * d.gross_pence)]
        by_area = defaultdict(int)
        for line in lines[d.id]:
            by_area[line.service_area] += line.net_pence
        rows += [(f"4000 Revenue: {area}", -sign * net) for area, net in sorted(by_area.items())]
        if d.vat_pence:
            rows.append(("2200 VAT output", -sign * d.vat_pence))
        for account, amount in rows:
            writer.writerow((_iso(d.issue_date), d.number, account, max(amount, 0), max(-amount, 0), d.payer_id,
                             f"{d.kind} {d.number}"))
    for p in repository.payments_of(session, received_from=issued_from, received_to=issued_to):
        writer.writerow((_iso(p.received_on), p.number, "1200 Bank", p.amount_pence, 0, p.payer_key.split(":", 1)[1],
                         f"payment {p.reference or p.id}"))
        writer.writerow((_iso(p.received_on), p.number, "1100 Debtors", 0, p.amount_pence,
                         p.payer_key.split(":", 1)[1], f"payment {p.reference or p.id}"))
    return out.getvalue()


def _money(pence: int) -> str:
    sign = "-" if pence < 0 else ""
    pence = abs(pence)
    return f"{sign}£{pence // 100:,}.{pence % 100:02d}"


def document_html(view: dict) -> str:
    """A printable UK VAT invoice or credit note: the supplier's name, address and VAT registration number;
    the customer's name and address and the person it is for; number, issue date and tax point; each line
    with its purchase order, VAT code and amounts; totals; where to pay."""
    e = html.escape
    op = view["operator"]
    bank = op.get("bank_details", {})
    title = "Invoice" if view["kind"] == "invoice" else "Credit note"
    rows = "".join(
        f"<tr><td>{e(l['description'])}<br><small>{e(l['offering_code'])} · URN {e(l['urn'])} · "
        f"{e(l['period_start'])} to {e(l['period_end'])}"
        + (f" · census {e(str(l['census_date']))}: {l['number_on_roll']} pupils" if l.get("census_date") else "")
        + (f" · your order {e(l['po_number'])}" if l.get("po_number") else "")
        + f"</small></td><td>{l['quantity']}</td><td>{_money(l['unit_price_pence'])}</td><td>{e(l['vat_code'])}</td>"
          f"<td>{_money(l['net_pence'])}</td><td>{_money(l['vat_pence'])}</td><td>{_money(l['gross_pence'])}</td></tr>"
        for l in view["lines"])
    orders = sorted({l["po_number"] for l in view["lines"] if l.get("po_number")})
    reference = (f"<p>Credits invoice {e(view.get('credits_invoice_number') or '')}: {e(view.get('reason') or '')}</p>"
                 if view["kind"] == "credit_note" else f"<p>Due date: {e(view['due_date'])}</p>")
    address = "".join(f"<br>{e(line)}" for line in (view.get("customer_address") or "").splitlines())
    contact = view.get("contact_name")
    attention = (f"<p>For the attention of {e(contact)}"
                 + (f" ({e(view['contact_email'])})" if view.get("contact_email") else "") + "</p>") if contact else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title} {e(view['number'])}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse;width:100%}}
td,th{{border-bottom:1px solid #ccc;padding:4px;text-align:left}}@media print{{body{{margin:0}}}}</style></head>
<body>
<header><h1>{title} {e(view['number'])}</h1>
<p><strong>{e(op['legal_name'])}</strong><br>{e(op['address'])}<br>VAT registration number: {e(op['vat_number'])}</p></header>
<section><h2>To</h2><p><strong>{e(view['payer_name'])}</strong>{address}<br><small>{e(view['payer_kind'])} {e(view['payer_id'])}</small></p>
{attention}<p>Issue date: {e(view['issue_date'])} · Tax point: {e(view.get('tax_point') or view['issue_date'])}{' · Billing period: ' + e(view['billing_period']) if view.get('billing_period') else ''}</p>
{'<p>Your order number' + ('s' if len(orders) > 1 else '') + ': ' + e(', '.join(orders)) + '</p>' if orders else ''}
{reference}</section>
<table><thead><tr><th>Description</th><th>Qty</th><th>Unit price</th><th>VAT code</th><th>Net</th><th>VAT</th><th>Gross</th></tr></thead>
<tbody>{rows}</tbody>
<tfoot><tr><th colspan="4">Totals</th><th>{_money(view['net_pence'])}</th><th>{_money(view['vat_pence'])}</th>
<th>{_money(view['gross_pence'])}</th></tr></tfoot></table>
<footer><p>Pay to {e(bank.get('account_name', ''))}, sort code {e(bank.get('sort_code', ''))}, account
{e(bank.get('account_number', ''))}, quoting {e(view['number'])}. Payment terms: {op['payment_terms_days']} days.</p>
<p>VAT codes: S standard rate 20%, Z zero rated, E exempt.</p></footer>
</body></html>
"""
