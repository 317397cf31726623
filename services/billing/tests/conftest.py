"""Billing's books on a real database (SQLite or PostgreSQL), fed upstream events through the service's
own consumer methods (inbox included, no broker), with the use cases and reports at hand.

`ledger` runs a test on both databases (storage rules are kept on both); `sqlite_ledger` on SQLite only.
"""
from __future__ import annotations

import datetime as dt
import json
import types
import uuid

import pytest
from sqlalchemy import select

from billing.adapters.tables import inbox, outbox
from billing.domain.periods import billing_period
from billing.entrypoints.service import BillingService
from billing.messages import consumed
from billing.messages.published import PUBLISHED
from billing.service_layer import handlers, reports
from shared.batch_consumer import takes_batches
from shared.batch_unit_of_work import BatchUnitsOfWork, EventBatch
from shared.db import scratch_database
from shared.envelope import Envelope, ReceivedEvent
from shared.unit_of_work import Origin, Producer, UnitsOfWork

OPERATOR_CONFIG = {"name": "bucks-learning-trust", "legal_name": "Bucks Learning Trust",
                   "address": "County Hall, Walton Street, Aylesbury HP20 1UA", "vat_number": "GB123456789",
                   "bank_account_name": "BLT", "bank_sort_code": "30-00-00", "bank_account_number": "00012345",
                   "invoice_prefix": "BLT-", "payment_terms_days": 30}
OPERATOR = handlers.operator_from_config(OPERATOR_CONFIG)
PRODUCER = Producer("billing", OPERATOR.name, PUBLISHED)

# event type -> (producer, billing's consumer schema, the service's consumer method)
CONSUMERS = {
    "member_joined": ("membership", consumed.MemberJoined, BillingService.on_member_joined),
    "member_left": ("membership", consumed.MemberLeft, BillingService.on_member_left),
    "member_details_changed": ("membership", consumed.MemberDetailsChanged, BillingService.on_member_details_changed),
    "school_converted_to_academy": ("membership", consumed.SchoolConvertedToAcademy,
                                    BillingService.on_school_converted),
    "contact_role_changed": ("membership", consumed.ContactRoleChanged, BillingService.on_contact_role_changed),
    "organisation_contact_role_changed": ("membership", consumed.OrganisationContactRoleChanged,
                                          BillingService.on_organisation_contact_role_changed),
    "contact_erased": ("membership", consumed.ContactErased, BillingService.on_contact_erased),
    "subscription_started": ("catalogue", consumed.SubscriptionStarted, BillingService.on_subscription_started),
    "subscription_renewed": ("catalogue", consumed.SubscriptionRenewed, BillingService.on_subscription_renewed),
    "subscription_cancelled": ("catalogue", consumed.SubscriptionCancelled,
                               BillingService.on_subscription_cancelled),
    "subscription_ended": ("catalogue", consumed.SubscriptionEnded, BillingService.on_subscription_ended),
}

SI = ("SI-CORE", "School improvement core offer", "school_improvement", "standard")
GOV = ("GOV-TRAIN", "Governor training", "governance", "exempt")


