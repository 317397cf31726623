"""Billing's event consumers converge whatever the delivery order, on a real SQLite database.

Each event goes through the service's own handler method (no broker, no nameko worker) with the
unit of work the consumer gives it: `Origin(event=ReceivedEvent(...))`, so the inbox stops a
duplicate as it does in the service. Sequences are assigned as the producers assign them: one
counter per (producer, aggregate), `school:<urn>` for membership and the catalogue, `<urn>` for
scheduling; a conversion is numbered in the predecessor's aggregate.

The property: one school's realistic history (joining, details changes, a census billing does
not read, SLAs started, cancelled, ended at conversion, carried on, renewed, cancelled and then
ended by leaving, attendance, conversion to an academy in a MAT that it later leaves for another,
leaving) delivered in any order, with duplicates, leaves billing's members, standings, SLAs,
charges (amounts and payers) and credits exactly as delivery in order does.
"""
from __future__ import annotations

import dataclasses
import json
import shutil
import types
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from billing.adapters.tables import charges, inbox, member_affiliations, members, outbox, subscriptions
from billing.entrypoints.service import BillingService
from billing.messages import consumed
from billing.messages.published import PUBLISHED
from shared.batch_consumer import takes_batches
from shared.batch_unit_of_work import BatchUnitsOfWork, EventBatch
from shared.db import Database, scratch_database
from shared.envelope import Envelope, ReceivedEvent
from shared.unit_of_work import EventAlreadyHandled, Origin, Producer, UnitsOfWork

PRODUCER = Producer("billing", "bucks-learning-trust", PUBLISHED)

# event type -> (billing's consumer schema, the service's handler method)
CONSUMERS = {
    "member_joined": (consumed.MemberJoined, BillingService.on_member_joined),
    "member_left": (consumed.MemberLeft, BillingService.on_member_left),
    "member_details_changed": (consumed.MemberDetailsChanged, BillingService.on_member_details_changed),
    "school_converted_to_academy": (consumed.SchoolConvertedToAcademy, BillingService.on_school_converted),
    "subscription_started": (consumed.SubscriptionStarted, BillingService.on_subscription_started),
    "subscription_renewed": (consumed.SubscriptionRenewed, BillingService.on_subscription_renewed),
    "subscription_cancelled": (consumed.SubscriptionCancelled, BillingService.on_subscription_cancelled),
    "subscription_ended": (consumed.SubscriptionEnded, BillingService.on_subscription_ended),
    "attendance_recorded": (consumed.AttendanceRecorded, BillingService.on_attendance_recorded),
}

OLD, NEW = "110123", "149876"  # the maintained school and the academy it becomes
CHILTERN = {"id": "TR01234", "name": "Chiltern Learning Trust"}
VALE = {"id": "TR05678", "name": "Vale Academies Trust"}


@dataclasses.dataclass(frozen=True)
class Event:
    producer: str
    type: str
    payload: dict
    aggregate: str
    sequence: int
    event_id: str


