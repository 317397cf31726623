"""A school's membership history delivered in order and shuffled, with duplicates, to the real services.

Catalogue, billing and scheduling run as processes on the real broker (each as its own broker user
on a provisioned vhost); membership does not run: the test plays its part and publishes, with plain
pika on `membership.events`, the envelopes membership would commit (each checked against
membership's published contract, `services/membership/contracts/`): numbered per aggregate,
`school:<urn>` for member events (the conversion in the predecessor's), `contact:<id>` for a
person's role changes and erasure, in membership's commit order.

The history is told twice on one stack, to two casts with their own URNs, contact ids and MAT id:

- a maintained infant school joins with its head teacher (who may commit spending) and a business
  manager; two censuses and two changes of details; another school joins, moves and leaves; the
  business manager leaves the post; the school converts to an academy in a MAT with its head carried
  over; the academy is renamed, records a census and hires the business manager back; the head's
  data is erased; the academy leaves. In the middle, as the catalogue's own customer, the head buys
  two SLAs (per-pupil and flat) for the maintained school, so the conversion and the leaving have
  SLAs to end and carry on, charges to credit and eligibility to change;
- the first cast's events are delivered in commit order, the second cast's in a fixed shuffled order
  (`SEED`) with some delivered twice (same event id). Only the joining and the head's appointment
  come first for both, since a purchase needs them.

Each delivery is published alone and the test waits (polling, bounded) until every consumer of that
type has handled it (its id in the consumer's inbox, or for a repeat one more duplicate stopped by
the inbox, from the service's metrics) and until billing and scheduling have handled what the
catalogue published in reaction; so the services apply exactly the order the test chose, and nothing
is ordered by sleeping. Then: every inbox holds exactly the distinct events its service consumes,
nothing was retried, dead-lettered or left in a queue, and each service's copies (its own database
and its HTTP views) and what the catalogue published, with the casts' ids replaced by role names,
are the same for the shuffled cast as for the in-order one (but for what `REACTION_ORDER` names).
"""
from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import json
import pprint
import random
import re
import time
import uuid
from functools import lru_cache

import pika
import pytest
import sqlalchemy as sa
from jsonschema import Draft202012Validator

from shared.envelope import Envelope
from partnership_ops.links import handlers_of
from shared.topology import dead_letter_queue_name, retry_name
from tests import tokens
from tests.archive_tap import ArchiveTap
from tests.conftest import ROOT, TEST_TOPOLOGY_SETTINGS, eventually, http_json, scrape
from tests.contracts.test_contracts import format_checker
from tests.e2e.steps import offering, ok, publish_offering

CONSUMERS = ("catalogue", "billing", "scheduling")
OPERATOR = "bucks-learning-trust"
# A fixed shuffle of the history after its first two events, and four redeliveries: chosen so that
# (asserted in the test) the other school's leaving precedes its joining, the head's erasure precedes
# both older role changes, a newer details change and a newer census precede older ones, the academy's
# leaving and renaming precede the conversion that creates it, and the business manager's newest role
# precedes both older ones. Redelivered: the school's and the other school's joinings, the erasure,
# the business manager's newest role.
SEED = 92
DUPLICATES = 4
MAT_NAME = "Great Learners Trust"
SI = offering("SI-ORD", "School improvement core offer", "school_improvement", "standard",
              {"model": "per_pupil", "base_fee_pence": 150000, "rate_by_phase": {"primary": "825"},
               "minimum_pence": 200000}, eligible_phases=["primary"])
GOV = offering("GOV-ORD", "Governance training and induction", "governance", "exempt",
               {"model": "flat", "flat_fee_pence": 95000}, eligible_phases=["primary"])


@dataclasses.dataclass(frozen=True)
class Cast:
    """Who one telling of the history is about; the two tellings share no id."""

    school: str   # the maintained school that converts
    academy: str  # the academy it becomes
    other: str    # a second school that joins and leaves
    mat_id: str
    head: str = dataclasses.field(default_factory=lambda: str(uuid.uuid4()))
    manager: str = dataclasses.field(default_factory=lambda: str(uuid.uuid4()))

    @property
    def urns(self) -> list[str]:
        return [self.school, self.academy, self.other]

    @property
    def contacts(self) -> list[str]:
        return [self.head, self.manager]

    @property
    def mat(self) -> dict:
        return {"id": self.mat_id, "name": MAT_NAME}

    def names(self) -> dict[str, str]:
        return {self.school: "SCHOOL", self.academy: "ACADEMY", self.other: "OTHER", self.mat_id: "MAT",
                self.head: "HEAD", self.manager: "MANAGER"}


