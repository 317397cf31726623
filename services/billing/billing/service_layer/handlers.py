"""Billing use cases: each takes a unit of work and an upstream event's facts (`billing.domain.upstream`,
with its `Position` where order matters) or a command.

Every handler commits its state change and the events it causes in one unit of
work; an event handler's unit of work also records the event in the inbox, so
a redelivered event changes nothing.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import uuid

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from billing.adapters import repository
from billing.adapters.tables import billing_runs, document_lines, documents, mat_billing
from billing.domain import customers, invoicing, model, upstream
from billing.domain.invoicing import Operator
from billing.domain.periods import BillingPeriod
from shared import bulk, periodic
from shared.http import Conflict, NotFound, RuleViolation
from shared.messaging_tables import utcnow

EARLIEST = dt.date(1900, 1, 1)
PAYERS_PER_CHUNK = 1000


def operator_from_config(config: dict) -> Operator:
    """The OPERATOR block of billing's config as the identity printed on invoices."""
    return Operator(
        name=config["name"], legal_name=config.get("legal_name") or config["name"],
        address=str(config.get("address") or ""), vat_number=str(config.get("vat_number") or ""),
        bank_details={"account_name": str(config.get("bank_account_name") or ""),
                      "sort_code": str(config.get("bank_sort_code") or ""),
                      "account_number": str(config.get("bank_account_number") or "")},
        invoice_prefix=str(config.get("invoice_prefix") or ""),
        payment_terms_days=int(config.get("payment_terms_days") or 30))


def _payer_ref(kind, id_, name) -> dict:
    return {"kind": kind, "id": id_, "name": name}


def _operator_ref(operator: Operator) -> dict:
    return {"name": operator.name, "legal_name": operator.legal_name, "vat_number": operator.vat_number}


def _publish_charge(uow, charge: model.Charge) -> None:
    uow.publish("charge_recorded", {
        "charge_id": charge.id, "subscription_id": charge.subscription_id, "urn": charge.urn,
        "payer": _payer_ref(charge.payer.kind, charge.payer.id, charge.payer.name),
        "source": charge.source, "attendance_id": charge.attendance_id,
        "offering_code": charge.offering_code, "service_area": charge.service_area,
        "period_start": charge.period_start, "period_end": charge.period_end,
        "amount_pence": charge.amount_pence, "vat_treatment": charge.vat_treatment,
        "census_date": charge.census_date, "number_on_roll": charge.number_on_roll,
    }, aggregate=f"payer:{charge.payer.kind}:{charge.payer.id}")


def _lock_school(uow, urn: str) -> None:
    """Serialise, per school, everything that reads and then writes its copy, standings or charges.

    Under PostgreSQL's READ COMMITTED, two handlers of one school running at the same moment
    each miss the other's uncommitted rows: `member_joined` and `subscription_started` left the
    charge unmatched for good (the handover drill found it), and two events of one school would
    each compare against a version the other is replacing. A transaction-scoped advisory lock per
    school orders them; SQLite already runs one writer at a time."""
    if uow.session.get_bind().dialect.name == "postgresql":
        uow.session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"billing-school:{urn}"})


def lock_schools(uow, urns) -> None:
    """`_lock_school` for each of `urns`, in URN order (a batch of events takes its schools' locks up front;
    the locks are re-entrant, so each event's own `_lock_school` then returns at once)."""
    for urn in sorted(set(urns)):
        _lock_school(uow, urn)


def _record_charge(uow, charge: model.Charge, central=None) -> model.Charge:
    """Keep a charge against the payer on its date, or as unmatched (provisional payer: the school) while
    billing knows no standing of its school. `central`: the MATs' central-payment settings
    (`repository.pays_centrally`), when the caller already read them for many charges."""
    _lock_school(uow, charge.urn)
    history = repository.affiliations(uow.session, charge.urn)
    payer = model.payer_on(history, charge.charge_date, central or repository.pays_centrally(uow.session)) \
        if history else None
    if payer is None:
        repository.add_charge(uow.session, charge, status="unmatched")
        return charge
    charge = dataclasses.replace(charge, payer=payer)
    repository.add_charge(uow.session, charge)
    if charge.kind == "charge":
        _publish_charge(uow, charge)
    return charge