class Ledger:
    """Billing's database, fed as its consumers are, with the billing run, payments and reports."""

    def __init__(self, database):
        self.database = database
        self._sequences: dict[tuple[str, str], int] = {}

    # -- upstream events, as the producers publish them ------------------------------------------------
    def deliver(self, event_type: str, payload: dict, aggregate: str | None = None) -> None:
        producer, schema, method = CONSUMERS[event_type]
        sequence = None
        if aggregate is not None:
            sequence = self._sequences[(producer, aggregate)] = self._sequences.get((producer, aggregate), 0) + 1
        envelope = Envelope.new(type=event_type, payload=payload, producer=producer, operator=OPERATOR.name,
                                aggregate=aggregate, sequence=sequence)
        received = ReceivedEvent(envelope=envelope, payload=schema().load(payload))
        if takes_batches(method):  # a batched handler: a batch of one
            batch = EventBatch([received])
            method(types.SimpleNamespace(uow=BatchUnitsOfWork(self.database, PRODUCER, outbox, inbox, batch,
                                                              lambda: None)), batch)
            return
        worker = types.SimpleNamespace(uow=UnitsOfWork(self.database, PRODUCER, outbox, inbox,
                                                       Origin(event=received), lambda: None))
        method(worker, received)

    def join(self, urn, name=None, *, mat=None, joined_on="2020-09-01", postcode="HP22 4LR",
             local_authority="Buckinghamshire"):
        self.deliver("member_joined", {
            "urn": urn, "dfe_number": f"825/{urn[-4:]}", "name": name or f"School {urn}", "kind": "school",
            "establishment_type": "academy_converter" if mat else "community", "phase": "primary",
            "is_academy": mat is not None, "mat": mat, "local_authority": local_authority, "postcode": postcode,
            "number_on_roll": 210, "census_date": "2025-10-02", "joined_on": joined_on}, f"school:{urn}")

    def convert(self, old, new, new_name, mat, day, postcode="HP22 5AA"):
        self.deliver("school_converted_to_academy", {
            "conversion_date": day, "predecessor": {"urn": old, "dfe_number": f"825/{old[-4:]}", "name": f"School {old}"},
            "successor": {"urn": new, "dfe_number": f"825/{new[-4:]}", "name": new_name,
                          "establishment_type": "academy_converter", "phase": "primary",
                          "local_authority": "Buckinghamshire", "postcode": postcode, "number_on_roll": 214,
                          "census_date": "2026-10-01"},
            "mat": mat}, f"school:{old}")

    @staticmethod
    def sla(urn, offering=SI, price=365000, start="2026-04-01", end="2027-03-31", *, mat=None, sid=None,
            po_number=None, purchased_on=None, payer_type=None, components=None, continues=None) -> dict:
        code, name, area, vat = offering
        payload = {
            "subscription_id": sid or str(uuid.uuid4()), "urn": urn, "school_name": f"School {urn}",
            "is_academy": mat is not None, "mat": mat,
            "payer_type": payer_type or ("academy" if mat else "maintained"), "offering_code": code,
            "offering_name": name, "service_area": area, "vat_treatment": vat, "edition_year": int(start[:4]),
            "period_start": start, "period_end": end, "years": 1, "quantity": 1, "annual_price_pence": price,
            "price_breakdown": [], "census": {"date": "2025-10-02", "number_on_roll": 210},
            "po_number": po_number, "purchased_on": purchased_on or start, "entitlements": [],
            "continues_subscription_id": continues}
        if components is not None:
            payload["components"] = components
        return payload

    def buy(self, urn, *args, **kwargs) -> dict:
        sla = self.sla(urn, *args, **kwargs)
        self.deliver("subscription_started", sla, f"school:{urn}")
        return sla

    def renew(self, previous: dict, price=None, start="2027-04-01", end="2028-03-31", **kwargs) -> dict:
        sla = {**previous, "subscription_id": str(uuid.uuid4()), "period_start": start, "period_end": end,
               "edition_year": int(start[:4]), "annual_price_pence": price or previous["annual_price_pence"],
               "purchased_on": kwargs.pop("purchased_on", start), "continues_subscription_id":
               previous["subscription_id"], "renewal_of": previous["subscription_id"], **kwargs}
        self.deliver("subscription_renewed", sla, f"school:{sla['urn']}")
        return sla

    def cancel(self, sla: dict, effective_date: str, cancelled_on: str | None = None):
        self.deliver("subscription_cancelled", {
            "subscription_id": sla["subscription_id"], "urn": sla["urn"], "cancelled_on": cancelled_on or effective_date,
            "effective_date": effective_date, "reason": "no longer needed"}, f"school:{sla['urn']}")

    def end(self, sla: dict, effective_date: str, reason: str):
        self.deliver("subscription_ended", {"subscription_id": sla["subscription_id"], "urn": sla["urn"],
                                            "effective_date": effective_date, "reason": reason},
                     f"school:{sla['urn']}")

    def school_contact(self, contact_id, urn, role, name, *, active=True, effective_date="2020-09-01"):
        self.deliver("contact_role_changed", {
            "contact_id": contact_id, "urn": urn, "display_name": name, "role": role,
            "may_commit_spending": role in ("head_teacher", "business_manager"), "active": active,
            "effective_date": effective_date}, f"contact:{contact_id}")

    def organisation_contact(self, contact_id, kind, org_id, role, name, email=None, *, active=True,
                             effective_date="2020-09-01"):
        self.deliver("organisation_contact_role_changed", {
            "contact_id": contact_id, "organisation_kind": kind, "organisation_id": org_id,
            "organisation_name": f"{kind} {org_id}", "display_name": name, "email": email, "role": role,
            "may_commit_spending": role == "finance_contact", "active": active, "effective_date": effective_date},
            f"contact:{contact_id}")

    def erase(self, contact_id):
        self.deliver("contact_erased", {"contact_id": contact_id}, f"contact:{contact_id}")

    # -- billing's own use cases ------------------------------------------------------------------------
    def uow(self):
        return UnitsOfWork(self.database, PRODUCER, outbox, inbox, Origin(correlation_id="test"), lambda: None)()

    def run(self, period="2026/27", issue="2026-09-01", frequency="annual", operator=OPERATOR) -> dict:
        return handlers.run_billing(self.uow(), operator=operator, period=billing_period(period, frequency),
                                    issue_date=dt.date.fromisoformat(issue))

    def pay(self, number, amount, received_on):
        return handlers.record_payment(self.uow(), number=number, amount_pence=amount,
                                       received_on=dt.date.fromisoformat(received_on), reference=f"BACS {number}")

    def correct(self, number, corrections, issue):
        return handlers.correct_invoice(self.uow(), operator=OPERATOR, number=number, corrections=corrections,
                                        reason="wrong price", issue_date=dt.date.fromisoformat(issue))

    def report(self, name, *args, **kwargs):
        with self.database.reader() as session:
            return getattr(reports, name)(session, *args, **kwargs)

    def docs(self, **query) -> list[dict]:
        return self.report("document_list", **query)

    def view(self, number) -> dict:
        return self.report("document_view", number)

    def charges(self, **query) -> list[dict]:
        with self.database.reader() as session:
            return reports.repository.find_charges(session, **query)

    def published(self, event_type: str) -> list[dict]:
        with self.database.reader() as session:
            query = select(outbox.c.body).where(outbox.c.event_type == event_type).order_by(outbox.c.id)
            return [json.loads(body)["payload"] for body in session.execute(query).scalars()]


def _ledger(backend, tmp_path):
    with scratch_database(backend, tmp_path, "billing_rules", migrations="billing:migrations") as database:
        yield Ledger(database)


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger(request, tmp_path):
    yield from _ledger(request.param, tmp_path)


@pytest.fixture
def sqlite_ledger(tmp_path):
    yield from _ledger("sqlite", tmp_path)
