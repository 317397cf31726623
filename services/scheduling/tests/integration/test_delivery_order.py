"""Scheduling's copies end the same whatever order upstream events arrive in (on SQLite, no broker).

Events are delivered as `consumes` would: the payload loaded by the handler's own schema, a
`ReceivedEvent` bound to the unit of work (so the inbox stops duplicates), the service's own
entrypoint method called. Each producer numbers one aggregate's events as its unit of work does.
"""
from __future__ import annotations

import collections
import datetime as dt
import inspect
import shutil
import tempfile
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nameko.extensions import ENTRYPOINT_EXTENSIONS_ATTR
from nameko.testing.services import worker_factory

from scheduling.adapters import tables
from scheduling.entrypoints.service import SchedulingService
from scheduling.messages.published import PUBLISHED
from scheduling.service_layer import handlers
from shared.batch_consumer import takes_batches
from shared.batch_unit_of_work import BatchUnitsOfWork, EventBatch
from shared.consumer import ReliableEventHandler
from shared.db import Database
from shared.envelope import Envelope, ReceivedEvent
from shared.unit_of_work import EventAlreadyHandled, Origin, Producer, UnitsOfWork

HANDLER_OF = {(entrypoint.source_service, entrypoint.event_type): (name, entrypoint.schema)
              for name, method in inspect.getmembers(SchedulingService, inspect.isfunction)
              for entrypoint in getattr(method, ENTRYPOINT_EXTENSIONS_ATTR, ())
              if isinstance(entrypoint, ReliableEventHandler)}
SCHEDULING = Producer("scheduling", "test-county", PUBLISHED)
# the tables upstream events write; their rows hold no generated ids or timestamps
COPIES = ("schools", "school_mats", "contacts", "contact_roles", "eligibility", "offerings", "edition_prices")


class Upstream:
    """A producer: numbers each aggregate's events 1, 2, 3... in the order it publishes them."""

    def __init__(self, name: str):
        self.name = name
        self.last = collections.Counter()

    def __call__(self, event_type: str, aggregate: str, payload: dict) -> Envelope:
        self.last[aggregate] += 1
        return Envelope.new(type=event_type, payload=payload, producer=self.name, operator="test-county",
                            aggregate=aggregate, sequence=self.last[aggregate])


def deliver(database: Database, envelope: Envelope):
    """One delivery through the service's own entrypoint; a duplicate is acked without effect."""
    method, schema = HANDLER_OF[(envelope.producer, envelope.type)]
    event = ReceivedEvent(envelope=envelope, payload=schema.load(envelope.payload))
    if takes_batches(getattr(SchedulingService, method)):  # a batched handler: a batch of one
        batch = EventBatch([event])
        service = worker_factory(SchedulingService, uow=BatchUnitsOfWork(database, SCHEDULING, tables.outbox,
                                                                         tables.inbox, batch, lambda: None))
        return getattr(service, method)(batch)
    service = worker_factory(SchedulingService, uow=UnitsOfWork(database, SCHEDULING, tables.outbox, tables.inbox,
                                                                Origin(event=event), lambda: None))
    try:
        return getattr(service, method)(event)
    except EventAlreadyHandled:
        return None


def state(database: Database, names=COPIES) -> dict[str, list]:
    with database.reader() as session:
        return {name: sorted((tuple(sorted(row._mapping.items())) for row in
                              session.execute(sa.select(tables.metadata.tables[name]))), key=repr)
                for name in names}


def units_of_work(database: Database) -> UnitsOfWork:
    return UnitsOfWork(database, SCHEDULING, tables.outbox, tables.inbox, Origin(correlation_id="test"), lambda: None)


# ------------------------------------------------------------------ one school's history
P, S = "140001", "150001"  # the maintained school and the academy it becomes
MAT = {"id": "TR01234", "name": "Chiltern Learning Trust"}
HEAD, BURSAR = str(uuid.uuid4()), str(uuid.uuid4())
PEER, DSL, CARRIED = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())


def details(urn: str, name: str, postcode: str, mat=None, establishment_type="community") -> dict:
    return {"name": name, "establishment_type": establishment_type, "phase": "primary", "is_academy": bool(mat),
            "mat": mat, "local_authority": "Buckinghamshire", "postcode": postcode}