def _settle_payers(uow, urn: str) -> None:
    """After the school's standings changed: each of its charges on no document yet goes to the payer on
    its date by everything now known (an unmatched one is matched), and each such credit to the payer of
    the charge it credits. A charge whose payer is decided or changed is published (again) in
    `charge_recorded`, with the same `charge_id`. Invoiced charges keep their payer: documents never change.

    So the payers do not depend on whether the news about a date came before or after the charge: a
    MAT change or a conversion consumed late moves the charges dated from it, as it would have in order."""
    history = repository.affiliations(uow.session, urn)
    if not history:
        return
    central = repository.pays_centrally(uow.session)
    waiting = repository.open_charges(uow.session, urn)
    payers = {}
    for charge, status in waiting:
        if charge.kind == "charge":
            payer = payers[charge.id] = model.payer_on(history, charge.charge_date, central)
            if status == "unmatched" or payer != charge.payer:
                repository.match_charge(uow.session, charge.id, payer)
                _publish_charge(uow, dataclasses.replace(charge, payer=payer))
    for credit, status in waiting:
        payer = payers.get(credit.credits_charge_id)
        if credit.kind == "credit" and payer is not None and (status == "unmatched" or payer != credit.payer):
            repository.match_charge(uow.session, credit.id, payer)


def _member(uow, urn: str) -> model.Member:
    return repository.member(uow.session, urn) or model.Member(urn)


def _record_standing(uow, standing: model.Affiliation) -> None:
    if repository.record_affiliation(uow.session, standing):
        _settle_payers(uow, standing.urn)


# -- membership's events -------------------------------------------------------------------------
# Each applies a fact only if the event is newer, in the school's aggregate, than the event that set
# that fact (`billing.domain.upstream`); an older one is only recorded as seen (the inbox row).
def record_member_joined(uow, joining: upstream.Joining, position: upstream.Position = upstream.UNORDERED) -> None:
    """The school is a member with these details and, from `joined_on`, this standing; a leaving numbered
    after this joining stays (so does newer news about the details or that date's standing)."""
    with uow:
        _lock_school(uow, joining.urn)
        sequence = position.within(upstream.school_aggregate(joining.urn))
        mat = joining.mat
        repository.save_member(uow.session, _member(uow, joining.urn)
                               .with_details(joining.name, joining.is_academy, mat, sequence,
                                             joining.postcode, joining.local_authority)
                               .with_lifecycle(None, sequence))
        _record_standing(uow, model.Affiliation(
            joining.urn, joining.joined_on or EARLIEST, joining.name, joining.is_academy,
            mat.id if mat else None, mat.name if mat else None, sequence))
        uow.commit()


def record_member_left(uow, leaving: upstream.Leaving, position: upstream.Position = upstream.UNORDERED) -> None:
    """A member up to the day before `effective_date`, unless a newer event says otherwise; a leaver
    billing has not heard of is kept as one. Its open items stay payable; its SLAs end through the
    catalogue's `subscription_ended`."""
    with uow:
        _lock_school(uow, leaving.urn)
        sequence = position.within(upstream.school_aggregate(leaving.urn))
        repository.save_member(uow.session, _member(uow, leaving.urn).with_lifecycle(leaving.effective_date, sequence))
        uow.commit()


def record_member_details_changed(uow, change: upstream.DetailsChange,
                                  position: upstream.Position = upstream.UNORDERED) -> None:
    """The member's details as the change gives them, unless newer ones are known; a change of MAT (or
    academy status, or name) is its standing from its effective date, and moves the charges not yet
    invoiced that are dated from then."""
    with uow:
        _lock_school(uow, change.urn)
        sequence = position.within(upstream.school_aggregate(change.urn))
        mat = change.mat
        repository.save_member(uow.session, _member(uow, change.urn)
                               .with_details(change.name, change.is_academy, mat, sequence,
                                             change.postcode, change.local_authority))
        if change.changes_standing:
            # The standing from the change's date: for a backdated change not the snapshot (the latest
            # state) but the change's new values, and the rest as billing knew them on that date.
            held = model.affiliation_on(repository.affiliations(uow.session, change.urn), change.effective_date)
            known = None if held is None else {
                "name": held.name, "is_academy": held.is_academy,
                "mat": upstream.Mat(held.mat_id, held.mat_name) if held.mat_id else None}
            name, is_academy, then_mat = change.standing_from(known)
            _record_standing(uow, model.Affiliation(
                change.urn, change.effective_date, name, is_academy,
                then_mat.id if then_mat else None, then_mat.name if then_mat else None, sequence))
        uow.commit()


