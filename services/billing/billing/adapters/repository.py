"""Reads and writes billing state through a unit of work's session (SQLAlchemy Core).

The billing run inserts through `shared.bulk` (in its handlers) and marks the
charges it read in bulk (`mark_documents_charges`), so a national run stays a
few statements per thousand payers.
"""
from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import json
from typing import Iterable, Sequence

from sqlalchemy import and_, func, insert, literal_column, null, select, update

from billing.adapters.tables import (audit_log, billing_runs, charges, contacts, document_lines, document_sequences,
                                     documents, erased_contacts, idempotency_keys, inbox, mat_billing,
                                     member_affiliations, members, outbox, overdue_notices, payments, subscriptions)
from billing.domain import invoicing
from billing.domain.customers import ContactRole, Place
from billing.domain.demand import Holding
from billing.domain.model import Affiliation, Charge, Member, Payer
from billing.domain.upstream import Component, Subscription, SubscriptionEnd, is_newer, later_version
from shared import erasure

def upsert(session, table, key: str | Sequence[str], values: dict) -> None:
    keys = [key] if isinstance(key, str) else list(key)
    where = and_(*[table.c[k] == values[k] for k in keys])
    if session.execute(select(table.c[keys[0]]).where(where)).first():
        session.execute(table.update().where(where).values(**values))
    else:
        session.execute(insert(table).values(**values))


# -- members ---------------------------------------------------------------------------------------
def pays_centrally(session):
    settings = {r.mat_id: bool(r.pays_centrally) for r in session.execute(select(mat_billing))}
    return lambda mat_id: settings.get(mat_id, True)


def member(session, urn: str) -> Member | None:
    row = session.execute(select(members).where(members.c.urn == urn)).first()
    if row is None:
        return None
    return Member(urn=row.urn, name=row.name, is_academy=None if row.is_academy is None else bool(row.is_academy),
                  mat_id=row.mat_id, mat_name=row.mat_name, left_on=row.left_on,
                  details_sequence=row.details_sequence, lifecycle_sequence=row.lifecycle_sequence,
                  postcode=row.postcode, local_authority=row.local_authority, successor_urn=row.successor_urn)


def save_member(session, copy: Member) -> None:
    upsert(session, members, "urn", dataclasses.asdict(copy))


def places(session, urns: Iterable[str]) -> dict[str, Place]:
    """Where each of these schools is, as far as billing knows (those it knows)."""
    found = {}
    wanted = sorted(set(urns))
    for i in range(0, len(wanted), 1000):
        query = select(members.c.urn, members.c.name, members.c.postcode, members.c.local_authority).where(
            members.c.urn.in_(wanted[i:i + 1000]))
        found.update({r.urn: Place(r.urn, r.name, r.postcode, r.local_authority) for r in session.execute(query)})
    return found


def successors(session) -> dict[str, str]:
    """Each converted school's academy (its successor URN)."""
    rows = session.execute(select(members.c.urn, members.c.successor_urn).where(members.c.successor_urn.is_not(None)))
    return {r.urn: r.successor_urn for r in rows}


def members_on(session, day: dt.date) -> int:
    """How many members billing knows were members on `day`: standing from on or before it, not yet left."""
    joined = (select(member_affiliations.c.urn).group_by(member_affiliations.c.urn)
              .having(func.min(member_affiliations.c.effective_from) <= day))
    return session.execute(select(func.count()).select_from(members).where(
        members.c.urn.in_(joined), (members.c.left_on.is_(None)) | (members.c.left_on > day))).scalar_one()


def record_affiliation(session, affiliation: Affiliation) -> bool:
    """Keep `affiliation` unless a newer standing on the same date is kept already; True if kept."""
    key = (member_affiliations.c.urn == affiliation.urn,
           member_affiliations.c.effective_from == affiliation.effective_from)
    row = session.execute(select(member_affiliations).where(*key)).first()
    existing = None if row is None else _affiliation(row)
    if not affiliation.replaces(existing):
        return False
    values = dataclasses.asdict(affiliation)
    if existing is not None:
        values["sequence"] = later_version(affiliation.sequence, existing.sequence)
        session.execute(member_affiliations.update().where(*key).values(**values))
    else:
        session.execute(insert(member_affiliations).values(**values))
    return True