class History:
    """Events in the order their producers committed them, numbered as the producers number them."""

    def __init__(self):
        self.events: list[Event] = []
        self._last: dict[tuple[str, str], int] = {}

    def add(self, producer: str, event_type: str, aggregate: str, payload: dict) -> Event:
        sequence = self._last[(producer, aggregate)] = self._last.get((producer, aggregate), 0) + 1
        event = Event(producer, event_type, payload, aggregate, sequence, str(uuid.uuid4()))
        self.events.append(event)
        return event

    # -- as membership publishes (docs/events.md) -------------------------------------------------
    def joined(self, urn, name, joined_on, mat=None):
        return self.add("membership", "member_joined", f"school:{urn}", {
            "urn": urn, "dfe_number": f"825/{urn[-4:]}", "name": name, "kind": "school",
            "establishment_type": "academy_converter" if mat else "community", "phase": "primary",
            "is_academy": mat is not None, "mat": mat, "local_authority": "Buckinghamshire",
            "postcode": "HP22 4LR", "number_on_roll": 210, "census_date": "2025-10-02", "joined_on": joined_on})

    def details_changed(self, urn, effective_date, changes, name, is_academy, mat):
        return self.add("membership", "member_details_changed", f"school:{urn}", {
            "urn": urn, "effective_date": effective_date, "changes": changes, "name": name,
            "establishment_type": "academy_converter" if is_academy else "community", "phase": "primary",
            "is_academy": is_academy, "mat": mat, "local_authority": "Buckinghamshire", "postcode": "HP22 4LR"})

    def census(self, urn, census_date, old, new):
        return self.add("membership", "census_recorded", f"school:{urn}", {
            "urn": urn, "census_date": census_date, "old_number_on_roll": old, "number_on_roll": new})

    def converted(self, old, old_name, new, new_name, mat, day):
        return self.add("membership", "school_converted_to_academy", f"school:{old}", {
            "conversion_date": day, "predecessor": {"urn": old, "dfe_number": f"825/{old[-4:]}", "name": old_name},
            "successor": {"urn": new, "dfe_number": f"825/{new[-4:]}", "name": new_name,
                          "establishment_type": "academy_converter", "phase": "primary",
                          "local_authority": "Buckinghamshire", "postcode": "HP22 4LR", "number_on_roll": 214,
                          "census_date": "2026-10-01"},
            "mat": mat})

    def left(self, urn, name, effective_date, reason="resigned"):
        return self.add("membership", "member_left", f"school:{urn}",
                        {"urn": urn, "name": name, "effective_date": effective_date, "reason": reason})

    # -- as the catalogue publishes -----------------------------------------------------------------
    def started(self, sid, urn, name, code, price, start, end, mat=None, continues=None, renewal_of=None):
        payload = {
            "subscription_id": sid, "urn": urn, "school_name": name, "is_academy": mat is not None, "mat": mat,
            "payer_type": "academy" if mat else "maintained", "offering_code": code,
            "offering_name": {"SI-CORE": "School improvement core offer", "GOV-TRAIN": "Governor training"}[code],
            "service_area": "school_improvement" if code == "SI-CORE" else "governance",
            "vat_treatment": "standard", "edition_year": int(start[:4]), "period_start": start, "period_end": end,
            "years": 1, "quantity": 1, "annual_price_pence": price, "price_breakdown": [],
            "census": {"date": "2025-10-02", "number_on_roll": 210}, "po_number": None, "purchased_on": start,
            "entitlements": [], "continues_subscription_id": continues or renewal_of}
        if renewal_of:
            return self.add("catalogue", "subscription_renewed", f"school:{urn}", {**payload, "renewal_of": renewal_of})
        return self.add("catalogue", "subscription_started", f"school:{urn}", payload)

    def cancelled(self, sid, urn, cancelled_on, effective_date):
        return self.add("catalogue", "subscription_cancelled", f"school:{urn}", {
            "subscription_id": sid, "urn": urn, "cancelled_on": cancelled_on, "effective_date": effective_date,
            "reason": "budget"})

    def ended(self, sid, urn, effective_date, reason):
        return self.add("catalogue", "subscription_ended", f"school:{urn}", {
            "subscription_id": sid, "urn": urn, "effective_date": effective_date, "reason": reason})

    # -- as scheduling publishes --------------------------------------------------------------------
    def attended(self, urn, day, chargeable=True):
        return self.add("scheduling", "attendance_recorded", urn, {
            "attendance_id": str(uuid.uuid4()), "booking_id": str(uuid.uuid4()), "session_id": str(uuid.uuid4()),
            "course_code": "SENCO-NET", "offering_code": None, "service_area": "inclusion", "urn": urn,
            "contact_id": str(uuid.uuid4()), "session_date": day, "attended": True, "chargeable": chargeable,
            "price_basis": "non_subscriber" if chargeable else "free", "unit_price_pence": 12500 if chargeable else 0,
            "vat_treatment": "exempt"})