def member_joined(urn: str, joined_on: str, number_on_roll: int = 210) -> dict:
    return {"urn": urn, "dfe_number": "825/2001", "kind": "school", **details(urn, f"School {urn}", "HP19 8AA"),
            "number_on_roll": number_on_roll, "census_date": "2024-10-03", "joined_on": joined_on}


def details_changed(urn: str, effective_date: str, changes: dict, **current) -> dict:
    return {"urn": urn, "effective_date": effective_date, "changes": changes, **details(urn, **current)}


def role(contact_id: str, urn: str, role_name: str, active: bool, name: str, effective_date: str) -> dict:
    return {"contact_id": contact_id, "urn": urn, "display_name": name, "role": role_name,
            "may_commit_spending": role_name == "head_teacher" and active, "active": active,
            "effective_date": effective_date}


def sla(subscription_id: str, urn: str, offering: str, start: str, end: str, places: int = 0,
        continues: str | None = None) -> dict:
    return {"subscription_id": subscription_id, "urn": urn, "school_name": f"School {urn}", "is_academy": urn == S,
            "mat": MAT if urn == S else None, "payer_type": "school", "offering_code": offering,
            "offering_name": offering, "service_area": "school_improvement", "vat_treatment": "standard",
            "edition_year": 2026, "period_start": start, "period_end": end, "years": 1, "quantity": 1,
            "annual_price_pence": 120000, "price_breakdown": [], "census": {"date": "2025-10-02", "number_on_roll": 218},
            "po_number": None, "purchased_on": "2026-03-02",
            "entitlements": [{"kind": "included_place", "quantity": places}] if places else [],
            "continues_subscription_id": continues}


def ending(subscription_id: str, urn: str, effective_date: str, reason: str) -> dict:
    return {"subscription_id": subscription_id, "urn": urn, "effective_date": effective_date, "reason": reason}