def _affiliation(r) -> Affiliation:
    return Affiliation(r.urn, r.effective_from, r.name, bool(r.is_academy), r.mat_id, r.mat_name, r.sequence)


def affiliations(session, urn: str) -> list[Affiliation]:
    rows = session.execute(select(member_affiliations).where(member_affiliations.c.urn == urn))
    return [_affiliation(r) for r in rows]


# -- subscriptions -----------------------------------------------------------------------------------
def _jsonable(value):
    return value.isoformat() if isinstance(value, (dt.date, dt.datetime)) else value


def save_subscription(session, subscription: Subscription) -> None:
    """Keep an SLA's terms (filling in the placeholder of an end consumed first, whose end stays)."""
    terms = json.dumps({k: ({kk: _jsonable(vv) for kk, vv in v.items()} if isinstance(v, dict) else _jsonable(v))
                        for k, v in dataclasses.asdict(subscription).items()})
    upsert(session, subscriptions, "subscription_id", {
        "subscription_id": str(subscription.subscription_id), "urn": subscription.urn,
        "period_start": subscription.period_start, "period_end": subscription.period_end, "terms": terms})


def end_subscription(session, end: SubscriptionEnd, sequence: int | None) -> bool:
    """Record an SLA's end numbered `sequence` unless a newer end of it is recorded; True if recorded.

    If the SLA's start has not arrived yet (events of different types may be consumed out of order),
    the end waits on a placeholder that its start fills in."""
    row = session.execute(select(subscriptions.c.end_sequence).where(
        subscriptions.c.subscription_id == end.subscription_id)).first()
    if row is None:
        session.execute(insert(subscriptions).values(
            subscription_id=end.subscription_id, urn=end.urn, period_start=end.effective_date,
            period_end=end.effective_date, ends_from=end.effective_date, end_reason=end.reason, terms="{}",
            end_sequence=sequence, end_known_on=end.known_on))
        return True
    if not is_newer(sequence, row.end_sequence):
        return False
    session.execute(update(subscriptions).where(subscriptions.c.subscription_id == end.subscription_id).values(
        ends_from=end.effective_date, end_reason=end.reason, end_sequence=later_version(sequence, row.end_sequence),
        end_known_on=end.known_on))
    return True


def subscription_end(session, subscription_id: str) -> tuple[dt.date | None, str | None]:
    row = session.execute(select(subscriptions.c.ends_from, subscriptions.c.end_reason)
                          .where(subscriptions.c.subscription_id == subscription_id)).first()
    return (row.ends_from, row.end_reason) if row else (None, None)


def open_subscriptions(session, up_to: dt.date):
    query = select(subscriptions).where(subscriptions.c.period_end > subscriptions.c.period_start,
                                        subscriptions.c.terms != "{}")
    for row in session.execute(query):
        terms = json.loads(row.terms)
        for key in ("period_start", "period_end"):
            terms[key] = dt.date.fromisoformat(terms[key])
        terms["census"]["date"] = dt.date.fromisoformat(terms["census"]["date"])
        yield row.ends_from, terms