IN_ORDER = Cast(school="180101", academy="180102", other="180103", mat_id="TR18101")
SHUFFLED = Cast(school="180201", academy="180202", other="180203", mat_id="TR18201")


# -- membership's side: the history as it would commit and publish it -------------------------------
def history(cast: Cast) -> list[Envelope]:
    """The events in membership's commit order, each aggregate numbered 1, 2, 3... as its
    `event_sequences` row would number them; `occurred_at` increasing in that order."""
    numbers: collections.Counter = collections.Counter()
    events: list[Envelope] = []
    start = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1)

    def publish(event_type: str, aggregate: str, payload: dict, *, correlation_id: str | None = None) -> Envelope:
        numbers[aggregate] += 1
        envelope = Envelope.new(type=event_type, payload=payload, producer="membership", operator=OPERATOR,
                                aggregate=aggregate, sequence=numbers[aggregate], correlation_id=correlation_id,
                                occurred_at=start + dt.timedelta(minutes=len(events)))
        events.append(envelope)
        return envelope

    school, academy, other = (f"school:{urn}" for urn in cast.urns)
    head, manager = f"contact:{cast.head}", f"contact:{cast.manager}"
    postcode = "HP17 8ET"

    def role(contact_id, urn, role_name, effective_date, *, active=True):
        return {"contact_id": contact_id, "urn": urn,
                "display_name": "Sam Head" if contact_id == cast.head else "Alex Bursar", "role": role_name,
                "may_commit_spending": active, "active": active, "effective_date": effective_date}

    def details(urn, effective_date, changes, name, establishment_type, *, mat=None, code=postcode):
        return {"urn": urn, "effective_date": effective_date, "changes": changes, "name": name,
                "establishment_type": establishment_type, "phase": "primary", "is_academy": mat is not None,
                "mat": mat, "local_authority": "Buckinghamshire", "postcode": code}

    publish("member_joined", school, {
        "urn": cast.school, "dfe_number": "825/2101", "name": "Haddenham Infant School", "kind": "school",
        "establishment_type": "community", "phase": "primary", "is_academy": False, "mat": None,
        "local_authority": "Buckinghamshire", "postcode": postcode, "number_on_roll": 196,
        "census_date": "2023-10-05", "joined_on": "2024-01-05"})
    publish("contact_role_changed", head, role(cast.head, cast.school, "head_teacher", "2024-01-05"))
    publish("contact_role_changed", manager, role(cast.manager, cast.school, "business_manager", "2024-03-01"))
    publish("census_recorded", school, {"urn": cast.school, "census_date": "2024-10-03", "old_number_on_roll": 196,
                                        "number_on_roll": 204})
    publish("member_details_changed", school, details(
        cast.school, "2025-01-01",
        {"name": {"old": "Haddenham Infant School", "new": "Haddenham St Mary's Infant School"},
         "establishment_type": {"old": "community", "new": "voluntary_controlled"}},
        "Haddenham St Mary's Infant School", "voluntary_controlled"))
    publish("member_joined", other, {
        "urn": cast.other, "dfe_number": "825/2103", "name": "Long Crendon School", "kind": "school",
        "establishment_type": "community", "phase": "primary", "is_academy": False, "mat": None,
        "local_authority": "Buckinghamshire", "postcode": "HP18 9BZ", "number_on_roll": 180,
        "census_date": "2024-10-03", "joined_on": "2025-04-01"})
    publish("census_recorded", school, {"urn": cast.school, "census_date": "2025-10-02", "old_number_on_roll": 204,
                                        "number_on_roll": 211})
    publish("member_details_changed", other, details(
        cast.other, "2025-11-01", {"postcode": {"old": "HP18 9BZ", "new": "HP18 9DN"}}, "Long Crendon School",
        "community", code="HP18 9DN"))
    publish("member_details_changed", school, details(
        cast.school, "2026-02-01", {"name": {"old": "Haddenham St Mary's Infant School",
                                             "new": "Haddenham St Mary's CE Infant School"}},
        "Haddenham St Mary's CE Infant School", "voluntary_controlled"))
    publish("contact_role_changed", manager, role(cast.manager, cast.school, "business_manager", "2026-07-31",
                                                  active=False))
    # One command: the conversion with `carry_contacts`, so the head's old role ends and the new one starts
    # in the same transaction (membership's `_carry_contacts`: the ending first).
    conversion = publish("school_converted_to_academy", school, {
        "conversion_date": "2027-01-01",
        "predecessor": {"urn": cast.school, "dfe_number": "825/2101", "name": "Haddenham St Mary's CE Infant School"},
        "successor": {"urn": cast.academy, "dfe_number": "825/2102", "name": "Haddenham St Mary's Academy",
                      "establishment_type": "academy_converter", "phase": "primary",
                      "local_authority": "Buckinghamshire", "postcode": postcode, "number_on_roll": 211,
                      "census_date": "2025-10-02"},
        "mat": cast.mat})
    publish("contact_role_changed", head, role(cast.head, cast.school, "head_teacher", "2027-01-01", active=False),
            correlation_id=conversion.correlation_id)
    publish("contact_role_changed", head, role(cast.head, cast.academy, "head_teacher", "2027-01-01"),
            correlation_id=conversion.correlation_id)
    publish("member_left", other, {"urn": cast.other, "name": "Long Crendon School", "effective_date": "2027-01-01",
                                   "reason": "stopped buying traded services"})
    publish("member_details_changed", academy, details(
        cast.academy, "2027-01-15", {"name": {"old": "Haddenham St Mary's Academy", "new": "Haddenham Academy"}},
        "Haddenham Academy", "academy_converter", mat=cast.mat))
    publish("census_recorded", academy, {"urn": cast.academy, "census_date": "2027-01-21", "old_number_on_roll": 211,
                                         "number_on_roll": 218})
    publish("contact_role_changed", manager, role(cast.manager, cast.academy, "business_manager", "2027-02-01"))
    publish("contact_erased", head, {"contact_id": cast.head})
    publish("member_left", academy, {"urn": cast.academy, "name": "Haddenham Academy", "effective_date": "2027-03-01",
                                     "reason": "left the partnership"})
    return events