def school_history() -> list[Envelope]:
    """A maintained school's life as membership and catalogue publish it, in publishing order: it joins,
    is renamed, has a census, moves, has a head and a business manager, buys peer review and a DSL
    course SLA, cancels the latter, converts to an academy in a MAT (its head and peer review carried
    on), the academy is renamed and counted, the head's data is erased, and the academy leaves."""
    membership, catalogue = Upstream("membership"), Upstream("catalogue")
    school, academy = f"school:{P}", f"school:{S}"
    head, bursar = f"contact:{HEAD}", f"contact:{BURSAR}"
    return [
        membership("member_joined", school, member_joined(P, "2024-09-01")),
        catalogue("offering_published", "offering:DSL", {
            "offering_code": "DSL", "name": "DSL training", "service_area": "governance", "vat_treatment": "exempt",
            "description": "Designated safeguarding lead training", "provider": "test-county"}),
        catalogue("edition_priced", "offering:DSL", {
            "offering_code": "DSL", "edition_year": 2026, "on_sale": True, "pricing": {
                "model": "per_delegate", "subscriber_price_pence": 9000, "non_subscriber_price_pence": 15000},
            "entitlements": [{"kind": "included_place", "quantity": 2}]}),
        membership("contact_role_changed", head, role(HEAD, P, "head_teacher", True, "A. Head", "2024-09-01")),
        membership("contact_role_changed", bursar, role(BURSAR, P, "business_manager", True, "B. Bursar", "2024-09-01")),
        membership("member_details_changed", school, details_changed(
            P, "2025-09-01", {"name": {"old": f"School {P}", "new": "Haddenham Primary"}},
            name="Haddenham Primary", postcode="HP19 8AA")),
        membership("census_recorded", school, {"urn": P, "census_date": "2025-10-02", "old_number_on_roll": 210,
                                               "number_on_roll": 218}),
        catalogue("subscription_started", school, sla(PEER, P, "PEER-REVIEW", "2026-04-01", "2027-03-31")),
        catalogue("subscription_started", school, sla(DSL, P, "DSL", "2026-04-01", "2027-03-31", places=2)),
        catalogue("edition_priced", "offering:DSL", {
            "offering_code": "DSL", "edition_year": 2026, "on_sale": True, "pricing": {
                "model": "per_delegate", "subscriber_price_pence": 9500, "non_subscriber_price_pence": 16000},
            "entitlements": [{"kind": "included_place", "quantity": 2}]}),
        membership("contact_role_changed", bursar, role(BURSAR, P, "business_manager", False, "B. Bursar", "2026-07-31")),
        membership("member_details_changed", school, details_changed(
            P, "2026-08-01", {"postcode": {"old": "HP19 8AA", "new": "HP19 9BB"}},
            name="Haddenham Primary", postcode="HP19 9BB")),
        catalogue("subscription_cancelled", school, {**ending(DSL, P, "2026-11-01", "budget"),
                                                     "cancelled_on": "2026-10-01"}),
        membership("school_converted_to_academy", school, {
            "conversion_date": "2027-01-01",
            "predecessor": {"urn": P, "dfe_number": "825/2001", "name": "Haddenham Primary"},
            "successor": {"urn": S, "dfe_number": "825/4001", "name": "Haddenham Academy",
                          "establishment_type": "academy_converter", "phase": "primary",
                          "local_authority": "Buckinghamshire", "postcode": "HP19 9BB", "number_on_roll": 218,
                          "census_date": "2025-10-02"},
            "mat": MAT}),
        membership("contact_role_changed", head, role(HEAD, P, "head_teacher", False, "A. Head", "2027-01-01")),
        membership("contact_role_changed", head, role(HEAD, S, "head_teacher", True, "A. Head", "2027-01-01")),
        catalogue("subscription_ended", school, ending(PEER, P, "2027-01-01", "converted")),
        catalogue("subscription_started", academy, sla(CARRIED, S, "PEER-REVIEW", "2027-01-01", "2027-03-31",
                                                       continues=PEER)),
        membership("member_details_changed", academy, details_changed(
            S, "2027-02-01", {"name": {"old": "Haddenham Academy", "new": "Haddenham Primary Academy"}},
            name="Haddenham Primary Academy", postcode="HP19 9BB", mat=MAT, establishment_type="academy_converter")),
        membership("census_recorded", academy, {"urn": S, "census_date": "2026-10-01", "old_number_on_roll": 218,
                                                "number_on_roll": 225}),
        membership("contact_erased", head, {"contact_id": HEAD}),
        membership("member_left", academy, {"urn": S, "name": "Haddenham Primary Academy",
                                            "effective_date": "2027-03-01", "reason": "joined its MAT's own network"}),
        catalogue("subscription_ended", academy, ending(CARRIED, S, "2027-03-01", "left")),
    ]


HISTORY = school_history()


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """A migrated, empty database, copied for each run (migrating takes longer than a run)."""
    path = tmp_path_factory.mktemp("template") / "scheduling.db"
    database = Database(f"sqlite:///{path}")
    database.upgrade("scheduling:migrations")
    database.dispose()
    return path


def fresh(template: Path, folder: str) -> Database:
    path = Path(folder) / f"{uuid.uuid4().hex}.db"
    shutil.copyfile(template, path)
    return Database(f"sqlite:///{path}")


def run(template: Path, deliveries) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        database = fresh(template, folder)
        try:
            for envelope in deliveries:
                deliver(database, envelope)
            return state(database)
        finally:
            database.dispose()


@pytest.fixture(scope="module")
def in_order(template) -> dict:
    return run(template, HISTORY)


@st.composite
def deliveries(draw):
    """Every event once in a drawn order, and some drawn again (redelivered) at drawn places."""
    order = draw(st.permutations(HISTORY))
    for again in draw(st.lists(st.sampled_from(HISTORY), max_size=6)):
        order.insert(draw(st.integers(0, len(order))), again)
    return order