def record_conversion(uow, conversion: upstream.Conversion,
                      position: upstream.Position = upstream.UNORDERED) -> None:
    """The maintained school closes on the conversion date (unless a newer event of its own says otherwise);
    the academy (new URN) is a member, in its MAT, from that day.

    The conversion is an event of the predecessor's aggregate and the successor's first: its facts
    about the successor give way to any event of the successor's own, whatever the arrival order. The
    predecessor's successor (its lineage, for buy-back) is stated by the conversion alone."""
    with uow:
        day, mat, old, new = (conversion.conversion_date, conversion.mat, conversion.predecessor,
                              conversion.successor)
        for urn in sorted({old.urn, new.urn}):  # always in one order: two conversions never deadlock
            _lock_school(uow, urn)
        sequence = position.within(upstream.school_aggregate(old.urn))
        repository.save_member(uow.session, _member(uow, old.urn).named(old.name).with_lifecycle(day, sequence)
                               .succeeded_by(new.urn))
        first = None if sequence is None else upstream.BEFORE_OWN_EVENTS
        repository.save_member(uow.session, _member(uow, new.urn)
                               .with_details(new.name, True, mat, first, new.postcode, new.local_authority)
                               .with_lifecycle(None, first))
        _record_standing(uow, model.Affiliation(new.urn, day, new.name, True, mat.id, mat.name, first))
        uow.commit()


# -- catalogue's events ----------------------------------------------------------------------------
# Each SLA arrives once (`subscription_started` or `subscription_renewed`) and may end several times,
# each end earlier than the last (cancelled from March, then the school leaves in January); ends are
# ordered in the school's catalogue aggregate. The SLA's start needs no order: its terms never change.
def record_subscription_charge(uow, subscription: upstream.Subscription) -> model.Charge:
    """Charge an SLA's first (or, carried on at conversion, current) agreement year, pro-rated by days,
    to the payer on its first day; commits the charge and `charge_recorded` (or keeps it unmatched). An
    end consumed before it is applied now: the school is charged and credited as if in order."""
    with uow:
        _lock_school(uow, subscription.urn)
        repository.save_subscription(uow.session, subscription)
        provisional = model.Payer("school", subscription.urn, subscription.school_name)
        charge = _record_charge(uow, model.charge_for_subscription(subscription, provisional))
        ends_from, reason = repository.subscription_end(uow.session, str(subscription.subscription_id))
        if ends_from is not None:  # its end was consumed first
            _credit_unexpired(uow, str(subscription.subscription_id), ends_from, reason)
        uow.commit()
    return charge


def record_subscription_end(uow, end: upstream.SubscriptionEnd,
                            position: upstream.Position = upstream.UNORDERED) -> list[model.Charge]:
    """Cancelled or ended from `effective_date`, unless a newer end of the SLA was applied: each charge's
    unexpired part is credited to the payer it was charged to (with any earlier credit of it, exactly
    the unexpired part from this end). Returns the credits added."""
    with uow:
        _lock_school(uow, end.urn)
        credits = []
        if repository.end_subscription(uow.session, end, position.within(upstream.school_aggregate(end.urn))):
            credits = _credit_unexpired(uow, end.subscription_id, end.effective_date, end.reason)
        uow.commit()
    return credits


def _credit_unexpired(uow, subscription_id: str, day: dt.date, reason: str) -> list[model.Charge]:
    """Bring each charge of the SLA to its unexpired part from `day` (`model.recredit`)."""
    charged = repository.charges_of_subscription(uow.session, subscription_id)
    given = repository.credits_of(uow.session, [c.id for c, _ in charged])
    credits = []
    for charge, status in charged:
        open_credits = [c for c, s in given[charge.id] if s in repository.OPEN]
        invoiced_credits = [c for c, s in given[charge.id] if s not in repository.OPEN]
        withdrawn, credit = model.recredit(charge, day, reason, open_credits, invoiced_credits)
        repository.remove_charges(uow.session, [c.id for c in withdrawn])
        if credit is not None:
            repository.add_charge(uow.session, credit, status="unmatched" if status == "unmatched" else "uninvoiced")
            credits.append(credit)
    return credits


# -- membership's people: who invoices are addressed to ----------------------------------------------
def _lock_contact(uow, contact_id: str) -> None:
    """Serialise a person's role changes and erasure (PostgreSQL; SQLite runs one writer at a time): an
    erasure and a role change applied at once could otherwise each miss the other, and a role written
    after the erasure deleted the person's roles would outlive the tombstone."""
    if uow.session.get_bind().dialect.name == "postgresql":
        uow.session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"billing-contact:{contact_id}"})