PREFIX = 2  # the joining and the head's appointment: delivered first in both tellings (a purchase needs them)


def shuffled(events: list[Envelope], seed: int = SEED) -> list[Envelope]:
    """The events after the prefix in a fixed random order, then `DUPLICATES` of all the events delivered
    a second time at random places after the prefix (same envelope, same event id)."""
    rng = random.Random(seed)
    rest = events[PREFIX:]
    rng.shuffle(rest)
    for again in rng.sample(events, DUPLICATES):
        rest.insert(rng.randrange(len(rest) + 1), again)
    return events[:PREFIX] + rest


@lru_cache(maxsize=None)
def contract(event_type: str) -> Draft202012Validator:
    path = ROOT / "services" / "membership" / "contracts" / f"{event_type}.v1.schema.json"
    return Draft202012Validator(json.loads(path.read_text(encoding="utf-8")), format_checker=format_checker())


class Publisher:
    """As membership's relay publishes: persistent, mandatory, confirmed, facts in properties and headers.
    One connection, opened again (bounded) if the shared broker dropped it or was slow to answer
    between two events; a publish itself is never repeated (that would be a redelivery the test did
    not choose)."""

    def __init__(self, amqp_uri: str):
        self.parameters = pika.URLParameters(amqp_uri)
        self.parameters.stack_timeout = 60
        self.connection = None
        self.channel = None

    def _connect(self):
        try:
            return pika.BlockingConnection(self.parameters)
        except Exception:  # noqa: BLE001 - refused, reset, handshake timed out: try again until the deadline
            return None

    def __call__(self, envelope: Envelope) -> None:
        if self.connection is None or self.connection.is_closed:
            self.connection = eventually(self._connect, timeout=120, interval=1, message="a connection to the broker")
            self.channel = self.connection.channel()
            self.channel.confirm_delivery()
        properties = envelope.amqp_properties()
        headers = properties.pop("application_headers")
        self.channel.basic_publish("membership.events", envelope.routing_key, envelope.to_json().encode(),
                                   pika.BasicProperties(headers=headers, **properties), mandatory=True)

    def close(self) -> None:
        if self.connection is not None and self.connection.is_open:
            self.connection.close()