def holdings(session, known_by: dt.date, payer_type_of) -> list[Holding]:
    """Every SLA billing has the terms of, as the buy-back sees it on `known_by`: bought by then (else
    not counted), covered up to the day before its end if that end was decided by then. `payer_type_of(urn,
    day)` answers for SLAs whose event gave no payer type (stored before billing kept it)."""
    found = []
    query = select(subscriptions.c.terms, subscriptions.c.ends_from, subscriptions.c.end_known_on).where(
        subscriptions.c.terms != "{}")
    for row in session.execute(query):
        terms = json.loads(row.terms)
        start, end = dt.date.fromisoformat(terms["period_start"]), dt.date.fromisoformat(terms["period_end"])
        bought = dt.date.fromisoformat(terms["purchased_on"]) if terms.get("purchased_on") else start
        if bought > known_by:
            continue
        covered_until = end
        if row.ends_from is not None and (row.end_known_on or row.ends_from) <= known_by:
            covered_until = min(end, row.ends_from - dt.timedelta(days=1))
        payer_type = terms.get("payer_type") or payer_type_of(terms["urn"], start)
        found.append(Holding(terms["urn"], terms["service_area"], payer_type, start, covered_until))
    return found


def charged_periods(session, subscription_ids: set[str]) -> set[tuple[str, dt.date]]:
    found = set()
    ids = sorted(subscription_ids)
    for i in range(0, len(ids), 500):
        query = select(charges.c.subscription_id, charges.c.period_start).where(
            charges.c.kind == "charge", charges.c.subscription_id.in_(ids[i:i + 500]))
        found |= {(r.subscription_id, r.period_start) for r in session.execute(query)}
    return found


# -- charges ---------------------------------------------------------------------------------------
def charge_row(charge: Charge, status: str) -> dict:
    return dict(
        id=charge.id, subscription_id=charge.subscription_id, urn=charge.urn, payer_kind=charge.payer.kind,
        payer_id=charge.payer.id, payer_name=charge.payer.name, payer_key=f"{charge.payer.kind}:{charge.payer.id}",
        offering_code=charge.offering_code, offering_name=charge.offering_name, service_area=charge.service_area,
        period_start=charge.period_start, period_end=charge.period_end, amount_pence=charge.amount_pence,
        vat_treatment=charge.vat_treatment, census_date=charge.census_date, number_on_roll=charge.number_on_roll,
        status=status, kind=charge.kind, source=charge.source, quantity=charge.quantity,
        unit_price_pence=charge.unit_price_pence, basis_pence=charge.basis_pence, basis_days=charge.basis_days,
        attendance_id=charge.attendance_id, credits_charge_id=charge.credits_charge_id,
        description=charge.description[:300], document_id=None, po_number=charge.po_number,
        components=encode_components(charge.components))


def encode_components(components) -> str | None:
    """A bundle's components as stored on its charges (JSON); None for a charge that is not a bundle."""
    return json.dumps([dataclasses.asdict(c) for c in components]) if components else None


def decode_components(stored: str | None) -> tuple[Component, ...]:
    return tuple(Component(**c) for c in json.loads(stored)) if stored else ()


def add_charge(session, charge: Charge, status: str = "uninvoiced") -> None:
    session.execute(insert(charges).values(**charge_row(charge, status)))


def to_charge(row) -> Charge:
    return Charge(id=row.id, subscription_id=row.subscription_id, urn=row.urn,
                  payer=Payer(row.payer_kind, row.payer_id, row.payer_name), offering_code=row.offering_code,
                  offering_name=row.offering_name, service_area=row.service_area, period_start=row.period_start,
                  period_end=row.period_end, amount_pence=row.amount_pence, vat_treatment=row.vat_treatment,
                  census_date=row.census_date, number_on_roll=row.number_on_roll, kind=row.kind, source=row.source,
                  quantity=row.quantity, unit_price_pence=row.unit_price_pence, basis_pence=row.basis_pence,
                  basis_days=row.basis_days, attendance_id=row.attendance_id,
                  credits_charge_id=row.credits_charge_id, description=row.description, po_number=row.po_number,
                  components=decode_components(row.components))


def charges_of_subscription(session, subscription_id: str) -> list[tuple[Charge, str]]:
    query = select(charges).where(charges.c.subscription_id == subscription_id, charges.c.kind == "charge")
    return [(to_charge(r), r.status) for r in session.execute(query)]


