"""Membership's events in any delivery order, duplicated, on the real databases (SQLite and PostgreSQL).

Membership numbers each school's and each person's events; the catalogue receives them on one
queue per event type, with retries, so in any order. Whatever the order, the catalogue's copy of
members and contacts, and the SLAs a leaving or a conversion ends or carries on, must end as
they would have had the events arrived in the order membership numbered them.

Each event goes through the entrypoint as the broker would hand it over: the envelope's
payload loaded by the handler's own schema, the handler method of `CatalogueService` called
with a unit of work whose origin is that event (so a duplicate is stopped by the inbox).
"""
from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import inspect
import itertools
import uuid
from decimal import Decimal

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from nameko.extensions import ENTRYPOINT_EXTENSIONS_ATTR
from nameko.testing.services import worker_factory

from shared.batch_consumer import takes_batches
from shared.batch_unit_of_work import BatchUnitsOfWork, EventBatch
from shared.consumer import ReliableEventHandler
from shared.db import scratch_database
from shared.envelope import Envelope, ReceivedEvent
from shared.unit_of_work import EventAlreadyHandled, Origin, Producer, UnitOfWork

from catalogue.adapters import repository
from catalogue.adapters.tables import contacts, erased_contacts, inbox, members, outbox, subscriptions
from catalogue.domain import model
from catalogue.entrypoints.service import CatalogueService
from catalogue.messages.published import PUBLISHED
from catalogue.service_layer import commands, handlers


def offering_command(edition: dict | None = None, **fields) -> commands.PublishOffering:
    """A `PublishOffering` as its request schema loads it: the edition a `PriceEdition`."""
    return commands.PublishOffering(**fields, edition=commands.PriceEdition(**edition) if edition else None)


D = dt.date
PRODUCER = Producer(service="catalogue", operator="test-operator", schemas=PUBLISHED)
EXAMPLES = {"sqlite": 60, "postgresql": 8}  # PostgreSQL once, cheaply: the rule is the same code


def _entrypoints() -> dict[str, tuple[str, object]]:
    """event type -> (handler method name, the handler's own schema), read off the service class."""
    found = {}
    for name, method in inspect.getmembers(CatalogueService, inspect.isfunction):
        for entrypoint in getattr(method, ENTRYPOINT_EXTENSIONS_ATTR, ()):
            if isinstance(entrypoint, ReliableEventHandler):
                found[entrypoint.event_type] = (name, entrypoint.schema)
    return found


ENTRYPOINTS = _entrypoints()


def deliver(database, envelope: Envelope) -> bool:
    """Hand one membership event to the catalogue as the broker would; False if the inbox refused
    it as a duplicate."""
    method, schema = ENTRYPOINTS[envelope.type]
    event = ReceivedEvent(envelope=envelope, payload=schema.load(envelope.payload))
    if takes_batches(getattr(CatalogueService, method)):  # a batched handler: a batch of one
        batch = EventBatch([event])
        worker = worker_factory(CatalogueService, uow=BatchUnitsOfWork(database, PRODUCER, outbox, inbox, batch,
                                                                       lambda: None))
        getattr(worker, method)(batch)
        return not batch.already_handled
    worker = worker_factory(CatalogueService, uow=lambda: UnitOfWork(database, PRODUCER, outbox, inbox,
                                                                     Origin(event=event)))
    try:
        getattr(worker, method)(event)
    except EventAlreadyHandled:
        return False
    return True


# -- one school's life, as membership numbers it ------------------------------------------------
_urns = itertools.count(210000)


@dataclasses.dataclass(frozen=True)
class Ids:
    """The identities one history is about; fresh for every run so runs share a database."""

    school: str
    academy: str
    head: str
    bursar: str

    @classmethod
    def fresh(cls) -> "Ids":
        return cls(str(next(_urns)), str(next(_urns)), str(uuid.uuid4()), str(uuid.uuid4()))

    def names(self) -> dict[str, str]:
        return {self.school: "SCHOOL", self.academy: "ACADEMY", self.head: "HEAD", self.bursar: "BURSAR"}


MAT = {"id": "TR01234", "name": "Great Learners Trust"}