def record_contact_role(uow, change: upstream.RoleChange, position: upstream.Position = upstream.UNORDERED) -> None:
    """A person's role at a school, MAT, council or partner, unless a newer change of that role is recorded
    or the person was erased (`customers.role_change_applies`)."""
    with uow:
        _lock_contact(uow, change.contact_id)
        sequence = position.within(upstream.contact_aggregate(change.contact_id))
        recorded = repository.recorded_role(uow.session, change.contact_id, change.organisation, change.role)
        if customers.role_change_applies(recorded, erased=repository.is_erased(uow.session, change.contact_id),
                                         effective_date=change.effective_date, sequence=sequence):
            repository.save_role(uow.session, customers.ContactRole(
                change.contact_id, change.organisation, change.role, change.display_name, change.email,
                change.active, change.effective_date, upstream.later_version(sequence, recorded and recorded.version)))
        uow.commit()


def erase_contact(uow, erasure: upstream.Erasure, position: upstream.Position = upstream.UNORDERED) -> None:
    """Every copy of the person goes: their roles, and their name and email on the documents addressed to
    them (the documents' amounts, lines and numbers never change); a tombstone keeps them gone."""
    with uow:
        _lock_contact(uow, erasure.contact_id)
        repository.erase_contact(uow.session, erasure.contact_id,
                                 position.within(upstream.contact_aggregate(erasure.contact_id)))
        uow.commit()


# -- scheduling's events ----------------------------------------------------------------------------
def record_attendance(uow, attendance: upstream.Attendance) -> model.Charge | None:
    """A chargeable attendance is one delegate's place at the session's price; others only enter the inbox.

    Needs no order: each attendance is a fact of its own (one per booking, its own id), so no other
    event of the school's can make it older."""
    with uow:
        charge = None
        if attendance.chargeable and attendance.unit_price_pence > 0:
            provisional = model.Payer("school", attendance.urn, attendance.urn)
            charge = _record_charge(uow, model.attendance_charge(attendance, provisional))
        uow.commit()
    return charge


def set_mat_billing(uow, mat_id: str, pays_centrally: bool) -> None:
    with uow:
        repository.upsert(uow.session, mat_billing, "mat_id", {"mat_id": mat_id, "pays_centrally": pays_centrally})
        uow.commit()


# -- billing run ------------------------------------------------------------------------------------
@dataclasses.dataclass
class _Draft:
    """A document being built in a run, before it has a number."""

    kind: str
    payer: tuple[str, str, str]
    lines: list
    charge_ids: list
    credits_document_id: str | None = None
    credits_number: str | None = None
    reason: str | None = None


def _accrue_later_years(uow, up_to: dt.date) -> int:
    """Charge the years of multi-year agreements that have fallen due by `up_to` (each once)."""
    due = []
    for ends_from, terms in repository.open_subscriptions(uow.session, up_to):
        for start, end in model.later_agreement_years(terms["period_start"], terms["period_end"], up_to=up_to,
                                                      ends_from=ends_from):
            due.append((terms, start, end))
    if not due:
        return 0
    charged = repository.charged_periods(uow.session, {str(terms["subscription_id"]) for terms, _, _ in due})
    added = 0
    accrued = set()
    central = repository.pays_centrally(uow.session)  # once, not per charge
    for terms, start, end in due:
        if (str(terms["subscription_id"]), start) in charged:
            continue
        provisional = model.Payer("school", terms["urn"], terms["school_name"])
        _record_charge(uow, model.subscription_year_charge(terms, provisional, start, end, start), central)
        added += 1
        accrued.add(str(terms["subscription_id"]))
    for subscription_id in sorted(accrued):  # an SLA that ended early: credit the new year's part after its end
        ends_from, reason = repository.subscription_end(uow.session, subscription_id)
        if ends_from is not None:
            _credit_unexpired(uow, subscription_id, ends_from, reason)
    return added