OPEN = ("unmatched", "uninvoiced")  # not on any document yet


def credits_of(session, charge_ids: Iterable[str]) -> dict[str, list[tuple[Charge, str]]]:
    """Per charge id, its credits with their status."""
    ids = list(charge_ids)
    found: dict[str, list] = {i: [] for i in ids}
    if ids:
        query = select(charges).where(charges.c.credits_charge_id.in_(ids)).order_by(charges.c.id)
        for r in session.execute(query):
            found[r.credits_charge_id].append((to_charge(r), r.status))
    return found


def open_charges(session, urn: str) -> list[tuple[Charge, str]]:
    """A school's charges and credits on no document yet (unmatched or uninvoiced), with their status."""
    query = select(charges).where(charges.c.urn == urn, charges.c.status.in_(OPEN)).order_by(charges.c.id)
    return [(to_charge(r), r.status) for r in session.execute(query)]


def remove_charges(session, charge_ids: Sequence[str]) -> None:
    """Remove charges or credits on no document (the caller checked): a credit superseded before invoicing."""
    if charge_ids:
        session.execute(charges.delete().where(charges.c.id.in_(list(charge_ids)), charges.c.status.in_(OPEN)))


def match_charge(session, charge_id: str, payer: Payer, status: str = "uninvoiced") -> None:
    session.execute(update(charges).where(charges.c.id == charge_id).values(
        status=status, payer_kind=payer.kind, payer_id=payer.id, payer_name=payer.name,
        payer_key=f"{payer.kind}:{payer.id}"))


def find_charges(session, *, urn: str | None = None, payer_id: str | None = None,
                 status: str | None = None) -> list[dict]:
    query = select(charges).order_by(charges.c.period_start, charges.c.kind, charges.c.id)
    if urn:
        query = query.where(charges.c.urn == urn)
    if payer_id:
        query = query.where(charges.c.payer_id == payer_id)
    if status:
        query = query.where(charges.c.status == status)
    return [{k: _jsonable(v) for k, v in r._mapping.items()} for r in session.execute(query)]


# -- billing run -------------------------------------------------------------------------------------
def billing_run(session, operator_name: str, period: str):
    return session.execute(select(billing_runs).where(billing_runs.c.operator_name == operator_name,
                                                      billing_runs.c.period == period)).first()


def payers_due(session, up_to: dt.date) -> list[str]:
    query = (select(charges.c.payer_key).where(charges.c.status == "uninvoiced", charges.c.period_start <= up_to)
             .distinct().order_by(charges.c.payer_key))
    return [r.payer_key for r in session.execute(query)]


_LINE_COLUMNS = ("id", "urn", "payer_key", "payer_kind", "payer_id", "payer_name", "kind", "offering_code",
                 "offering_name", "description", "service_area", "period_start", "period_end", "quantity",
                 "unit_price_pence", "census_date", "number_on_roll", "vat_treatment", "amount_pence", "po_number",
                 "components")


# One due charge as the run reads it: plain attributes (a SQLAlchemy Row's attribute look-up
# cost more than building the invoice line from it), and `row_ref`, how to find its row again in
# the same transaction (see `mark_documents_charges`).
DueCharge = collections.namedtuple("DueCharge", _LINE_COLUMNS + ("credited_document_id", "row_ref"))


def _row_ref(session):
    # SQLite: the rowid, stable within a transaction (only VACUUM renumbers, and the run holds
    # the write lock); updating by it skips the look-up through the id index, which was half
    # the cost of marking a national run's charges. Elsewhere: the id.
    if session.get_bind().dialect.name == "sqlite":
        return literal_column("charges.rowid").label("row_ref")
    return charges.c.id.label("row_ref")