# -- the consumers' side: what each consumes, has handled, and holds -------------------------------------
CONSUMED = {service: {(h.source, h.event_type) for h in handlers_of(service)} for service in CONSUMERS}
_SAMPLE = re.compile(r'^(?P<name>[a-z_]+)\{(?P<labels>[^}]*)\} (?P<value>\S+)$')


def metrics(stack, service: str) -> dict[tuple[str, tuple], float]:
    """The service's Prometheus counters: (name, sorted labels) -> value."""
    text = scrape(stack.url(service))
    found = {}
    for line in text.splitlines():
        sample = _SAMPLE.match(line)
        if sample:
            labels = tuple(sorted(re.findall(r'(\w+)="([^"]*)"', sample["labels"])))
            found[(sample["name"], labels)] = float(sample["value"])
    return found


def duplicates(samples: dict, service: str, event_type: str) -> int:
    """Deliveries of `event_type` the service's inbox stopped as duplicates."""
    return int(samples.get(("partnership_events_duplicate_total", (("service", service), ("type", event_type))), 0))


class Delivery:
    """Publishes membership's events one at a time and waits, before the next, until every consumer of
    its type has handled it, and until billing and scheduling have handled everything the catalogue
    published in reaction; so the order chosen is the order applied. Handled means: the event's id is
    in the consumer's inbox (committed with its effect), or, for a delivery the test repeats on
    purpose, the consumer's inbox stopped one more duplicate of that type. A retry or a dead letter
    anywhere stops the test at once: it would reorder what follows."""

    def __init__(self, stack, publish: Publisher):
        self.stack = stack
        self.publish = publish
        self.engines = {service: sa.create_engine(stack.database_urls[service]) for service in CONSUMERS}
        self.expected: dict[str, set[str]] = {service: set() for service in CONSUMERS}  # event ids
        self.repeated: collections.Counter = collections.Counter()  # (service, type) -> duplicates sent

    def __call__(self, envelope: Envelope) -> None:
        consumers = [service for service in CONSUMERS if ("membership", envelope.type) in CONSUMED[service]]
        for service in consumers:
            if envelope.event_id in self.expected[service]:
                self.repeated[(service, envelope.type)] += 1
            self.expected[service].add(envelope.event_id)
        self.publish(envelope)
        self.settle(f"{envelope.type} {envelope.aggregate.split(':')[0]}#{envelope.sequence}")

    def settle(self, what: str = "the stack") -> None:
        eventually(self._settled, timeout=60, interval=0.05, message=f"every consumer handling {what}")

    def close(self) -> None:
        for engine in self.engines.values():
            engine.dispose()

    def _ids(self, service: str, query: str) -> set[str]:
        with self.engines[service].connect() as connection:
            return set(connection.execute(sa.text(query)).scalars())

    def _settled(self) -> bool:
        for service in CONSUMERS:
            samples = metrics(self.stack, service)
            faults = {key: value for key, value in samples.items() if value and key[0] in (
                "partnership_events_retried_total", "partnership_events_dead_lettered_total")}
            if faults:
                raise RuntimeError(f"{service} retried or dead-lettered an event: {faults}\n{self.stack.logs()}")
            if any(duplicates(samples, service, event_type) < n
                   for (consumer, event_type), n in self.repeated.items() if consumer == service):
                return False
        # the catalogue first: once its inbox holds everything, the events it published in reaction are in
        # its outbox (same transaction), and billing's and scheduling's inboxes must hold those too
        if not self.expected["catalogue"] <= self._ids("catalogue", "SELECT event_id FROM inbox"):
            return False
        with self.engines["catalogue"].connect() as connection:
            reactions = connection.execute(sa.text("SELECT event_id, event_type FROM outbox")).all()
        for service in ("billing", "scheduling"):
            wanted = self.expected[service] | {event_id for event_id, event_type in reactions
                                               if ("catalogue", event_type) in CONSUMED[service]}
            if not wanted <= self._ids(service, "SELECT event_id FROM inbox"):
                return False
        return True


def select(url: str, table: str, column: str, values) -> list[dict]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            query = sa.text(f"SELECT * FROM {table} WHERE {column} IN :values").bindparams(
                sa.bindparam("values", expanding=True))
            return [dict(row._mapping) for row in connection.execute(query, {"values": list(values)})]
    finally:
        engine.dispose()


def count(url: str, table: str) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            return connection.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()
    finally:
        engine.dispose()