def school_history() -> list[Event]:
    """Wing Primary: joins, is renamed (and the name corrected the same day), buys two SLAs, cancels one,
    a census, attendance; converts on 1 January 2027 into Chiltern (the catalogue ends its SLA and carries
    it on for the academy); the academy renews, moves to Vale from 1 April, cancels its renewal from
    March 2028 and then leaves from January 2028 (the catalogue ends the renewal from the leaving)."""
    h = History()
    h.joined(OLD, "Wing Primary School", "2019-09-01")
    h.details_changed(OLD, "2026-01-01", {"name": {"old": "Wing Primary School", "new": "Wing CE School"}},
                      "Wing CE School", False, None)
    h.started("sla-core", OLD, "Wing CE School", "SI-CORE", 365000, "2026-04-01", "2027-03-31")
    h.started("sla-gov", OLD, "Wing CE School", "GOV-TRAIN", 120000, "2026-04-01", "2027-03-31")
    h.details_changed(OLD, "2026-01-01", {"name": {"old": "Wing CE School", "new": "Wing C of E School"}},
                      "Wing C of E School", False, None)
    h.attended(OLD, "2026-06-10")
    h.cancelled("sla-gov", OLD, "2026-09-20", "2026-10-01")
    h.census(OLD, "2026-10-01", 210, 214)
    h.attended(OLD, "2026-11-05", chargeable=False)
    h.converted(OLD, "Wing C of E School", NEW, "Wing Academy", CHILTERN, "2027-01-01")
    h.ended("sla-core", OLD, "2027-01-01", "converted")
    h.started("sla-core-academy", NEW, "Wing Academy", "SI-CORE", 365000, "2027-01-01", "2027-03-31",
              mat=CHILTERN, continues="sla-core")
    h.attended(NEW, "2027-03-10")
    h.started("sla-core-renewed", NEW, "Wing Academy", "SI-CORE", 372000, "2027-04-01", "2028-03-31",
              mat=CHILTERN, renewal_of="sla-core-academy")
    h.details_changed(NEW, "2027-04-01", {"mat": {"old": CHILTERN, "new": VALE}}, "Wing Academy", True, VALE)
    h.cancelled("sla-core-renewed", NEW, "2027-11-15", "2028-03-01")
    h.left(NEW, "Wing Academy", "2028-01-01")
    h.ended("sla-core-renewed", NEW, "2028-01-01", "left")
    return h.events


HISTORY = school_history()
CONSUMED = [e for e in HISTORY if e.type in CONSUMERS]  # billing does not read census_recorded


class Books:
    """Billing's database, fed event by event as its consumers would be."""

    def __init__(self, database: Database):
        self.database = database

    def deliver(self, event: Event) -> bool:
        """Handle `event` as the service's consumer does; False if the inbox refused it as a duplicate."""
        schema, method = CONSUMERS[event.type]
        envelope = Envelope.new(type=event.type, payload=event.payload, producer=event.producer,
                                operator="bucks-learning-trust", aggregate=event.aggregate, sequence=event.sequence)
        received = ReceivedEvent(envelope=dataclasses.replace(envelope, event_id=event.event_id),
                                 payload=schema().load(event.payload))
        if takes_batches(method):  # a batched handler: a batch of one, skipped if already handled
            batch = EventBatch([received])
            method(types.SimpleNamespace(uow=BatchUnitsOfWork(self.database, PRODUCER, outbox, inbox, batch,
                                                              lambda: None)), batch)
            return not batch.already_handled
        worker = types.SimpleNamespace(uow=UnitsOfWork(self.database, PRODUCER, outbox, inbox,
                                                       Origin(event=received), lambda: None))
        try:
            method(worker, received)
        except EventAlreadyHandled:
            return False
        return True

    def state(self) -> dict:
        """Everything billing keeps from the events, without generated ids and timestamps."""
        with self.database.reader() as session:
            member_rows = sorted(tuple(r._mapping.items()) for r in session.execute(select(members)))
            standings = sorted(tuple(r._mapping.items()) for r in session.execute(select(member_affiliations)))
            slas = sorted(tuple((k, json.loads(v) if k == "terms" else v) for k, v in r._mapping.items())
                          for r in session.execute(select(subscriptions)))
            rows = [dict(r._mapping) for r in session.execute(select(charges))]
        by_id = {r["id"]: r for r in rows}

        def identity(row):  # what a charge is, without its generated id
            return (row["source"], row["subscription_id"], row["attendance_id"], row["period_start"])

        books = sorted(
            (row["kind"], identity(by_id[row["credits_charge_id"]]) if row["credits_charge_id"] else identity(row),
             tuple((k, v) for k, v in sorted(row.items()) if k not in ("id", "credits_charge_id", "document_id")))
            for row in rows)
        return {"members": member_rows, "standings": standings, "subscriptions": slas, "charges": books}

    def charges(self, **where) -> list[dict]:
        with self.database.reader() as session:
            query = select(charges).order_by(charges.c.kind, charges.c.period_start)
            for column, value in where.items():
                query = query.where(charges.c[column] == value)
            return [dict(r._mapping) for r in session.execute(query)]

    def published(self, event_type: str) -> list[dict]:
        with self.database.reader() as session:
            query = select(outbox.c.body).where(outbox.c.event_type == event_type).order_by(outbox.c.id)
            return [json.loads(body)["payload"] for body in session.execute(query).scalars()]

    def member(self, urn) -> dict | None:
        with self.database.reader() as session:
            row = session.execute(select(members).where(members.c.urn == urn)).first()
        return dict(row._mapping) if row else None


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """One migrated database file, copied for each delivery order (migrating each time is the slow part)."""
    folder = tmp_path_factory.mktemp("billing_order")
    with scratch_database("sqlite", folder, "template", migrations="billing:migrations") as database:
        path = database.engine.url.database
    return path