def history(ids: Ids) -> list[Envelope]:
    """A maintained infant school's life in membership's commit order: it joins with its head teacher
    and business manager, records two censuses and two changes of details, the business manager
    leaves the post, the school converts to an academy (the head carried over), the academy changes
    its name, records its census and hires the business manager back, the head's data is erased,
    and the academy leaves. Each aggregate's numbers are strictly increasing, from 1."""
    numbers: collections.Counter = collections.Counter()
    events = []

    def publish(event_type: str, aggregate: str, payload: dict) -> None:
        numbers[aggregate] += 1
        events.append(Envelope.new(type=event_type, payload=payload, producer="membership",
                                   operator="bucks-learning-trust", aggregate=aggregate, sequence=numbers[aggregate]))

    school, academy = f"school:{ids.school}", f"school:{ids.academy}"
    head, bursar = f"contact:{ids.head}", f"contact:{ids.bursar}"

    def role(contact_id, urn, role_name, effective, *, active=True, spends=True):
        return {"contact_id": contact_id, "urn": urn, "display_name": "Sam Head" if contact_id == ids.head
                else "Alex Bursar", "role": role_name, "may_commit_spending": spends, "active": active,
                "effective_date": effective}

    def details(urn, effective, name, establishment_type, *, mat=None):
        return {"urn": urn, "effective_date": effective, "changes": {"name": {"old": "-", "new": name}},
                "name": name, "establishment_type": establishment_type, "phase": "primary",
                "is_academy": mat is not None, "mat": mat, "local_authority": "Buckinghamshire",
                "postcode": "HP17 8ET"}

    publish("member_joined", school, {
        "urn": ids.school, "dfe_number": "825/2001", "name": "Haddenham Infant School", "kind": "school",
        "establishment_type": "community", "phase": "primary", "is_academy": False, "mat": None,
        "local_authority": "Buckinghamshire", "postcode": "HP17 8ET", "number_on_roll": 196,
        "census_date": "2023-10-05", "joined_on": "2024-01-05"})
    publish("contact_role_changed", head, role(ids.head, ids.school, "head_teacher", "2024-01-05"))
    publish("contact_role_changed", bursar, role(ids.bursar, ids.school, "business_manager", "2024-03-01"))
    publish("census_recorded", school, {"urn": ids.school, "census_date": "2024-10-03", "old_number_on_roll": 196,
                                        "number_on_roll": 204})
    publish("member_details_changed", school, details(ids.school, "2025-01-01", "Haddenham St Mary's Infant School",
                                                      "voluntary_controlled"))
    publish("contact_role_changed", bursar, role(ids.bursar, ids.school, "business_manager", "2025-07-31",
                                                 active=False, spends=False))
    publish("census_recorded", school, {"urn": ids.school, "census_date": "2025-10-02", "old_number_on_roll": 204,
                                        "number_on_roll": 211})
    publish("member_details_changed", school, details(ids.school, "2026-02-01", "Haddenham St Mary's CE Infant School",
                                                      "voluntary_controlled"))
    publish("school_converted_to_academy", school, {
        "conversion_date": "2026-09-01",
        "predecessor": {"urn": ids.school, "dfe_number": "825/2001", "name": "Haddenham St Mary's CE Infant School"},
        "successor": {"urn": ids.academy, "dfe_number": "825/2002", "name": "Haddenham St Mary's Academy",
                      "establishment_type": "academy_converter", "phase": "primary",
                      "local_authority": "Buckinghamshire", "postcode": "HP17 8ET", "number_on_roll": 211,
                      "census_date": "2025-10-02"},
        "mat": MAT})
    publish("contact_role_changed", head, role(ids.head, ids.academy, "head_teacher", "2026-09-01"))
    publish("contact_role_changed", head, role(ids.head, ids.school, "head_teacher", "2026-09-01",
                                               active=False, spends=False))
    publish("member_details_changed", academy, details(ids.academy, "2026-10-01", "Haddenham Academy",
                                                       "academy_converter", mat=MAT))
    publish("census_recorded", academy, {"urn": ids.academy, "census_date": "2026-10-01", "old_number_on_roll": 211,
                                         "number_on_roll": 228})
    publish("contact_role_changed", bursar, role(ids.bursar, ids.academy, "business_manager", "2026-11-01"))
    publish("contact_erased", head, {"contact_id": ids.head})
    publish("member_left", academy, {"urn": ids.academy, "name": "Haddenham Academy", "effective_date": "2027-01-01",
                                     "reason": "left the partnership"})
    return events