def due_charges(session, payer_keys: Sequence[str], up_to: dt.date) -> dict[str, list[DueCharge]]:
    """Per payer key, its uninvoiced charges, then its credits (each with the document of the charge it
    credits, or None), dated up to `up_to`; only the columns an invoice line needs."""
    keys = list(payer_keys)
    order = (charges.c.period_start, charges.c.offering_code, charges.c.id)
    found: dict[str, list] = {key: [] for key in keys}
    line_columns = [charges.c[c] for c in _LINE_COLUMNS]
    row_ref = _row_ref(session)
    plain = (select(*line_columns, null().label("credited_document_id"), row_ref)
             .where(charges.c.payer_key.in_(keys), charges.c.status == "uninvoiced", charges.c.kind == "charge",
                    charges.c.period_start <= up_to).order_by(charges.c.payer_key, *order))
    credited = charges.alias("credited")
    credits = (select(*line_columns, credited.c.document_id.label("credited_document_id"), row_ref)
               .select_from(charges.outerjoin(credited, credited.c.id == charges.c.credits_charge_id))
               .where(charges.c.payer_key.in_(keys), charges.c.status == "uninvoiced", charges.c.kind == "credit",
                      charges.c.period_start <= up_to).order_by(charges.c.payer_key, *order))
    make = tuple.__new__
    for query in (plain, credits):
        for row in session.execute(query).tuples():
            charge = make(DueCharge, row)
            if charge.components is not None:  # a bundle: its components as values, for its lines
                charge = charge._replace(components=decode_components(charge.components))
            found[charge.payer_key].append(charge)
    return found


def lock_numbering(session, operator_name: str) -> None:
    """Take the operator's numbering rows (creating them the first time) for the rest of the
    transaction: billing runs and corrections of one operator then happen one after another, so a
    run reads the charges only after any earlier run committed (never invoicing a charge twice)."""
    for kind in ("invoice", "credit_note"):
        row = session.execute(select(document_sequences.c.last_number).where(
            document_sequences.c.operator_name == operator_name, document_sequences.c.kind == kind)
            .with_for_update()).first()
        if row is None:
            session.execute(insert(document_sequences).values(operator_name=operator_name, kind=kind,
                                                              last_number=0))


def take_numbers(session, operator_name: str, kind: str, count: int) -> int:
    """Reserve `count` consecutive numbers; returns the first. Call after `lock_numbering` (which made the
    row and holds it). Gap-free: the reservation commits or rolls back with the documents."""
    last = session.execute(select(document_sequences.c.last_number).where(
        document_sequences.c.operator_name == operator_name, document_sequences.c.kind == kind)).scalar_one()
    session.execute(update(document_sequences).where(
        document_sequences.c.operator_name == operator_name, document_sequences.c.kind == kind)
        .values(last_number=last + count))
    return last + 1


def mark_documents_charges(session, invoiced: Sequence[tuple[DueCharge, str]]) -> None:
    """Each of these due charges (read by `due_charges` in this transaction), if still uninvoiced,
    becomes invoiced by its document. PostgreSQL: set-based, UPDATE ... FROM the lines of a
    thousand documents a statement. SQLite (whose UPDATE ... FROM slowed down more than linearly
    with the table here): the driver's executemany, one update by rowid per charge."""
    if not invoiced:  # a chunk whose charges all netted to nothing issues no document
        return
    connection = session.connection()
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql(
            "UPDATE charges SET status = 'invoiced', document_id = ? WHERE rowid = ? AND status = 'uninvoiced'",
            [(document_id, charge.row_ref) for charge, document_id in invoiced])
        return
    ids = list(dict.fromkeys(document_id for _, document_id in invoiced))
    for i in range(0, len(ids), 1000):
        connection.execute(update(charges)
                           .where(charges.c.id == document_lines.c.charge_id,
                                  document_lines.c.document_id.in_(ids[i:i + 1000]),
                                  charges.c.status == "uninvoiced")
                           .values(status="invoiced", document_id=document_lines.c.document_id))