class TestAnyDeliveryOrder:
    def test_the_history_in_order_ends_as_the_story_says(self, in_order):
        schools = {dict(row)["urn"]: dict(row) for row in in_order["schools"]}
        assert (schools[P]["name"], schools[P]["postcode"], schools[P]["number_on_roll"]) == (
            "Haddenham Primary", "HP19 9BB", 218)
        assert (schools[P]["active"], schools[P]["closed_on"]) == (False, dt.date(2027, 1, 1))
        assert (schools[S]["name"], schools[S]["mat_id"], schools[S]["number_on_roll"], schools[S]["predecessor_urn"]) == (
            "Haddenham Primary Academy", MAT["id"], 225, P)
        assert (schools[S]["active"], schools[S]["closed_on"]) == (False, dt.date(2027, 3, 1))
        contacts = {dict(row)["contact_id"]: dict(row) for row in in_order["contacts"]}
        assert (contacts[HEAD]["display_name"], contacts[HEAD]["role"]) == (None, None)
        assert (contacts[BURSAR]["urn"], contacts[BURSAR]["active"]) == (S, False)
        slas = {dict(row)["subscription_id"]: dict(row) for row in in_order["eligibility"]}
        assert slas[DSL]["period_end"] == dt.date(2026, 10, 31) and slas[DSL]["included_places"] == 2
        assert slas[PEER]["period_end"] == dt.date(2026, 12, 31)
        assert slas[CARRIED]["period_end"] == dt.date(2027, 2, 28)
        (price,) = in_order["edition_prices"]
        assert dict(price)["subscriber_price_pence"] == 9500  # the re-pricing

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                      HealthCheck.too_slow])
    @given(order=deliveries())
    def test_every_order_and_redelivery_ends_in_the_in_order_state(self, template, in_order, order):
        assert run(template, order) == in_order


# ------------------------------------------------------------------ focused cases
@pytest.fixture
def database(template, tmp_path):
    found = fresh(template, str(tmp_path))
    yield found
    found.dispose()


@pytest.fixture
def other(template, tmp_path):
    """A second database, for the same events in another order."""
    found = fresh(template, str(tmp_path))
    yield found
    found.dispose()


def school_row(database: Database, urn: str) -> dict:
    return {k: v for row in state(database, ["schools"])["schools"] for k, v in row if dict(row)["urn"] == urn}


class TestMemberLeftBeforeJoined:
    def events(self):
        membership = Upstream("membership")
        joined = membership("member_joined", f"school:{P}", member_joined(P, "2024-09-01"))
        left = membership("member_left", f"school:{P}", {"urn": P, "name": f"School {P}", "effective_date": "2027-01-01",
                                                         "reason": "closing"})
        return joined, left

    def test_the_school_stays_left_as_in_order(self, database, other):
        joined, left = self.events()
        for envelope in (left, joined):
            deliver(database, envelope)
        for envelope in (joined, left):
            deliver(other, envelope)
        row = school_row(database, P)
        assert (row["active"], row["closed_on"]) == (False, dt.date(2027, 1, 1))
        assert state(database) == state(other)

    def test_no_longer_a_member_from_the_date_so_nothing_is_planned_or_booked_with_it(self, database):
        joined, left = self.events()
        deliver(database, left)
        deliver(database, joined)
        uows = units_of_work(database)
        with pytest.raises(handlers.Refused) as refused:
            handlers.create_network(uows(), "Primary heads", [P], [], None)
        assert refused.value.details["rule"] == "active_member"
        handlers.create_course(uows(), {"course_code": "C1", "title": "Phonics", "offering_code": None,
                                        "service_area": "school_improvement", "vat_treatment": "standard"})
        deliver(database, Upstream("membership")("contact_role_changed", f"contact:{HEAD}",
                                                  role(HEAD, P, "head_teacher", True, "A. Head", "2024-09-01")))
        before = handlers.add_session(uows(), "C1", dt.date(2026, 12, 9), 10, 2)
        after = handlers.add_session(uows(), "C1", dt.date(2027, 1, 13), 10, 2)
        assert handlers.book(uows(), before["session_id"], P, HEAD, dt.date(2026, 11, 2))["status"] == "confirmed"
        with pytest.raises(handlers.Refused) as refused:
            handlers.book(uows(), after["session_id"], P, HEAD, dt.date(2026, 11, 2))
        assert refused.value.details["rule"] == "member_school"

    def test_the_leaving_alone_makes_no_member(self, database):
        _joined, left = self.events()
        deliver(database, left)
        uows = units_of_work(database)
        with pytest.raises(handlers.NotKnown):
            handlers.create_network(uows(), "Primary heads", [P], [], None)
        with pytest.raises(handlers.NotKnown):
            handlers.set_inset_days(uows(), P, 2026, [dt.date(2026, 11, 20)])