def _drafts_for_payer(rows) -> tuple[list[_Draft], list[str]]:
    """One payer's due charges -> an invoice (charges, minus credits of charges not yet invoiced) and one
    credit note per invoice whose charges are credited; charges netted to nothing are returned apart."""
    first = rows[0]
    payer = (first.payer_kind, first.payer_id, first.payer_name)
    invoice_lines, invoice_ids, netted = [], [], []
    notes: dict[str, _Draft] = {}
    for charge in rows:  # stored rows carry every attribute of a Charge that a line needs
        # A bundle is one line per component (`lines_for`); any other charge is one line.
        if charge.kind == "charge":
            if charge.components:
                invoice_lines += invoicing.lines_for(charge)
            else:
                invoice_lines.append(invoicing.line_for(charge))
            invoice_ids.append(charge.id)
        elif charge.credited_document_id is None:
            invoice_lines += invoicing.lines_for(charge, sign=-1)
            invoice_ids.append(charge.id)
        else:
            note = notes.setdefault(charge.credited_document_id, _Draft(
                "credit_note", payer, [], [], credits_document_id=charge.credited_document_id,
                reason=charge.description.rsplit("(", 1)[-1].rstrip(")") or "credit"))
            note.lines += invoicing.lines_for(charge)
            note.charge_ids.append(charge.id)
    drafts = list(notes.values())
    if invoice_lines:
        if invoicing.totals(invoice_lines).gross_pence > 0:
            drafts.insert(0, _Draft("invoice", payer, invoice_lines, invoice_ids))
        else:
            netted = invoice_ids  # fully credited before it was ever invoiced: nothing to bill
    return drafts, netted


def invoice_issued_payload(doc: dict, operator_ref: dict, line_count: int) -> dict:
    """`invoice_issued` of an invoice's document row."""
    return {"invoice_id": doc["id"], "invoice_number": doc["number"], "operator": dict(operator_ref),
            "payer": _payer_ref(doc["payer_kind"], doc["payer_id"], doc["payer_name"]),
            "billing_period": doc["billing_period"], "issue_date": doc["issue_date"], "due_date": doc["due_date"],
            "line_count": line_count, "net_pence": doc["net_pence"], "vat_pence": doc["vat_pence"],
            "gross_pence": doc["gross_pence"], "currency": "GBP"}


def credit_note_issued_payload(doc: dict, operator_ref: dict, invoice_number: str | None) -> dict:
    """`credit_note_issued` of a credit note's document row."""
    return {"credit_note_id": doc["id"], "credit_note_number": doc["number"], "invoice_number": invoice_number or "",
            "operator": dict(operator_ref), "payer": _payer_ref(doc["payer_kind"], doc["payer_id"], doc["payer_name"]),
            "reason": doc["reason"] or "credit", "issue_date": doc["issue_date"], "net_pence": doc["net_pence"],
            "vat_pence": doc["vat_pence"], "gross_pence": doc["gross_pence"], "currency": "GBP"}


def _issue(uow, drafts: list[_Draft], *, operator: Operator, issue_date: dt.date, run_id: str | None,
           period: str | None) -> tuple[list[dict], list[dict]]:
    """Number and insert documents with their lines and events (`uow.publish_many`), in bulk.
    Returns the document and line rows."""
    now = utcnow()
    operator_ref = _operator_ref(operator)
    operator_json = json.dumps(dataclasses.asdict(operator), sort_keys=True)
    addressed = _addressees(uow.session, drafts, issue_date)
    doc_rows, line_rows, events = [], [], []
    for kind in ("invoice", "credit_note"):
        of_kind = [d for d in drafts if d.kind == kind]
        if not of_kind:
            continue
        number = repository.take_numbers(uow.session, operator.name, kind, len(of_kind))
        for draft in of_kind:
            doc_id = str(uuid.uuid4())
            doc_number = invoicing.document_number(operator.invoice_prefix, kind, number)
            number += 1
            total = invoicing.totals(draft.lines)
            due = invoicing.due_date(issue_date, operator.payment_terms_days) if kind == "invoice" else issue_date
            pk, pid, pname = draft.payer
            address, contact = addressed[id(draft)]
            doc = dict(
                id=doc_id, kind=kind, number=doc_number, operator_name=operator.name, operator=operator_json,
                payer_kind=pk, payer_id=pid, payer_name=pname, payer_key=f"{pk}:{pid}", billing_run_id=run_id,
                billing_period=period, credits_document_id=draft.credits_document_id, reason=draft.reason,
                issue_date=issue_date, due_date=due, net_pence=total.net_pence, vat_pence=total.vat_pence,
                gross_pence=total.gross_pence, created_at=now, customer_address=address,
                # The time of supply: services supplied over a period are taxed when invoiced (or paid, if
                # earlier; billing invoices before it takes payment), so the issue date.
                tax_point=issue_date, contact_id=contact.contact_id if contact else None,
                contact_name=contact.name[:200] if contact else None,
                contact_email=contact.email if contact else None)
            doc_rows.append(doc)
            for line_no, line in enumerate(draft.lines, 1):
                line_rows.append({  # a literal: the run builds one per charge, and dict(...) costs more
                    "document_id": doc_id, "line_no": line_no, "charge_id": line.charge_id, "urn": line.urn,
                    "offering_code": line.offering_code, "description": line.description[:300],
                    "service_area": line.service_area, "period_start": line.period_start,
                    "period_end": line.period_end, "quantity": line.quantity,
                    "unit_price_pence": line.unit_price_pence, "census_date": line.census_date,
                    "number_on_roll": line.number_on_roll, "vat_treatment": line.vat_treatment,
                    "vat_code": line.vat_code, "net_pence": line.net_pence, "vat_pence": line.vat_pence,
                    "gross_pence": line.gross_pence, "po_number": line.po_number})
            if kind == "invoice":
                event = ("invoice_issued", invoice_issued_payload(doc, operator_ref, len(draft.lines)))
            else:
                event = ("credit_note_issued", credit_note_issued_payload(doc, operator_ref, draft.credits_number))
            events.append((*event, f"payer:{pk}:{pid}"))
    bulk.insert_dicts(uow.session, documents, doc_rows)
    bulk.insert_dicts(uow.session, document_lines, line_rows)
    uow.publish_many(events)
    return doc_rows, line_rows