class Names:
    """Replaces a cast's ids (URNs, MAT, contacts, and the SLA and charge ids the services made for it)
    with role names, so two casts' states compare."""

    def __init__(self, cast: Cast):
        self.exact = dict(cast.names())
        self.within = {k: v for k, v in self.exact.items() if k not in cast.contacts}

    def add(self, identifier, name: str) -> None:
        assert identifier not in self.exact or self.exact[identifier] == name, (identifier, name)
        self.exact[identifier] = name

    def __call__(self, value):
        if isinstance(value, dict):
            return {k: self(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self(v) for v in value]
        if isinstance(value, str):
            if value in self.exact:
                return self.exact[value]
            if value[:1] in "[{":
                try:
                    return self(json.loads(value))
                except ValueError:
                    pass
            for identifier, name in self.within.items():
                value = value.replace(identifier, name)
        return value

    def rows(self, found: list[dict]) -> list[dict]:
        return sorted((self(row) for row in found), key=repr)


# What the services hold that depends on the order the catalogue *reacted* in, not on what it was told,
# and so is left out of the comparison: the catalogue numbers the SLA starts and ends it publishes in its
# own `school:<urn>` counter, in the order it publishes them, so the copies of its events keep other
# numbers (billing's `end_sequence`, scheduling's `terms_sequence`); and a carried SLA's start names the
# academy as the catalogue knew it then (`school_name` in that event and in billing's copy of its terms):
# the conversion's name in order, the later rename's when that overtook the conversion. Everything else
# must be equal.
REACTION_ORDER = {"billing": {"end_sequence", "school_name"}, "scheduling": {"terms_sequence"},
                  "catalogue": {"school_name"}}


def without(value, keys: set[str]):
    if isinstance(value, dict):
        return {k: without(v, keys) for k, v in value.items() if k not in keys}
    if isinstance(value, list):
        return [without(v, keys) for v in value]
    return value


def canonical(value):
    """An HTTP view with its lists of records in one order (the services order ties by random ids)."""
    if isinstance(value, dict):
        return {k: canonical(v) for k, v in value.items()}
    if isinstance(value, list):
        items = [canonical(v) for v in value]
        return sorted(items, key=repr) if items and all(isinstance(v, dict) for v in items) else items
    return value


def state(stack, cast: Cast, published: list[dict]) -> dict:
    """What the services hold about one cast, in their own databases and through their HTTP views, and
    what the catalogue published about it in reaction (from its archive, in any order)."""
    names = Names(cast)
    db = stack.database_urls
    sla_rows = select(db["catalogue"], "subscriptions", "urn", cast.urns)
    for row in sla_rows:
        names.add(row["id"], f"SLA {names(row['urn'])} {row['offering_code']} {row['origin']}")
    charge_rows = select(db["billing"], "charges", "urn", cast.urns)
    for row in charge_rows:  # a charge by its SLA and period, a credit by the charge it credits and its start
        if row["kind"] == "charge":
            names.add(row["id"], f"CHARGE {names(row['subscription_id'])} {row['period_start']}")
    for row in charge_rows:
        if row["kind"] != "charge":
            names.add(row["id"], f"{row['kind'].upper()} {names(row['credits_charge_id'])} {row['period_start']}")
    found = {
        "catalogue": {
            "members": select(db["catalogue"], "members", "urn", cast.urns),
            "contacts": select(db["catalogue"], "contacts", "contact_id", cast.contacts),
            "erased_contacts": select(db["catalogue"], "erased_contacts", "contact_id", cast.contacts),
            "subscriptions": sla_rows,
            "http": [http_json("GET", f"{stack.url('catalogue')}/members/{urn}") for urn in cast.urns],
            "published": [{"type": e["type"], "payload": e["payload"]} for e in published
                          if e["payload"].get("urn") in cast.urns],
        },
        "billing": {
            "members": select(db["billing"], "members", "urn", cast.urns),
            "member_affiliations": select(db["billing"], "member_affiliations", "urn", cast.urns),
            "subscriptions": select(db["billing"], "subscriptions", "urn", cast.urns),
            "charges": charge_rows,
            "http": [http_json("GET", f"{stack.url('billing')}/charges?urn={urn}") for urn in cast.urns],
        },
        "scheduling": {
            "schools": select(db["scheduling"], "schools", "urn", cast.urns),
            "school_mats": select(db["scheduling"], "school_mats", "urn", cast.urns),
            "contacts": select(db["scheduling"], "contacts", "contact_id", cast.contacts),
            "eligibility": select(db["scheduling"], "eligibility", "urn", cast.urns),
            "http": [http_json("GET", f"{stack.url('scheduling')}/schools/{urn}") for urn in cast.urns],
        },
    }
    return {service: {table: without(names.rows(rows) if table != "http" else canonical(names(rows)),
                                     REACTION_ORDER[service]) for table, rows in tables.items()}
            for service, tables in found.items()}


def differences(expected: dict, got: dict) -> dict:
    """Per service and table, what only the in-order state holds and what only the shuffled one does."""
    found = {}
    for service, tables in expected.items():
        for table, rows in tables.items():
            theirs = got[service][table]
            if rows != theirs:
                found[f"{service}.{table}"] = {"in order only": [r for r in rows if r not in theirs],
                                               "shuffled only": [r for r in theirs if r not in rows]}
    return found


def first(order: list[Envelope], type_: str, aggregate: str, sequence: int | None = None) -> int:
    return next(i for i, e in enumerate(order) if e.type == type_ and e.aggregate == aggregate
                and (sequence is None or e.sequence == sequence))


class TestShuffledHistory:
    @pytest.mark.timeout(240)
    def test_a_shuffled_history_with_duplicates_ends_as_the_history_in_order(self, stack_factory, databases,
                                                                                amqp_uri, request):
        started = time.monotonic()
        in_order, shuffled_events = history(IN_ORDER), history(SHUFFLED)
        for envelope in in_order + shuffled_events:
            contract(envelope.type).validate(envelope.to_dict())  # exactly as membership publishes
        order = shuffled(shuffled_events)
        s = SHUFFLED
        # the seed gives the orders this test is about
        assert first(order, "member_left", f"school:{s.other}") < first(order, "member_joined", f"school:{s.other}")
        for older in (2, 3):
            assert first(order, "contact_erased", f"contact:{s.head}") < first(
                order, "contact_role_changed", f"contact:{s.head}", older)
        assert first(order, "member_details_changed", f"school:{s.school}", 5) < first(
            order, "member_details_changed", f"school:{s.school}", 3)
        assert first(order, "census_recorded", f"school:{s.school}", 4) < first(
            order, "census_recorded", f"school:{s.school}", 2)
        for academy_event in ("member_left", "member_details_changed"):
            assert first(order, academy_event, f"school:{s.academy}") < first(
                order, "school_converted_to_academy", f"school:{s.school}")
        for older in (1, 2):
            assert first(order, "contact_role_changed", f"contact:{s.manager}", 3) < first(
                order, "contact_role_changed", f"contact:{s.manager}", older)
        assert len(order) == len(shuffled_events) + DUPLICATES
        assert len({e.event_id for e in order}) == len(shuffled_events)

        stack = stack_factory(databases).start("catalogue", "billing", "scheduling")
        ready = time.monotonic()
        publisher = Publisher(amqp_uri)
        request.addfinalizer(publisher.close)
        deliver = Delivery(stack, publisher)
        request.addfinalizer(deliver.close)
        for item in (SI, GOV):
            publish_offering(stack, item)
        deliver.settle("the offerings")

        def buy(cast: Cast) -> None:
            for item in (SI, GOV):
                ok(201, http_json("POST", f"{stack.url('catalogue')}/subscriptions", {
                    "urn": cast.school, "offering_code": item["code"], "edition_year": 2026,
                    "po_number": f"PO-{item['code']}"}, token=tokens.contact(cast.school, cast.head)))
            deliver.settle(f"{cast.school}'s purchases")

        for envelope in in_order[:PREFIX]:
            deliver(envelope)
        buy(IN_ORDER)
        for envelope in in_order[PREFIX:]:
            deliver(envelope)

        told_in_order = time.monotonic()
        for envelope in order[:PREFIX]:
            deliver(envelope)
        buy(SHUFFLED)
        for envelope in order[PREFIX:]:
            deliver(envelope)
        told_shuffled = time.monotonic()

        # every consumer holds exactly the distinct events it consumes in its inbox
        # what the catalogue published, from its archive (read up to its outbox's last sent event)
        published = ArchiveTap(amqp_uri, ["catalogue"]).drain_sent(stack.database_urls["catalogue"])
        catalogue_events = {e["event_id"]: e["type"] for e in published}
        membership_events = {e.event_id: e.type for e in in_order + shuffled_events}
        for service in CONSUMERS:
            expected = sum(1 for events, source in ((membership_events, "membership"), (catalogue_events, "catalogue"))
                           for event_type in events.values() if (source, event_type) in CONSUMED[service])
            assert count(stack.database_urls[service], "inbox") == expected, service

        # nothing dead-lettered, retried or left waiting
        connection = pika.BlockingConnection(pika.URLParameters(amqp_uri))
        try:
            channel = connection.channel()
            waiting = {}
            for service in CONSUMERS:
                queues = [q for h in handlers_of(service) for q in (h.queue, dead_letter_queue_name(h.queue))]
                queues += [retry_name(service, ms) for ms in TEST_TOPOLOGY_SETTINGS["retry_delays_ms"]]
                for queue in queues:
                    waiting[queue] = channel.queue_declare(queue, passive=True).method.message_count
        finally:
            connection.close()
        assert {q: n for q, n in waiting.items() if n} == {}
        assert any(q.endswith(".dead") for q in waiting)

        expected, got = state(stack, IN_ORDER, published), state(stack, SHUFFLED, published)
        # the history did what it says in order (so the comparison below compares something)
        members = {row["urn"]: row for row in expected["catalogue"]["members"]}
        assert (members["SCHOOL"]["status"], members["ACADEMY"]["status"], members["OTHER"]["status"]) == (
            "converted", "left", "left")
        assert [row["contact_id"] for row in expected["catalogue"]["erased_contacts"]] == ["HEAD"]
        assert {row["contact_id"] for row in expected["catalogue"]["contacts"]} == {"MANAGER"}
        assert sorted((row["urn"], row["offering_code"], row["status"], row["end_reason"], str(row["covered_until"]))
                      for row in expected["catalogue"]["subscriptions"]) == [
            ("ACADEMY", "GOV-ORD", "ended", "left", "2027-02-28"), ("ACADEMY", "SI-ORD", "ended", "left", "2027-02-28"),
            ("SCHOOL", "GOV-ORD", "ended", "converted", "2026-12-31"),
            ("SCHOOL", "SI-ORD", "ended", "converted", "2026-12-31")]
        assert sorted((e["type"], e["payload"]["urn"], e["payload"].get("reason")) for e in
                      expected["catalogue"]["published"]) == sorted(
            [("subscription_started", "SCHOOL", None)] * 2 + [("subscription_ended", "SCHOOL", "converted")] * 2
            + [("subscription_started", "ACADEMY", None)] * 2 + [("subscription_ended", "ACADEMY", "left")] * 2)
        assert {(row["urn"], row["kind"], row["payer_id"]) for row in expected["billing"]["charges"]} == {
            ("SCHOOL", "charge", "SCHOOL"), ("SCHOOL", "credit", "SCHOOL"), ("ACADEMY", "charge", "MAT"),
            ("ACADEMY", "credit", "MAT")}
        assert {row["urn"]: str(row["left_on"]) for row in expected["billing"]["members"]} == {
            "SCHOOL": "2027-01-01", "ACADEMY": "2027-03-01", "OTHER": "2027-01-01"}
        assert {row["urn"]: (bool(row["active"]), str(row["closed_on"]))
                for row in expected["scheduling"]["schools"]} == {
            "SCHOOL": (False, "2027-01-01"), "ACADEMY": (False, "2027-03-01"), "OTHER": (False, "2027-01-01")}
        assert sorted((row["contact_id"], bool(row["erased"]), row["urn"]) for row in expected["scheduling"][
            "contacts"]) == [("HEAD", True, None), ("MANAGER", False, "ACADEMY")]
        assert sorted((row["urn"], str(row["period_end"])) for row in expected["scheduling"]["eligibility"]) == (
            [("ACADEMY", "2027-02-28")] * 2 + [("SCHOOL", "2026-12-31")] * 2)

        diverged = differences(expected, got)
        assert not diverged, pprint.pformat(diverged, width=120)
        print(f"\n{databases.backend}: stack ready in {ready - started:.1f}s; {len(in_order)} events in order "
              f"{told_in_order - ready:.1f}s; {len(order)} shuffled deliveries {told_shuffled - told_in_order:.1f}s; "
              f"checks {time.monotonic() - told_shuffled:.1f}s")