def state(database, ids: Ids) -> dict:
    """What these events decide in the catalogue's tables, with the run's own ids replaced by names
    (so two runs compare); SLAs keyed by school, offering and origin instead of their random ids."""
    names = ids.names()

    def named(value):
        return names.get(value, value) if isinstance(value, str) else value

    urns = [ids.school, ids.academy]
    with database.reader() as session:
        member_rows = session.execute(sa.select(members).where(members.c.urn.in_(urns))).all()
        contact_rows = session.execute(sa.select(contacts).where(
            contacts.c.contact_id.in_([ids.head, ids.bursar]))).all()
        erased = session.execute(sa.select(erased_contacts).where(
            erased_contacts.c.contact_id.in_([ids.head, ids.bursar]))).all()
        sla_rows = session.execute(sa.select(subscriptions).where(subscriptions.c.urn.in_(urns))).all()
    keys = {row.id: (named(row.urn), row.offering_code, row.origin) for row in sla_rows}
    return {
        "members": {named(row.urn): {k: named(v) for k, v in row._mapping.items()} for row in member_rows},
        "contacts": sorted(tuple(named(v) for v in row) for row in contact_rows),
        "erased": sorted((named(row.contact_id), row.version) for row in erased),
        "subscriptions": {keys[row.id]: {k: (keys.get(v) if k == "continues_subscription_id" else named(v))
                                         for k, v in row._mapping.items() if k != "id"} for row in sla_rows},
    }


def unit_of_work(database) -> UnitOfWork:
    """A unit of work for an HTTP command (no upstream event)."""
    return UnitOfWork(database, PRODUCER, outbox, inbox, Origin(correlation_id="test"))


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def database(request, tmp_path_factory):
    with scratch_database(request.param, tmp_path_factory.mktemp("order"), "catalogue_order",
                          migrations="catalogue:migrations") as found:
        for code, terms in (("SI-ORDER", {"model": "per_pupil", "base_fee_pence": 150000,
                                          "rate_by_phase": {"primary": Decimal("825")}}),
                            ("GOV-ORDER", {"model": "flat", "flat_fee_pence": 60000})):
            handlers.publish_offering(unit_of_work(found), offering_command(**{
                "code": code, "name": code, "vat_treatment": "standard", "eligible_phases": ["primary"],
                "service_area": "school_improvement" if code == "SI-ORDER" else "governance",
                "edition": {"year": 2026, "terms": terms}}), provider="test-operator")
        found.backend = request.param
        yield found


def buy_as_the_head(database, ids: Ids) -> None:
    for code, years in (("SI-ORDER", 2), ("GOV-ORDER", 1)):
        handlers.buy_subscription(unit_of_work(database), commands.BuySubscription(
            urn=ids.school, offering_code=code, edition_year=2026, contact_id=ids.head, years=years),
            today=D(2026, 3, 2))


def with_duplicates(data, events: list[Envelope]) -> list[Envelope]:
    """`events` with some of them delivered again at drawn places (a redelivery, a retry's copy)."""
    delivered = list(events)
    for again in data.draw(st.lists(st.sampled_from(range(len(events))), max_size=6), label="duplicates"):
        delivered.insert(data.draw(st.integers(0, len(delivered)), label="at"), events[again])
    return delivered


def in_order(database, *, buy: bool) -> tuple[Ids, dict]:
    ids = Ids.fresh()
    events = history(ids)
    for event in events[:2]:  # the joining and the head's role: before anyone can buy
        deliver(database, event)
    if buy:
        buy_as_the_head(database, ids)
    for event in events[2:]:
        deliver(database, event)
    return ids, state(database, ids)


