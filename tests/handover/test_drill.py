"""The handover drill, on the real broker with every service a separate process.

All four services run under the trust. Schools join and buy SLAs. Billing is
handed to the council, moving from SQLite to PostgreSQL, and then scheduling to
a MAT that runs its own broker (a second virtual host, linked by shovels),
while membership and catalogue keep taking joins and purchases throughout and
are never restarted. At the end: every charge exists exactly once, no event
was lost or applied twice, each handover was announced exactly once, and the
old operators' copies hold no personal data.
"""
from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
import time

import pika
import pytest
import sqlalchemy as sa

from deploy.local import ROOT, SPECS, ServiceProcess
from shared import links
from tests import factories
from tests.conftest import TEST_EVENT_SETTINGS, Databases, Vhost, eventually, free_port, http_json

TRUST, COUNCIL, MAT = "bucks-learning-trust", "buckinghamshire-council", "great-learners-trust"
EXCHANGES = ("membership.events", "catalogue.events", "billing.events", "scheduling.events")
OBSERVER = "drill.observer"
PERSONAL_DATA = ROOT / "deploy" / "personal_data.json"


# -- helpers --------------------------------------------------------------------------------------
def rows(url: str, query: str) -> list[tuple]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            return [tuple(r) for r in connection.execute(sa.text(query))]
    finally:
        engine.dispose()


def count(url: str, table: str, where: str = "") -> int:
    return rows(url, f"SELECT count(*) FROM {table} {where}")[0][0]


def ops(*args: str, env: dict | None = None) -> dict:
    """Run `partnership-ops` as an operations team would; returns its JSON report."""
    result = subprocess.run([sys.executable, "-m", "shared.ops", *args], capture_output=True, text=True,
                            timeout=300, cwd=ROOT, env={**os.environ, **TEST_EVENT_SETTINGS, **(env or {})})
    assert result.returncode == 0, f"partnership-ops {args[0]} failed:\n{result.stderr}\n{result.stdout}"
    return json.loads(result.stdout)


def declare_observer(amqp_uri: str) -> None:
    """A plain queue that sees every event on the four exchanges, to count them at the end."""
    connection = pika.BlockingConnection(pika.URLParameters(amqp_uri))
    try:
        channel = connection.channel()
        channel.queue_declare(OBSERVER, durable=True)
        for exchange in EXCHANGES:
            channel.exchange_declare(exchange, "topic", durable=True)
            channel.queue_bind(OBSERVER, exchange, "#")
    finally:
        connection.close()


def observed(amqp_uri: str) -> list[dict]:
    connection = pika.BlockingConnection(pika.URLParameters(amqp_uri))
    found = []
    try:
        channel = connection.channel()
        while True:
            method, _, body = channel.basic_get(OBSERVER, auto_ack=True)
            if method is None:
                return found
            found.append({"exchange": method.exchange, **json.loads(body)})
    finally:
        connection.close()


def queue_depths(amqp_uri: str, queues: list[str]) -> dict[str, int]:
    connection = pika.BlockingConnection(pika.URLParameters(amqp_uri))
    try:
        channel = connection.channel()
        return {q: channel.queue_declare(q, passive=True).method.message_count for q in queues}
    finally:
        connection.close()


def shovel_plugin_enabled() -> bool:
    result = subprocess.run(["rabbitmq-plugins", "list", "-e", "-m"], capture_output=True, text=True, timeout=60)
    return "rabbitmq_shovel" in result.stdout.split()