def _addressees(session, drafts: list[_Draft], issue_date: dt.date) -> dict[int, tuple]:
    """Per draft (by `id()`): the customer's address and the invoice contact on `issue_date`
    (`billing.domain.customers`), read for all the drafts' payers at once."""
    keys = {f"{d.payer[0]}:{d.payer[1]}" for d in drafts}
    urns = {d.payer[1] for d in drafts if d.payer[0] == "school"}
    urns |= {line.urn for d in drafts if d.payer[0] != "school" for line in d.lines}
    places = repository.places(session, urns)
    roles = repository.roles_at(session, keys)
    found = {}
    for draft in drafts:
        kind, payer_id, _ = draft.payer
        found[id(draft)] = (customers.customer_address(kind, payer_id, places, [line.urn for line in draft.lines]),
                            customers.invoice_contact(kind, roles.get(f"{kind}:{payer_id}", ()), issue_date))
    return found


def _credit_numbers(session, drafts: list[_Draft]) -> None:
    ids = {d.credits_document_id for d in drafts if d.credits_document_id}
    if ids:
        numbers = repository.document_numbers(session, ids)
        for draft in drafts:
            if draft.credits_document_id:
                draft.credits_number = numbers[draft.credits_document_id]


def run_billing(uow, *, operator: Operator, period: BillingPeriod, issue_date: dt.date, control=None) -> dict:
    """Invoice every payer's uninvoiced charges dated up to the period's end, once per operator and period.

    Rerunning the same period returns the first run and issues nothing. Runs in one
    transaction: either every document of the run is issued with its number and event,
    or none is (numbers stay gap-free). Two runs at once: the second waits for the first
    (PostgreSQL row lock, SQLite's single writer), or is refused with 409 if both were
    the operator's very first. With a job `control` (shared.jobs) it reports progress by chunk of
    payers and, when the service is stopping, stops between chunks: the transaction rolls back, so
    nothing of the run is issued, and the resumed run starts it again.
    """
    try:
        with bulk.cyclic_gc_paused():
            return _run_billing(uow, operator=operator, period=period, issue_date=issue_date, control=control)
    except IntegrityError:
        raise Conflict("another billing run of this operator was committed at the same moment; "
                       "run it again (a rerun of the same period issues nothing)", field="period") from None