class TestAnyDeliveryOrder:
    def test_a_schools_whole_history_in_any_order_ends_as_in_order(self, database):
        expected_ids, expected = in_order(database, buy=False)
        assert expected["members"]["SCHOOL"]["status"] == "converted"
        assert expected["members"]["ACADEMY"]["status"] == "left"
        assert expected["erased"] == [("HEAD", 4)] and {c[0] for c in expected["contacts"]} == {"BURSAR"}

        @settings(max_examples=EXAMPLES[database.backend], deadline=None,
                  suppress_health_check=[HealthCheck.too_slow])
        @given(data=st.data())
        def any_order(data):
            ids = Ids.fresh()
            events = history(ids)
            order = [events[i] for i in data.draw(st.permutations(range(len(events))), label="order")]
            delivered = with_duplicates(data, order)
            note([f"{e.type} {e.aggregate.split(':')[0]}#{e.sequence}" for e in delivered])
            applied = sum(deliver(database, event) for event in delivered)
            assert applied == len(events)  # each once; every copy after the first refused by the inbox
            assert state(database, ids) == expected

        any_order()

    def test_slas_bought_after_joining_end_as_in_order_whatever_order_the_rest_arrives(self, database):
        _, expected = in_order(database, buy=True)
        ended = {key: (row["status"], row["end_reason"], row["covered_until"])
                 for key, row in expected["subscriptions"].items()}
        assert ended == {
            ("SCHOOL", "SI-ORDER", "purchase"): ("ended", "converted", D(2026, 8, 31)),
            ("SCHOOL", "GOV-ORDER", "purchase"): ("ended", "converted", D(2026, 8, 31)),
            ("ACADEMY", "SI-ORDER", "conversion"): ("ended", "left", D(2026, 12, 31)),
            ("ACADEMY", "GOV-ORDER", "conversion"): ("ended", "left", D(2026, 12, 31))}
        assert {row["purchased_by_name"] for row in expected["subscriptions"].values()} == {"(erased)"}

        @settings(max_examples=EXAMPLES[database.backend], deadline=None,
                  suppress_health_check=[HealthCheck.too_slow])
        @given(data=st.data())
        def any_order(data):
            ids = Ids.fresh()
            events = history(ids)
            for event in events[:2]:
                deliver(database, event)
            buy_as_the_head(database, ids)
            rest = [events[2:][i] for i in data.draw(st.permutations(range(len(events) - 2)), label="order")]
            delivered = with_duplicates(data, rest)
            note([f"{e.type} {e.aggregate.split(':')[0]}#{e.sequence}" for e in delivered])
            for event in delivered:
                deliver(database, event)
            assert state(database, ids) == expected

        any_order()


# -- one rule at a time --------------------------------------------------------------------------
def event(event_type: str, aggregate: str, sequence: int | None, payload: dict) -> Envelope:
    return Envelope.new(type=event_type, payload=payload, producer="membership", operator="bucks-learning-trust",
                        aggregate=aggregate, sequence=sequence)


def joining(urn: str, sequence: int | None = 1, *, joined_on: str = "2024-01-05") -> Envelope:
    return event("member_joined", f"school:{urn}", sequence, {
        "urn": urn, "name": f"School {urn}", "establishment_type": "community", "phase": "primary",
        "is_academy": False, "mat": None, "number_on_roll": 196, "census_date": "2023-10-05", "joined_on": joined_on})


def head_role(contact_id: str, urn: str, sequence: int | None = 1, **changes) -> Envelope:
    return event("contact_role_changed", f"contact:{contact_id}", sequence, dict({
        "contact_id": contact_id, "urn": urn, "display_name": "Sam Head", "role": "head_teacher",
        "may_commit_spending": True, "active": True, "effective_date": "2024-01-05"}, **changes))