class Customers:
    """Schools joining and buying, through membership and catalogue only, in a background thread."""

    def __init__(self, stack, offering_code: str):
        self.stack = stack
        self.offering_code = offering_code
        self.base = random.randint(100, 399) * 1000
        self.joined: list[str] = []
        self.subscriptions: dict[str, str] = {}  # subscription_id -> urn
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def join_and_buy(self) -> None:
        index = len(self.joined)
        school = factories.school(urn=str(self.base + index), dfe_number=f"825/{1000 + index}",
                                  name=f"Drill School {self.base + index}", number_on_roll=150 + index)
        status, body = http_json("POST", f"{self.stack.url('membership')}/members", school)
        if status != 201:
            self.errors.append(f"join {school['urn']}: {status} {body}")
            return
        self.joined.append(school["urn"])
        eventually(lambda: http_json("GET", f"{self.stack.url('catalogue')}/members/{school['urn']}")[0] == 200,
                   timeout=60, message=f"catalogue learning of {school['urn']}")
        status, body = http_json("POST", f"{self.stack.url('catalogue')}/subscriptions", {
            "urn": school["urn"], "offering_code": self.offering_code, "edition_year": 2026,
            "purchased_by": factories.HEAD_TEACHER, "po_number": f"PO-{index}"})
        if status != 201:
            self.errors.append(f"buy for {school['urn']}: {status} {body}")
            return
        self.subscriptions[body["subscription_id"]] = school["urn"]

    def start(self) -> "Customers":
        self._stop.clear()

        def run():
            for _ in range(60):  # bounded, whatever happens
                if self._stop.is_set():
                    return
                try:
                    self.join_and_buy()
                except Exception as exc:  # noqa: BLE001 - reported by the test
                    self.errors.append(repr(exc))
                time.sleep(0.1)

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(120)


def start_instance(stack, name: str, *, amqp_uri: str, database_url: str, operator: str, logs) -> ServiceProcess:
    proc = ServiceProcess(SPECS[name], amqp_uri=amqp_uri, database_url=database_url, port=free_port(),
                          log_path=logs / f"{name}-{operator}.log",
                          extra_env={**TEST_EVENT_SETTINGS, "OPERATOR_NAME": operator})
    stack.processes[f"{name}@{operator}"] = proc  # stopped with the stack at the end
    proc.start().wait_ready(90)
    return proc


# -- the drill ------------------------------------------------------------------------------------
@pytest.fixture
def mat_vhost():
    host = Vhost()
    yield host
    host.delete()


def test_billing_to_the_council_and_scheduling_to_a_mat_lose_and_duplicate_nothing(
        stack_factory, tmp_path, mat_vhost):
    sqlite, postgresql = Databases("sqlite", tmp_path), Databases("postgresql", tmp_path)
    try:
        _drill(stack_factory, tmp_path, mat_vhost, sqlite, postgresql)
    finally:
        postgresql.drop_all()