@pytest.fixture
def fresh_books(template, tmp_path):
    opened = []

    def make() -> Books:
        path = tmp_path / f"billing_{uuid.uuid4().hex[:8]}.db"
        shutil.copyfile(template, path)
        database = Database(f"sqlite:///{path}")
        opened.append(database)
        return Books(database)

    yield make
    for database in opened:
        database.dispose()


def deliver_all(books: Books, events) -> Books:
    for event in events:
        books.deliver(event)
    return books


@pytest.fixture(scope="module")
def in_order(template, tmp_path_factory) -> dict:
    path = tmp_path_factory.mktemp("billing_in_order") / "billing.db"
    shutil.copyfile(template, path)
    database = Database(f"sqlite:///{path}")
    try:
        return deliver_all(Books(database), CONSUMED).state()
    finally:
        database.dispose()


class TestAnyDeliveryOrder:
    def test_the_in_order_books_are_the_ones_worked_out_by_hand(self, in_order, fresh_books):
        books = deliver_all(fresh_books(), CONSUMED)
        found = [(c["kind"], c["subscription_id"] or c["attendance_id"] and "attendance", c["period_start"].isoformat(),
                  c["amount_pence"], c["payer_kind"], c["payer_id"], c["status"]) for c in books.charges()]
        assert sorted(found) == sorted([
            ("charge", "sla-core", "2026-04-01", 365000, "school", OLD, "uninvoiced"),
            ("charge", "sla-gov", "2026-04-01", 120000, "school", OLD, "uninvoiced"),
            ("charge", "attendance", "2026-06-10", 12500, "school", OLD, "uninvoiced"),
            ("charge", "sla-core-academy", "2027-01-01", 90000, "mat", CHILTERN["id"], "uninvoiced"),
            ("charge", "attendance", "2027-03-10", 12500, "mat", CHILTERN["id"], "uninvoiced"),
            ("charge", "sla-core-renewed", "2027-04-01", 372000, "mat", VALE["id"], "uninvoiced"),
            # 182 of 365 days of 120,000 = 59,835.6; 90 of 365 days of 365,000; 91 of 366 days of 372,000 = 92,491.8
            ("credit", None, "2026-10-01", 59836, "school", OLD, "uninvoiced"),
            ("credit", None, "2027-01-01", 90000, "school", OLD, "uninvoiced"),
            ("credit", None, "2028-01-01", 92492, "mat", VALE["id"], "uninvoiced"),
        ])
        old, new = books.member(OLD), books.member(NEW)
        assert (old["name"], old["is_academy"], old["mat_id"], old["left_on"].isoformat()) == (
            "Wing C of E School", False, None, "2027-01-01")
        assert (new["name"], new["is_academy"], new["mat_id"], new["left_on"].isoformat()) == (
            "Wing Academy", True, VALE["id"], "2028-01-01")
        assert books.state() == in_order

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(data=st.data())
    def test_every_delivery_order_with_duplicates_gives_the_in_order_books(self, in_order, fresh_books, data):
        duplicates = data.draw(st.lists(st.sampled_from(CONSUMED), max_size=6), label="duplicates")
        order = data.draw(st.permutations(CONSUMED + duplicates), label="delivery order")
        books = fresh_books()
        applied = [books.deliver(event) for event in order]
        assert sum(applied) == len(CONSUMED)  # each event once; every copy after the first refused
        assert books.state() == in_order