class TestOneRuleAtATime:
    def test_member_left_before_member_joined_leaves_the_member_left(self, database):
        urn, head = str(next(_urns)), str(uuid.uuid4())
        deliver(database, event("member_left", f"school:{urn}", 2, {"urn": urn, "effective_date": "2026-08-31",
                                                                   "reason": "closed"}))
        deliver(database, joining(urn, 1))
        deliver(database, head_role(head, urn))
        with database.reader() as session:
            member = repository.member(session, urn)
        assert (member.status, member.left_on, member.joined_on, member.name) == (
            "left", D(2026, 8, 31), D(2024, 1, 5), f"School {urn}")
        with pytest.raises(model.NotAllowed) as refused:
            handlers.buy_subscription(unit_of_work(database), commands.BuySubscription(
                urn=urn, offering_code="GOV-ORDER", edition_year=2026, contact_id=head),
                today=D(2026, 9, 1))
        assert refused.value.field == "urn"

    def test_contact_erased_then_an_older_role_change_does_not_restore_the_person(self, database):
        urn, head = str(next(_urns)), str(uuid.uuid4())
        deliver(database, joining(urn))
        deliver(database, event("contact_erased", f"contact:{head}", 2, {"contact_id": head}))
        deliver(database, head_role(head, urn, 1))
        deliver(database, head_role(head, urn, 3, effective_date="2024-02-01"))  # even one numbered later
        with database.reader() as session:
            assert repository.contact(session, head, urn) is None
            assert repository.authorised_buyers(session, urn) == []
            assert session.execute(sa.select(contacts.c.display_name).where(contacts.c.contact_id == head)).all() == []
        with pytest.raises(model.NotAllowed) as refused:
            handlers.buy_subscription(unit_of_work(database), commands.BuySubscription(
                urn=urn, offering_code="GOV-ORDER", edition_year=2026, contact_id=head),
                today=D(2026, 3, 2))
        assert refused.value.field == "contact_id"

    def test_an_older_details_change_does_not_overwrite_a_newer_one(self, database):
        urn = str(next(_urns))

        def details(sequence, name, effective_date):
            return event("member_details_changed", f"school:{urn}", sequence, {
                "urn": urn, "effective_date": effective_date, "name": name, "establishment_type": "foundation",
                "phase": "primary", "is_academy": False, "mat": None})

        deliver(database, joining(urn))
        deliver(database, details(3, "Newer name", "2026-09-01"))
        deliver(database, details(2, "Older name", "2026-05-01"))
        with database.reader() as session:
            assert repository.member(session, urn).name == "Newer name"

    def test_a_school_known_only_from_its_census_is_not_a_member(self, database):
        urn, head = str(next(_urns)), str(uuid.uuid4())
        deliver(database, event("census_recorded", f"school:{urn}", 2, {
            "urn": urn, "census_date": "2024-10-03", "number_on_roll": 204}))
        deliver(database, head_role(head, urn))
        command = commands.BuySubscription(urn=urn, offering_code="SI-ORDER", edition_year=2026, contact_id=head)
        with database.reader() as session:
            assert repository.member(session, urn) is None
            with pytest.raises(model.NotAllowed):
                handlers.quote_for(session, command, today=D(2026, 3, 2))
            with pytest.raises(model.NotAllowed):
                handlers.renewal_view(session, urn, 2027)
        with pytest.raises(model.NotAllowed):
            handlers.buy_subscription(unit_of_work(database), command, today=D(2026, 3, 2))
        deliver(database, joining(urn, 1))
        with database.reader() as session:  # the joining arrives: a member, with the newer census
            assert (repository.member(session, urn).status, repository.member(session, urn).number_on_roll) == (
                "active", 204)

    def test_a_leaving_overtaken_by_a_re_joining_still_ends_the_slas_of_the_membership_it_closed(self, database):
        urn, head = str(next(_urns)), str(uuid.uuid4())
        deliver(database, joining(urn, 1))
        deliver(database, head_role(head, urn))
        bought = handlers.buy_subscription(unit_of_work(database), commands.BuySubscription(
            urn=urn, offering_code="SI-ORDER", edition_year=2026, contact_id=head, years=2),
            today=D(2026, 3, 2))
        deliver(database, joining(urn, 3, joined_on="2027-01-04"))
        deliver(database, event("member_left", f"school:{urn}", 2, {"urn": urn, "effective_date": "2026-12-01",
                                                                   "reason": "closed"}))
        with database.reader() as session:
            member = repository.member(session, urn)
            sla = repository.subscription(session, bought.id)
        assert (member.status, member.joined_on, member.left_on) == ("active", D(2027, 1, 4), None)
        assert (sla.status, sla.covered_until) == ("ended", D(2026, 11, 30))

    def test_an_event_numbered_in_another_aggregate_is_refused_and_nothing_written(self, database):
        urn = str(next(_urns))
        wrong = dataclasses.replace(joining(urn), aggregate="school:999999")
        with pytest.raises(ValueError):
            deliver(database, wrong)
        with database.reader() as session:
            assert repository.member_copy(session, urn) is None
            assert session.execute(sa.select(inbox.c.event_id).where(inbox.c.event_id == wrong.event_id)).all() == []