def _run_billing(uow, *, operator: Operator, period: BillingPeriod, issue_date: dt.date, control=None) -> dict:
    with uow:
        repository.lock_numbering(uow.session, operator.name)
        existing = repository.billing_run(uow.session, operator.name, period.label)
        if existing is not None:
            return {**_run_summary(existing), "rerun": True}
        run_id = str(uuid.uuid4())
        _accrue_later_years(uow, period.end)
        payer_keys = repository.payers_due(uow.session, period.end)
        issued = {"invoice": 0, "credit_note": 0}
        gross = 0
        if control is not None:
            control.progress(0, len(payer_keys))
            control.check()
        for i in range(0, len(payer_keys), PAYERS_PER_CHUNK):
            if control is not None:
                control.check()  # stopping: the whole run rolls back (numbers stay gap-free)
            drafts, netted = [], []
            due = repository.due_charges(uow.session, payer_keys[i:i + PAYERS_PER_CHUNK], period.end)
            due_by_id = {charge.id: charge for rows in due.values() for charge in rows}
            for rows in due.values():
                if rows:
                    payer_drafts, payer_netted = _drafts_for_payer(rows)
                    drafts += payer_drafts
                    netted += payer_netted
            _credit_numbers(uow.session, drafts)
            docs, lines = _issue(uow, drafts, operator=operator, issue_date=issue_date, run_id=run_id,
                                 period=period.label)
            for doc in docs:
                issued[doc["kind"]] += 1
                gross += doc["gross_pence"] if doc["kind"] == "invoice" else 0
            repository.mark_documents_charges(uow.session, [(due_by_id[line["charge_id"]], line["document_id"])
                                                            for line in lines])
            repository.mark_charges(uow.session, netted, "netted")
            if control is not None:
                control.progress(min(i + PAYERS_PER_CHUNK, len(payer_keys)), len(payer_keys))
        row = dict(id=run_id, operator_name=operator.name, period=period.label, period_start=period.start,
                   period_end=period.end, issue_date=issue_date, invoices_issued=issued["invoice"],
                   credit_notes_issued=issued["credit_note"], gross_pence=gross, created_at=utcnow())
        uow.session.execute(billing_runs.insert().values(**row))
        uow.commit()
    return {**_run_summary(row), "rerun": False}


def _run_summary(row) -> dict:
    m = row if isinstance(row, dict) else row._mapping
    return {"run_id": m["id"], "operator": m["operator_name"], "period": m["period"],
            "period_start": m["period_start"].isoformat(), "period_end": m["period_end"].isoformat(),
            "issue_date": m["issue_date"].isoformat(), "invoices_issued": m["invoices_issued"],
            "credit_notes_issued": m["credit_notes_issued"], "invoiced_gross_pence": m["gross_pence"]}


# -- corrections --------------------------------------------------------------------------------------
def correct_invoice(uow, *, operator: Operator, number: str, corrections: dict[int, int], reason: str,
                    issue_date: dt.date) -> dict:
    """Credit the whole invoice and re-bill it with the corrected line amounts (line_no -> net pence);
    the issued invoice itself never changes."""
    with uow:
        repository.lock_numbering(uow.session, operator.name)
        invoice = repository.document(uow.session, number=number)
        if invoice is None or invoice.kind != "invoice":
            raise NotFound(f"no invoice numbered {number}", field="number")
        if invoice.operator_name != operator.name:
            raise RuleViolation(f"invoice {number} was issued by {invoice.operator_name}, not this operator",
                                field="number")
        if repository.paid_and_credited(uow.session, [invoice.id]).get(invoice.id, (0, 0))[1] > 0:
            raise RuleViolation(f"invoice {number} has already been credited; correct its re-bill instead",
                                field="number")
        lines = repository.lines_of(uow.session, invoice.id)
        unknown = sorted(set(corrections) - {line.line_no for line in lines})
        if unknown:
            raise RuleViolation(f"invoice {number} has no line {unknown[0]}", field="lines")
        payer = (invoice.payer_kind, invoice.payer_id, invoice.payer_name)
        credit = _Draft("credit_note", payer, [_stored_line(line) for line in lines], [], invoice.id, invoice.number,
                        reason=f"correction: {reason}")
        rebill_lines = []
        for line in lines:
            new = dataclasses.replace(_stored_line(line), net_pence=corrections.get(line.line_no, line.net_pence))
            rebill_lines.append(dataclasses.replace(
                new, vat_pence=invoicing.vat_pence(abs(new.net_pence), new.vat_treatment) * (1 if new.net_pence >= 0 else -1)))
        drafts = [credit]
        if invoicing.totals(rebill_lines).gross_pence > 0:
            drafts.append(_Draft("invoice", payer, rebill_lines, []))
        docs, _ = _issue(uow, drafts, operator=operator, issue_date=issue_date, run_id=None,
                      period=invoice.billing_period)
        uow.commit()
    by_kind = {d["kind"]: d["number"] for d in docs}
    return {"credit_note_number": by_kind["credit_note"], "rebill_invoice_number": by_kind.get("invoice")}