class TestReactionsToLeaving:
    """A member of a network and a peer-review cycle leaves; membership had renamed it just before.
    Delivered the other way round, the leaving's reactions (its later meeting moved, its hosted review
    cancelled, its reviewers replaced) end exactly as in order, and the older rename revives nothing."""

    A, B, C, X = "140010", "140011", "140013", "140012"

    def set_up(self, database) -> tuple[Envelope, Envelope]:
        membership, catalogue = Upstream("membership"), Upstream("catalogue")
        for urn in (self.A, self.B, self.C, self.X):
            deliver(database, membership("member_joined", f"school:{urn}", member_joined(urn, "2020-09-01")))
            deliver(database, catalogue("subscription_started", f"school:{urn}",
                                        sla(str(uuid.uuid4()), urn, "PEER-REVIEW", "2026-09-01", "2027-08-31")))
        uows = units_of_work(database)
        network = handlers.create_network(uows(), "Primary heads", [self.A, self.B, self.X], [], None)
        handlers.plan_meetings(uows(), network["network_id"], 2026)
        for urn in (self.A, self.B, self.C, self.X):
            handlers.register_reviewer(uows(), f"lead-{urn}", urn, True, True, [], dt.date(2026, 6, 1))
            handlers.register_reviewer(uows(), f"peer-{urn}", urn, True, False, [], dt.date(2026, 6, 1))
        handlers.plan_cycle(uows(), 2026, "PEER-REVIEW", 2, 2, 1.0,
                            run=lambda plan, problem, time_limit: plan(problem, time_limit=time_limit, use_solver=False))
        renamed = membership("member_details_changed", f"school:{self.X}", details_changed(
            self.X, "2026-12-01", {"name": {"old": f"School {self.X}", "new": "Renamed"}}, name="Renamed",
            postcode="HP19 8AA"))
        left = membership("member_left", f"school:{self.X}", {"urn": self.X, "name": "Renamed",
                                                              "effective_date": "2027-01-01", "reason": "closing"})
        return renamed, left

    def published(self, database) -> list:
        with database.reader() as session:
            rows = session.execute(sa.select(tables.outbox.c.event_type, tables.outbox.c.body)).all()
        return sorted((kind, repr(Envelope.from_dict(body).payload)) for kind, body in rows
                      if kind.endswith("_rescheduled"))

    def test_end_as_in_order(self, template, tmp_path):
        database = fresh(template, str(tmp_path))
        renamed, left = self.set_up(database)
        database.dispose()
        copy = tmp_path / "copy.db"
        shutil.copyfile(database.url.database, copy)
        in_order, reversed_ = database, Database(f"sqlite:///{copy}")
        try:
            for envelope in (renamed, left):
                deliver(in_order, envelope)
            for envelope in (left, renamed):
                deliver(reversed_, envelope)
            everything = [*COPIES, "networks", "meetings", "peer_reviews", "reviewers"]
            assert state(reversed_, everything) == state(in_order, everything)
            assert self.published(reversed_) == self.published(in_order) != []
            with reversed_.reader() as session:
                assert handlers.repo.school(session, self.X)["active"] is False
                hosts_from_date = [m["host_urn"] for m in handlers.repo.meetings(session)
                                   if m["day"] >= dt.date(2027, 1, 1)]
            assert hosts_from_date and self.X not in hosts_from_date
        finally:
            in_order.dispose()
            reversed_.dispose()


class TestErasureThenOlderRoleChange:
    def test_the_tombstone_keeps_name_and_role_away(self, database, other):
        membership = Upstream("membership")
        aggregate = f"contact:{HEAD}"
        appointed = membership("contact_role_changed", aggregate, role(HEAD, P, "head_teacher", True, "A. Head",
                                                                        "2024-09-01"))
        erased = membership("contact_erased", aggregate, {"contact_id": HEAD})
        deliver(database, erased)
        deliver(database, appointed)
        found = {k: v for k, v in state(database, ["contacts"])["contacts"][0]}
        assert (found["display_name"], found["role"], found["urn"], found["active"], found["erased"]) == (
            None, None, None, False, True)
        for envelope in (appointed, erased):
            deliver(other, envelope)
        assert state(database) == state(other)
        with units_of_work(database).read() as session:
            assert handlers.repo.contact(session, HEAD) is None  # nobody to book for or invite