def _drill(stack_factory, tmp_path, mat_vhost, sqlite, postgresql):
    stack = stack_factory(sqlite)
    county = stack.amqp_uri
    declare_observer(county)
    stack.start()
    logs = tmp_path / "logs"
    pids = {name: stack.processes[name].process.pid for name in ("membership", "catalogue")}
    offering = factories.per_pupil_offering()
    assert http_json("POST", f"{stack.url('catalogue')}/offerings", offering)[0] == 201

    # 1. The trust runs everything: schools join and buy.
    customers = Customers(stack, offering["code"])
    for _ in range(5):
        customers.join_and_buy()
    old_billing_db = stack.database_urls["billing"]
    eventually(lambda: count(old_billing_db, "charges") == 5, timeout=60, message="first charges")

    # 2. Billing goes to the council, from SQLite to PostgreSQL, while schools keep joining and buying.
    customers.start()
    time.sleep(1.0)
    council_db = postgresql.url("billing")
    billing_archive = tmp_path / "billing-handover.tar.gz"
    old_billing = stack.processes["billing"]
    report = ops("handover", "--service", "billing", "--from-database", old_billing_db, "--from-amqp", county,
                 "--from-operator", TRUST, "--to-database", council_db, "--to-operator", COUNCIL,
                 "--archive", str(billing_archive), "--effective-date", "2027-04-01",
                 "--stop-pid", str(old_billing.process.pid))
    assert old_billing.process.wait(5) is not None
    assert all(q["consumers"] == 0 for q in report["queues"].values())
    assert report["drain"]["left_unsent"] == 0
    assert report["import"]["rows_loaded"]["charges"] == report["export"]["row_counts"]["charges"] >= 5
    assert report["import"]["handover_event"]["to_operator"] == COUNCIL
    time.sleep(1.5)  # the gap: billing runs nowhere, its queues keep collecting
    billing_queues = [h.queue for h in links.handlers_of("billing")]
    eventually(lambda: sum(queue_depths(county, billing_queues).values()) > 0, timeout=30,
               message="events waiting for billing during the gap")
    council_billing = start_instance(stack, "billing", amqp_uri=county, database_url=council_db,
                                     operator=COUNCIL, logs=logs)
    assert http_json("GET", f"{council_billing.url}/health")[1]["operator"] == COUNCIL
    time.sleep(2.0)
    customers.stop()

    # 3. Scheduling goes to a MAT with its own broker (a second vhost), linked by shovels.
    if not shovel_plugin_enabled():
        links.enable_plugin()
    customers.start()
    time.sleep(1.0)
    mat_db = sqlite.url("scheduling")
    scheduling_archive = tmp_path / "scheduling-handover.tar.gz"
    old_scheduling = stack.processes["scheduling"]
    old_scheduling_db = stack.database_urls["scheduling"]
    report = ops("handover", "--service", "scheduling", "--from-database", old_scheduling_db,
                 "--from-amqp", county, "--from-operator", TRUST, "--to-database", mat_db, "--to-operator", MAT,
                 "--archive", str(scheduling_archive), "--effective-date", "2027-09-01",
                 "--stop-pid", str(old_scheduling.process.pid))
    assert old_scheduling.process.wait(5) is not None
    assert report["import"]["rows_loaded"]["schools"] >= 5
    scheduling_queues = [h.queue for h in links.handlers_of("scheduling")]
    eventually(lambda: sum(queue_depths(county, scheduling_queues).values()) > 0, timeout=30,
               message="events waiting for scheduling during the gap")
    linked = ops("link-brokers", "--service", "scheduling", "--old-amqp", county, "--new-amqp", mat_vhost.amqp_uri,
                 "--label", MAT, "--config", str(ROOT / "services/scheduling/config.yml"),
                 "--write-definitions", str(tmp_path / "scheduling-links.json"))
    assert set(linked["running"].values()) == {"running"} and len(linked["running"]) == 3
    time.sleep(1.0)
    mat_scheduling = start_instance(stack, "scheduling", amqp_uri=mat_vhost.amqp_uri, database_url=mat_db,
                                    operator=MAT, logs=logs)
    time.sleep(2.0)
    customers.stop()
    assert not customers.errors, customers.errors

    # 4. Settled: every effect once, on both new operators.
    joined, bought = set(customers.joined), customers.subscriptions
    assert len(joined) == len(customers.joined) >= 10 and len(bought) == len(joined)
    eventually(lambda: count(council_db, "charges") >= len(bought), timeout=120, message="every charge")
    eventually(lambda: count(mat_db, "eligibility") >= len(bought) and count(mat_db, "schools") >= len(joined),
               timeout=120, message="scheduling at the MAT caught up")
    eventually(lambda: count(council_db, "outbox", "WHERE sent_at IS NULL") == 0
               and count(mat_db, "outbox", "WHERE sent_at IS NULL") == 0, timeout=60, message="outboxes empty")
    time.sleep(2.0)  # anything still in flight would show as an extra row now

    charges = rows(council_db, "SELECT id, subscription_id FROM charges")
    assert sorted(s for _, s in charges) == sorted(bought), "every SLA charged exactly once"
    old_charges = rows(old_billing_db, "SELECT id, subscription_id FROM charges")
    assert set(old_charges) <= set(charges), "the trust's charges moved unchanged"
    assert {u for (u,) in rows(mat_db, "SELECT urn FROM schools")} == joined
    assert sorted(s for (s,) in rows(mat_db, "SELECT subscription_id FROM eligibility")) == sorted(bought)

    events = observed(county)
    by_type: dict[str, list[dict]] = {}
    for event in events:
        by_type.setdefault(event["type"], []).append(event)
    joins = {e["event_id"] for e in by_type["member_joined"]}
    sales = {e["event_id"] for e in by_type["subscription_started"]}
    assert len(joins) == len(joined) and len(sales) == len(bought)
    for database in (council_db, mat_db):
        handled = {event_id for (event_id,) in rows(database, "SELECT event_id FROM inbox")}
        assert handled == joins | sales, "no event lost, none applied twice (the inbox holds each once)"
    charge_events = {}
    for event in by_type["charge_recorded"]:
        charge_events.setdefault(event["payload"]["charge_id"], set()).add(event["event_id"])
    assert sorted(charge_events) == sorted(str(i) for i, _ in charges)
    assert all(len(ids) == 1 for ids in charge_events.values()), "no charge announced under two event ids"
    operators = {e["operator"] for e in by_type["charge_recorded"]}
    assert operators == {TRUST, COUNCIL}

    handed = {e["event_id"]: e for e in by_type["function_handed_over"]}
    assert sorted((e["producer"], e["operator"], e["exchange"], json.dumps(e["payload"], sort_keys=True))
                  for e in handed.values()) == [
        ("billing", COUNCIL, "billing.events", json.dumps({"effective_date": "2027-04-01", "from_operator": TRUST,
                                                            "function": "billing", "to_operator": COUNCIL},
                                                           sort_keys=True)),
        ("scheduling", MAT, "scheduling.events", json.dumps({"effective_date": "2027-09-01", "from_operator": TRUST,
                                                              "function": "scheduling", "to_operator": MAT},
                                                             sort_keys=True)),
    ], "each handover announced exactly once, the MAT's through the shovel"

    handlers = [h.queue for h in links.handlers_of("scheduling")]
    assert set(queue_depths(county, handlers).values()) == {0}, "the county's scheduling queues are all forwarded"
    dead = [f"{q}.dead" for q in handlers]
    assert set(queue_depths(mat_vhost.amqp_uri, dead).values()) == {0}

    # Membership and catalogue were never restarted.
    for name, pid in pids.items():
        assert stack.processes[name].alive() and stack.processes[name].process.pid == pid, name

    # 5. The trust erases its copies of personal data.
    erased = ops("erase", "--service", "billing", "--database", old_billing_db, "--archive", str(billing_archive),
                 "--declaration", str(PERSONAL_DATA))
    assert {(e["table"], e["column"]) for e in erased["erased"]} == {
        ("members", "name"), ("members", "mat_name"), ("charges", "payer_name")}
    assert erased["values_erased"] >= 10 and erased["vacuumed"]
    assert {n for (n,) in rows(old_billing_db, "SELECT name FROM members")} == {"[erased]"}
    assert {n for (n,) in rows(old_billing_db, "SELECT payer_name FROM charges")} == {"[erased]"}
    assert count(old_billing_db, "outbox") == 0
    erased = ops("erase", "--service", "scheduling", "--database", old_scheduling_db,
                 "--archive", str(scheduling_archive), "--declaration", str(PERSONAL_DATA))
    assert erased["erased"][0]["table"] == "schools" and erased["erased"][0]["values"] >= 5
    raw = open(old_scheduling_db.removeprefix("sqlite:///"), "rb").read()
    assert b"Drill School" not in raw
    # ... while the new operators keep theirs.
    assert count(council_db, "members", "WHERE name LIKE 'Drill School%'") == len(joined)

    print(json.dumps({"schools_joined": len(joined), "slas_bought": len(bought), "charges": len(charges),
                      "charges_by_trust": len(old_charges), "events_observed": len(events),
                      "events_by_type": {t: len(v) for t, v in sorted(by_type.items())}}))

    # TODO(issue 8, when billing issues invoices): bill the next term after the handover and assert that
    # every charge is invoiced exactly once across both operators, that the trust's and the council's
    # invoice number series are each gap-free, that the council's invoices carry its legal identity and
    # that the trust's invoices issued before the handover keep the trust's.