def _stored_line(line) -> invoicing.Line:
    return invoicing.Line(charge_id=line.charge_id, urn=line.urn, offering_code=line.offering_code,
                          description=line.description, service_area=line.service_area,
                          period_start=line.period_start, period_end=line.period_end, quantity=line.quantity,
                          unit_price_pence=line.unit_price_pence, census_date=line.census_date,
                          number_on_roll=line.number_on_roll, vat_treatment=line.vat_treatment,
                          net_pence=line.net_pence, vat_pence=line.vat_pence, po_number=line.po_number)


# -- payments -----------------------------------------------------------------------------------------
def record_payment(uow, *, number: str, amount_pence: int, received_on: dt.date, reference: str | None) -> dict:
    """A payment against an invoice: full, partial or over (an overpayment leaves a credit balance)."""
    with uow:
        uow.lock(f"invoice:{number}")  # replicas: payments of one invoice one at a time, each balance exact
        invoice = repository.document(uow.session, number=number)
        if invoice is None or invoice.kind != "invoice":
            raise RuleViolation(f"no invoice numbered {number}: a payment must name an issued invoice",
                                field="invoice_number")
        payment_id = str(uuid.uuid4())
        repository.add_payment(uow.session, dict(
            id=payment_id, document_id=invoice.id, amount_pence=amount_pence, currency="GBP",
            received_on=received_on, reference=reference, created_at=utcnow()))
        balance = repository.balance_of(uow.session, invoice)
        status = invoicing.payment_status(invoice.gross_pence, balance)
        status = status if status != "unpaid" else "part_paid"
        uow.publish("payment_recorded", {
            "payment_id": payment_id, "invoice_number": number,
            "payer": _payer_ref(invoice.payer_kind, invoice.payer_id, invoice.payer_name),
            "amount_pence": amount_pence, "currency": "GBP", "received_on": received_on, "reference": reference,
            "balance_pence": balance, "status": status}, aggregate=f"payer:{invoice.payer_key}")
        uow.commit()
    return {"payment_id": payment_id, "invoice_number": number, "amount_pence": amount_pence,
            "balance_pence": balance, "status": status}


# -- overdue ------------------------------------------------------------------------------------------
OVERDUE_CHECK_SECONDS = 3600


def check_overdue(uow, as_of: dt.date, *, once_per_period: bool = False) -> list[dict] | None:
    """Publish `invoice_overdue` once for each invoice still owing after its due date, as of `as_of`.

    `once_per_period` (the hourly timer, which every replica runs): only the first caller in each
    hour across replicas does the check (`shared.periodic`); the others return None."""
    found = []
    with uow:
        if once_per_period and not periodic.claim_period(uow.session, "overdue_check", OVERDUE_CHECK_SECONDS):
            return None
        if uow.session.get_bind().dialect.name == "postgresql":
            # Two checks at once (replicas, or the timer and POST /overdue-checks): one after the other, so
            # the second reads the first's notices instead of failing on the same invoice's notice.
            uow.session.execute(text("SELECT pg_advisory_xact_lock(hashtext('billing:overdue_check'))"))
        notified = repository.overdue_notified(uow.session)
        open_invoices = [d for d in repository.invoices(uow.session, kind="invoice")
                         if d.id not in notified and d.due_date < as_of]
        sums = repository.paid_and_credited(uow.session, [d.id for d in open_invoices]) if open_invoices else {}
        for invoice in open_invoices:
            paid, credited = sums.get(invoice.id, (0, 0))
            balance = invoicing.balance_pence(invoice.gross_pence, paid, credited)
            if not invoicing.is_overdue(invoice.due_date, balance, as_of):
                continue
            days = (as_of - invoice.due_date).days
            repository.add_overdue_notice(uow.session, invoice.id, as_of)
            uow.publish("invoice_overdue", {
                "invoice_number": invoice.number,
                "payer": _payer_ref(invoice.payer_kind, invoice.payer_id, invoice.payer_name),
                "due_date": invoice.due_date, "as_of": as_of, "days_overdue": days, "balance_pence": balance},
                aggregate=f"payer:{invoice.payer_key}")
            found.append({"invoice_number": invoice.number, "payer_key": invoice.payer_key,
                          "days_overdue": days, "balance_pence": balance})
        uow.commit()
    return found