def mark_charges(session, charge_ids: Sequence[str], status: str, document_id: str | None = None) -> None:
    for i in range(0, len(charge_ids), 500):
        session.execute(update(charges).where(charges.c.id.in_(list(charge_ids[i:i + 500])))
                        .values(status=status, document_id=document_id))


# -- documents ----------------------------------------------------------------------------------------
def document(session, number: str | None = None, document_id: str | None = None):
    query = select(documents)
    query = query.where(documents.c.number == number) if number else query.where(documents.c.id == document_id)
    return session.execute(query.order_by(documents.c.created_at.desc())).first()


def document_numbers(session, ids) -> dict[str, str]:
    return {r.id: r.number for r in session.execute(select(documents.c.id, documents.c.number)
                                                     .where(documents.c.id.in_(list(ids))))}


def lines_by_document(session, document_ids: Sequence[str], chunk: int = 5000) -> dict[str, list]:
    """Every line of these documents, by document id, in line order: one query per `chunk` documents."""
    found: dict[str, list] = {document_id: [] for document_id in document_ids}
    ids = list(found)
    for start in range(0, len(ids), chunk):
        for line in session.execute(select(document_lines)
                                    .where(document_lines.c.document_id.in_(ids[start:start + chunk]))
                                    .order_by(document_lines.c.document_id, document_lines.c.line_no)):
            found[line.document_id].append(line)
    return found


def lines_of(session, document_id: str) -> list:
    return list(session.execute(select(document_lines).where(document_lines.c.document_id == document_id)
                                .order_by(document_lines.c.line_no)))


def paid_and_credited(session, document_ids: Sequence[str] | None = None) -> dict[str, tuple[int, int]]:
    """Per invoice id: (paid, credited) pence."""
    paid_q = select(payments.c.document_id, func.sum(payments.c.amount_pence)).group_by(payments.c.document_id)
    credit_q = (select(documents.c.credits_document_id, func.sum(documents.c.gross_pence))
                .where(documents.c.kind == "credit_note").group_by(documents.c.credits_document_id))
    if document_ids is not None:
        paid_q = paid_q.where(payments.c.document_id.in_(list(document_ids)))
        credit_q = credit_q.where(documents.c.credits_document_id.in_(list(document_ids)))
    paid = {r[0]: int(r[1]) for r in session.execute(paid_q)}
    credited = {r[0]: int(r[1]) for r in session.execute(credit_q)}
    keys = set(paid) | set(credited)
    return {k: (paid.get(k, 0), credited.get(k, 0)) for k in keys}


def settlements(session) -> dict[str, list[tuple[dt.date, int]]]:
    """Per invoice id: what settled it and when: payments (received on) and credit notes (issued on)."""
    found: dict[str, list] = collections.defaultdict(list)
    for r in session.execute(select(payments.c.document_id, payments.c.received_on, payments.c.amount_pence)):
        found[r.document_id].append((r.received_on, int(r.amount_pence)))
    for r in session.execute(select(documents.c.credits_document_id, documents.c.issue_date, documents.c.gross_pence)
                             .where(documents.c.kind == "credit_note")):
        found[r.credits_document_id].append((r.issue_date, int(r.gross_pence)))
    return dict(found)


def balance_of(session, invoice) -> int:
    paid, credited = paid_and_credited(session, [invoice.id]).get(invoice.id, (0, 0))
    return invoicing.balance_pence(invoice.gross_pence, paid, credited)


def invoices(session, *, payer_key: str | None = None, issued_from: dt.date | None = None,
             issued_to: dt.date | None = None, kind: str | None = None) -> list:
    query = select(documents).order_by(documents.c.issue_date, documents.c.kind, documents.c.number)
    if payer_key:
        query = query.where(documents.c.payer_key == payer_key)
    if issued_from:
        query = query.where(documents.c.issue_date >= issued_from)
    if issued_to:
        query = query.where(documents.c.issue_date <= issued_to)
    if kind:
        query = query.where(documents.c.kind == kind)
    return list(session.execute(query))


