"""Read-only views: documents, statements, aged debt, the sustainability picture, exports.

Nothing here writes; every figure is integer pence derived from issued documents
and recorded payments (so it always agrees with the invoices themselves).
"""
from __future__ import annotations

import csv
import datetime as dt
import html
import io
import json
from collections import defaultdict

from sqlalchemy import func, select

from billing.adapters import repository
from billing.adapters.tables import charges, members
from billing.domain import invoicing
from billing.domain.periods import academic_year_label, academic_year_of


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


def open_items(session) -> list[tuple]:
    """(invoice row, balance) for every invoice."""
    sums = repository.paid_and_credited(session)
    return [(d, invoicing.balance_pence(d.gross_pence, *sums.get(d.id, (0, 0))))
            for d in repository.invoices(session, kind="invoice")]


def aged_debt(session, as_of: dt.date) -> dict:
    items = [(d, b) for d, b in open_items(session) if d.issue_date <= as_of]
    by_payer = defaultdict(list)
    for d, balance in items:
        by_payer[(d.payer_key, d.payer_name)].append((d.due_date, balance))
    payers = []
    for (key, name), rows in sorted(by_payer.items()):
        buckets = invoicing.aged_debt(rows, as_of)
        if buckets["total"]:
            payers.append({"payer_key": key, "payer_name": name, **buckets})
    return {"as_of": as_of.isoformat(), "totals": invoicing.aged_debt([(d.due_date, b) for d, b in items], as_of),
            "payers": payers}


def sustainability(session, as_of: dt.date) -> dict:
    """Revenue by service area and academic year (net of credit notes), buy-back rate, debt, paying members."""
    revenue: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    paying: dict[str, set] = defaultdict(set)
    for line in repository.invoiced_lines(session):
        # A charge counts in the academic year its cover ends in: an April-March SLA is that
        # academic year's revenue, as is a September-August one.
        year = academic_year_label(academic_year_of(line.period_end))
        amount = line.net_pence if line.kind == "invoice" else -line.net_pence
        revenue[year][line.service_area] += amount
        if line.kind == "invoice" and line.net_pence > 0:
            paying[year].add(line.urn)
    buyers: dict[int, set] = defaultdict(set)
    for row in session.execute(select(charges.c.urn, charges.c.period_end).where(
            charges.c.kind == "charge", charges.c.source == "subscription")):
        buyers[academic_year_of(row.period_end)].add(row.urn)
    buy_back = {}
    for year in sorted(buyers):
        before = buyers.get(year - 1)
        if before:
            buy_back[academic_year_label(year)] = {
                "bought_last_year": len(before), "bought_again": len(before & buyers[year]),
                "rate": round(len(before & buyers[year]) / len(before), 4)}
    debt = aged_debt(session, as_of)["totals"]
    members_now = session.execute(select(func.count()).select_from(members).where(
        (members.c.left_on.is_(None)) | (members.c.left_on > as_of))).scalar_one()
    return {
        "as_of": as_of.isoformat(),
        "revenue_pence": {year: dict(sorted(areas.items())) for year, areas in sorted(revenue.items())},
        "revenue_total_pence": {year: sum(areas.values()) for year, areas in sorted(revenue.items())},
        "paying_members": {year: len(urns) for year, urns in sorted(paying.items())},
        "members": members_now,
        "buy_back": buy_back,
        "debt_pence": debt,
    }


# -- exports --------------------------------------------------------------------------------------
CSV_COLUMNS = ("number", "kind", "issue_date", "due_date", "payer_kind", "payer_id", "payer_name", "line_no", "urn",
               "offering_code", "description", "service_area", "period_start", "period_end", "quantity",
               "unit_price_pence", "census_date", "number_on_roll", "vat_code", "net_pence", "vat_pence",
               "gross_pence")


def invoices_csv(session, issued_from=None, issued_to=None) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    documents = repository.invoices(session, issued_from=issued_from, issued_to=issued_to)
    lines = repository.lines_by_document(session, [d.id for d in documents])
    for d in documents:
        for line in lines[d.id]:
            values = {**{k: _iso(v) for k, v in d._mapping.items()}, **{k: _iso(v) for k, v in line._mapping.items()}}
            writer.writerow([values.get(c) if values.get(c) is not None else "" for c in CSV_COLUMNS])
    return out.getvalue()


def journal_csv(session, issued_from=None, issued_to=None) -> str:
    """Double-entry journal for the operator's finance system: invoices debit debtors and credit revenue
    (per service area) and VAT; credit notes reverse that; payments debit bank and credit debtors."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
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
    """A printable invoice or credit note: the operator's identity, the payer, lines, VAT and totals."""
    e = html.escape
    op = view["operator"]
    bank = op.get("bank_details", {})
    title = "Invoice" if view["kind"] == "invoice" else "Credit note"
    rows = "".join(
        f"<tr><td>{e(l['description'])}<br><small>{e(l['offering_code'])} · URN {e(l['urn'])} · "
        f"{e(l['period_start'])} to {e(l['period_end'])}"
        + (f" · census {e(str(l['census_date']))}: {l['number_on_roll']} pupils" if l.get("census_date") else "")
        + f"</small></td><td>{l['quantity']}</td><td>{_money(l['unit_price_pence'])}</td><td>{e(l['vat_code'])}</td>"
          f"<td>{_money(l['net_pence'])}</td><td>{_money(l['vat_pence'])}</td><td>{_money(l['gross_pence'])}</td></tr>"
        for l in view["lines"])
    reference = (f"<p>Credits invoice {e(view.get('credits_invoice_number') or '')}: {e(view.get('reason') or '')}</p>"
                 if view["kind"] == "credit_note" else f"<p>Due date: {e(view['due_date'])}</p>")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title} {e(view['number'])}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse;width:100%}}
td,th{{border-bottom:1px solid #ccc;padding:4px;text-align:left}}@media print{{body{{margin:0}}}}</style></head>
<body>
<header><h1>{title} {e(view['number'])}</h1>
<p><strong>{e(op['legal_name'])}</strong><br>{e(op['address'])}<br>VAT registration number: {e(op['vat_number'])}</p></header>
<section><h2>To</h2><p>{e(view['payer_name'])} ({e(view['payer_kind'])} {e(view['payer_id'])})</p>
<p>Issue date: {e(view['issue_date'])}{' · Billing period: ' + e(view['billing_period']) if view.get('billing_period') else ''}</p>
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