class TestDetailsChanges:
    def test_an_older_change_does_not_overwrite_a_newer_one_but_keeps_its_dated_mat(self, database, other):
        membership = Upstream("membership")
        aggregate = f"school:{P}"
        joined = membership("member_joined", aggregate, member_joined(P, "2024-09-01"))
        into_mat = membership("member_details_changed", aggregate, details_changed(
            P, "2026-09-01", {"mat": {"old": None, "new": MAT}}, name="Haddenham Primary", postcode="HP19 8AA",
            mat=MAT, establishment_type="foundation"))
        renamed = membership("member_details_changed", aggregate, details_changed(
            P, "2027-01-01", {"name": {"old": "Haddenham Primary", "new": "Haddenham CE Primary"}},
            name="Haddenham CE Primary", postcode="HP19 8AA", mat=MAT, establishment_type="foundation"))
        for envelope in (joined, renamed, into_mat):
            deliver(database, envelope)
        row = school_row(database, P)
        assert (row["name"], row["mat_id"], row["establishment_type"]) == ("Haddenham CE Primary", MAT["id"], "foundation")
        with units_of_work(database).read() as session:
            assert handlers.repo.mat_history(session)[P] == (
                (dt.date(2024, 9, 1), None), (dt.date(2026, 9, 1), MAT["id"]), (dt.date(2027, 1, 1), MAT["id"]))
        for envelope in (joined, into_mat, renamed):
            deliver(other, envelope)
        assert state(database) == state(other)

    def test_a_change_before_the_joining_makes_a_partial_copy_that_is_no_member(self, database):
        membership = Upstream("membership")
        aggregate = f"school:{P}"
        joined = membership("member_joined", aggregate, member_joined(P, "2024-09-01"))
        renamed = membership("member_details_changed", aggregate, details_changed(
            P, "2025-09-01", {"name": {"old": f"School {P}", "new": "Haddenham Primary"}},
            name="Haddenham Primary", postcode="HP19 8AA"))
        deliver(database, renamed)
        uows = units_of_work(database)
        with pytest.raises(handlers.NotKnown):
            handlers.create_network(uows(), "Primary heads", [P], [], None)
        with uows.read() as session, pytest.raises(handlers.NotKnown):
            handlers.match_coaching(session, [{"mentor_id": "m1", "urn": P, "phase": "primary", "strengths": [],
                                               "capacity": 1}], [])
        deliver(database, joined)
        row = school_row(database, P)
        assert (row["name"], row["active"]) == ("Haddenham Primary", True)
        assert handlers.create_network(uows(), "Primary heads", [P], [], None)["member_urns"] == [P]


class TestSubscriptionEndingBeforeStart:
    def test_eligibility_and_entitlements_are_as_in_order(self, database, other):
        catalogue = Upstream("catalogue")
        aggregate = f"school:{P}"
        started = catalogue("subscription_started", aggregate, sla(DSL, P, "DSL", "2026-04-01", "2027-03-31", places=2))
        cancelled = catalogue("subscription_cancelled", aggregate, {**ending(DSL, P, "2026-11-01", "budget"),
                                                                    "cancelled_on": "2026-10-01"})
        deliver(database, cancelled)
        with units_of_work(database).read() as session:
            assert handlers.repo.eligibility_of(session, P) == []  # an ending alone is no SLA
        deliver(database, started)
        for envelope in (started, cancelled):
            deliver(other, envelope)
        assert state(database) == state(other)
        with units_of_work(database).read() as session:
            (held,) = handlers.repo.eligibility_of(session, P)
        assert (held["period_end"], held["included_places"]) == ("2026-10-31", 2)


class TestEventsWithoutOrder:
    def test_are_applied_as_they_come_as_before_sequencing(self, database):
        joined = Envelope.new(type="member_joined", payload=member_joined(P, "2024-09-01"), producer="membership",
                              operator="test-county")
        left = Envelope.new(type="member_left", payload={"urn": P, "name": "x", "effective_date": "2027-01-01",
                                                         "reason": "closing"}, producer="membership",
                            operator="test-county")
        deliver(database, joined)
        deliver(database, left)
        row = school_row(database, P)
        assert (row["active"], row["closed_on"], row["lifecycle_sequence"]) == (False, dt.date(2027, 1, 1), 0)