def add_payment(session, row: dict) -> None:
    session.execute(insert(payments).values(**row))


def payments_of(session, *, payer_key: str | None = None, received_from: dt.date | None = None,
                received_to: dt.date | None = None) -> list:
    query = (select(payments, documents.c.number, documents.c.payer_key)
             .join(documents, documents.c.id == payments.c.document_id).order_by(payments.c.received_on))
    if payer_key:
        query = query.where(documents.c.payer_key == payer_key)
    if received_from:
        query = query.where(payments.c.received_on >= received_from)
    if received_to:
        query = query.where(payments.c.received_on <= received_to)
    return list(session.execute(query))


def overdue_notified(session) -> set[str]:
    return {r.document_id for r in session.execute(select(overdue_notices.c.document_id))}


def add_overdue_notice(session, document_id: str, as_of: dt.date) -> None:
    session.execute(insert(overdue_notices).values(document_id=document_id, as_of=as_of))


def invoiced_lines(session, issued_to: dt.date | None = None) -> list:
    """Every line of every document (issued on or before `issued_to`) with its document's kind and issue date."""
    query = (select(document_lines.c.urn, document_lines.c.service_area, document_lines.c.period_end,
                    document_lines.c.net_pence, documents.c.kind, documents.c.issue_date)
             .join(documents, documents.c.id == document_lines.c.document_id))
    if issued_to is not None:
        query = query.where(documents.c.issue_date <= issued_to)
    return list(session.execute(query))


# -- contacts (the people invoices are addressed to) ---------------------------------------------------
def _contact_role(r) -> ContactRole:
    return ContactRole(r.contact_id, r.organisation, r.role, r.display_name, r.email, bool(r.active),
                       r.effective_date, r.version)


def recorded_role(session, contact_id: str, organisation: str, role: str) -> ContactRole | None:
    row = session.execute(select(contacts).where(contacts.c.contact_id == contact_id,
                                                 contacts.c.organisation == organisation,
                                                 contacts.c.role == role)).first()
    return None if row is None else _contact_role(row)


def save_role(session, role: ContactRole) -> None:
    upsert(session, contacts, ("contact_id", "organisation", "role"), dataclasses.asdict(role))


def is_erased(session, contact_id: str) -> bool:
    return session.execute(select(erased_contacts.c.contact_id)
                           .where(erased_contacts.c.contact_id == contact_id)).first() is not None


def erase_contact(session, contact_id: str, version: int | None) -> int:
    """Leave a tombstone (first: a role change committed later finds it), delete every role of the person,
    and take their name and email off every document addressed to them; returns how many documents.
    The person also goes from the outbox and the audit trail (`shared.erasure`), in the same transaction."""
    known = [value for row in session.execute(select(contacts.c.display_name, contacts.c.email)
                                              .where(contacts.c.contact_id == contact_id)) for value in row]
    if not is_erased(session, contact_id):
        session.execute(insert(erased_contacts).values(contact_id=contact_id, version=version))
    session.execute(contacts.delete().where(contacts.c.contact_id == contact_id))
    documents_changed = session.execute(update(documents).where(documents.c.contact_id == contact_id).values(
        contact_id=None, contact_name="(erased)", contact_email=None)).rowcount
    erasure.erase_person(session, contact_id=contact_id, outbox=outbox, inbox=inbox, audit_log=audit_log,
                         idempotency_keys=idempotency_keys, known_values=known)
    return documents_changed


def roles_at(session, organisations: Iterable[str]) -> dict[str, list[ContactRole]]:
    """Per organisation key, every role recorded there."""
    keys = sorted(set(organisations))
    found: dict[str, list] = {key: [] for key in keys}
    for i in range(0, len(keys), 1000):
        for r in session.execute(select(contacts).where(contacts.c.organisation.in_(keys[i:i + 1000]))):
            found[r.organisation].append(_contact_role(r))
    return found