class TestOrderExamples:
    """Each failed before billing compared sequence numbers."""

    def test_member_left_before_member_joined_stays_left(self, fresh_books):
        h = History()
        joined = h.joined(OLD, "Wing Primary School", "2019-09-01")
        left = h.left(OLD, "Wing Primary School", "2027-04-01")
        books = fresh_books()
        books.deliver(left)
        books.deliver(joined)
        member = books.member(OLD)
        assert (member["name"], member["left_on"].isoformat()) == ("Wing Primary School", "2027-04-01")

    def test_an_older_details_change_does_not_overwrite_a_newer_one(self, fresh_books):
        # Both from 1 September 2026: the academy joined Chiltern, then membership corrected it to Vale.
        h = History()
        joined = h.joined(NEW, "Wing Academy", "2020-09-01", mat=None)
        chiltern = h.details_changed(NEW, "2026-09-01", {"mat": {"old": None, "new": CHILTERN}}, "Wing Academy",
                                     True, CHILTERN)
        vale = h.details_changed(NEW, "2026-09-01", {"mat": {"old": CHILTERN, "new": VALE}}, "Wing Academy",
                                 True, VALE)
        bought = h.started("sla-1", NEW, "Wing Academy", "SI-CORE", 365000, "2026-09-01", "2027-08-31", mat=VALE)
        books = fresh_books()
        for event in (joined, vale, chiltern, bought):
            books.deliver(event)
        assert books.member(NEW)["mat_id"] == VALE["id"]
        [charge] = books.charges(subscription_id="sla-1")
        assert (charge["payer_kind"], charge["payer_id"]) == ("mat", VALE["id"])

    def test_a_mat_change_consumed_after_a_charge_dated_from_it_moves_the_charge(self, fresh_books):
        h = History()
        joined = h.joined(NEW, "Wing Academy", "2020-09-01", mat=CHILTERN)
        moved = h.details_changed(NEW, "2026-09-01", {"mat": {"old": CHILTERN, "new": VALE}}, "Wing Academy",
                                  True, VALE)
        bought = h.started("sla-1", NEW, "Wing Academy", "SI-CORE", 365000, "2026-09-01", "2027-08-31", mat=VALE)
        cancelled = h.cancelled("sla-1", NEW, "2026-12-01", "2027-01-01")
        in_order = deliver_all(fresh_books(), (joined, moved, bought, cancelled))
        late = deliver_all(fresh_books(), (joined, bought, cancelled, moved))
        assert {(c["kind"], c["payer_id"]) for c in late.charges()} == {("charge", VALE["id"]), ("credit", VALE["id"])}
        assert late.state() == in_order.state()
        # published to Chiltern when charged, then again (same charge) to Vale when the move arrived
        assert [p["payer"]["id"] for p in late.published("charge_recorded")] == [CHILTERN["id"], VALE["id"]]
        assert len({p["charge_id"] for p in late.published("charge_recorded")}) == 1

    @pytest.mark.parametrize("order", [("ended", "started", "cancelled"), ("cancelled", "ended", "started"),
                                       ("ended", "cancelled", "started")])
    def test_ends_consumed_before_the_start_charge_as_in_order(self, fresh_books, order):
        # In order: started; cancelled from 1 March 2028; then the school leaves and the catalogue ends
        # the SLA from 1 January 2028: credited from 1 January, 91 of 366 days of 372,000.
        h = History()
        joined = h.joined(OLD, "Wing Primary School", "2019-09-01")
        events = {"started": h.started("sla-1", OLD, "Wing Primary School", "SI-CORE", 372000, "2027-04-01",
                                       "2028-03-31"),
                  "cancelled": h.cancelled("sla-1", OLD, "2027-11-15", "2028-03-01"),
                  "ended": h.ended("sla-1", OLD, "2028-01-01", "left")}
        in_order = deliver_all(fresh_books(), (joined, events["started"], events["cancelled"], events["ended"]))
        books = deliver_all(fresh_books(), (joined, *(events[name] for name in order)))
        found = [(c["kind"], c["period_start"].isoformat(), c["amount_pence"]) for c in books.charges()]
        assert found == [("charge", "2027-04-01", 372000), ("credit", "2028-01-01", 92492)]
        assert books.state() == in_order.state()
