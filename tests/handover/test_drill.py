"""The handover drill, on the real broker with every service a separate process.

1. All four services run under the trust. Schools join, their head teachers are
   appointed, they buy SLAs, some book a course (scheduling) and attend, and the
   trust bills the autumn term (invoices `BLT-000001`...).
2. Billing is handed to the council, moving from SQLite to PostgreSQL, while
   schools keep joining and buying through membership and catalogue.
3. Scheduling is handed to a MAT that runs its own broker (a second virtual
   host, linked by shovels), while schools keep joining and buying; the MAT's
   scheduling then takes a booking whose attendance the council bills.
4. The council bills the spring term (its own series, `BC-000001`...).

Asserted at the end: every charge invoiced exactly once across both operators;
both invoice series gap-free and distinct, each document with its issuer's legal
identity (the trust's keep the trust's); no event lost (each new instance's
inbox holds exactly the events of the types it consumes that were published)
nor published twice; each handover announced once; membership and catalogue
never restarted; and the old operators' personal data erased (the erase report
lists it) and absent from the old databases' files.
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
from partnership_ops import links
from tests import factories, tokens
from tests.archive_tap import ArchiveTap
from tests.conftest import TEST_EVENT_SETTINGS, Databases, Vhost, billing_run, eventually, free_port, http_json

TRUST, COUNCIL, MAT = "bucks-learning-trust", "buckinghamshire-council", "great-learners-trust"
EXCHANGES = ("membership.events", "catalogue.events", "billing.events", "scheduling.events")
TRUST_LEGAL, COUNCIL_LEGAL = "Bucks Learning Trust", "Buckinghamshire Council"
COUNCIL_ENV = {"OPERATOR_NAME": COUNCIL, "OPERATOR_LEGAL_NAME": COUNCIL_LEGAL, "OPERATOR_VAT_NUMBER": "GB987654321",
               "OPERATOR_INVOICE_PREFIX": "BC-", "OPERATOR_BANK_ACCOUNT_NAME": COUNCIL_LEGAL}
TERMLY = {"BILLING_FREQUENCY": "termly"}
COURSE_DAY = "2027-02-10"  # a spring-term session: its charges fall to the council's run


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


# The operator's token for the instances' /ops/* routes (the `operations` role), as partnership-ops reads it.
OPS_TOKEN = {"PARTNERSHIP_OPS_TOKEN": tokens.token("test-operations", ["operations"], lifetime_seconds=24 * 3600)}


def ops(*args: str, env: dict | None = None) -> dict:
    """Run `partnership-ops` as an operations team would; returns its JSON report."""
    result = subprocess.run([sys.executable, "-m", "partnership_ops", *args], capture_output=True, text=True,
                            timeout=300, cwd=ROOT, env={**os.environ, **TEST_EVENT_SETTINGS, **OPS_TOKEN, **(env or {})})
    assert result.returncode == 0, f"partnership-ops {args[0]} failed:\n{result.stderr}\n{result.stdout}"
    return json.loads(result.stdout)


def appoint_head(stack, urn: str, membership: str | None = None) -> str:
    """Membership appoints the school's head teacher (personal data: a name and a work email)."""
    status, body = http_json("POST", f"{membership or stack.url('membership')}/members/{urn}/contacts", {
        "display_name": f"Drill Head {urn}", "email": f"head.{urn}@drill.example", "role": "head_teacher",
        "effective_date": "2026-01-05"})
    assert status == 201, body
    return body["contact_id"]


def observed(amqp_uri: str, *database_urls: str) -> list[dict]:
    """Every event published on the county's broker, from the producers' archives (no observer queue),
    read until it holds every event the given services' outboxes have marked sent."""
    return ArchiveTap(amqp_uri).drain_sent(*database_urls)


def queue_depths(amqp_uri: str, queues: list[str]) -> dict[str, int]:
    connection = pika.BlockingConnection(pika.URLParameters(amqp_uri))
    try:
        channel = connection.channel()
        return {q: channel.queue_declare(q, passive=True).method.message_count for q in queues}
    finally:
        connection.close()


def waiting_for(service: str, missing: list[dict], brokers: dict[str, str]) -> dict:
    """Depths of the queues an event the service never applied could wait in, on each broker given."""
    kinds = {(e["producer"], e["type"]) for e in missing}
    queues = [h.queue for h in links.handlers_of(service) if (h.source, h.event_type) in kinds]
    found = {}
    for name, uri in brokers.items():
        try:
            found[name] = queue_depths(uri, queues + [f"{q}.dead" for q in queues])
        except Exception as exc:  # noqa: BLE001 - a diagnosis, not the assertion
            found[name] = repr(exc)
    return found


def shovel_plugin_enabled() -> bool:
    result = subprocess.run(["rabbitmq-plugins", "list", "-e", "-m"], capture_output=True, text=True, timeout=60)
    return "rabbitmq_shovel" in result.stdout.split()


class Customers:
    """Schools joining, appointing a head and buying an SLA, through membership and catalogue only."""

    def __init__(self, stack, offering_code: str):
        self.stack = stack
        self.offering_code = offering_code
        self.base = random.randint(100, 198) * 1000  # school URNs are 100000-199999 (membership rule 11)
        self.joined: list[str] = []
        self.heads: dict[str, str] = {}  # urn -> contact_id
        self.subscriptions: dict[str, str] = {}  # subscription_id -> urn
        self.bought_at: dict[str, float] = {}  # subscription_id -> time.monotonic() of the 201
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def join_and_buy(self) -> None:
        index = len(self.joined)
        urn = str(self.base + index)
        school = factories.school(urn=urn, dfe_number=f"825/{1000 + index}", name=f"Drill School {urn}",
                                  number_on_roll=150 + index)
        status, body = http_json("POST", f"{self.stack.url('membership')}/members", school)
        if status != 201:
            self.errors.append(f"join {urn}: {status} {body}")
            return
        self.joined.append(urn)
        head = self.heads[urn] = appoint_head(self.stack, urn)
        catalogue = self.stack.url("catalogue")
        eventually(lambda: head in [b["contact_id"] for b in http_json(
            "GET", f"{catalogue}/members/{urn}")[1].get("authorised_buyers", [])],
            timeout=60, message=f"catalogue learning that {urn}'s head may buy")
        status, body = http_json("POST", f"{catalogue}/subscriptions", {
            "urn": urn, "offering_code": self.offering_code, "edition_year": 2026,
            "po_number": f"PO-{index}"}, token=tokens.contact(urn, head))
        if status != 201:
            self.errors.append(f"buy for {urn}: {status} {body}")
            return
        self.subscriptions[body["subscription_id"]] = urn
        self.bought_at[body["subscription_id"]] = time.monotonic()

    def bought_between(self, start: float, end: float) -> int:
        return sum(1 for at in self.bought_at.values() if start <= at <= end)

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


def start_instance(stack, name: str, *, amqp_uri: str, database_url: str, operator: str, logs,
                   extra_env: dict | None = None) -> ServiceProcess:
    proc = ServiceProcess(SPECS[name], amqp_uri=amqp_uri, database_url=database_url, port=free_port(),
                          log_path=logs / f"{name}-{operator}.log",
                          extra_env={**TEST_EVENT_SETTINGS, **tokens.service_auth_env(), **(extra_env or {}),
                                     "OPERATOR_NAME": operator})
    stack.processes[f"{name}@{operator}"] = proc  # stopped with the stack at the end
    proc.start().wait_ready(90)
    return proc


def book_and_attend(scheduling: str, session_id: str, urn: str, contact_id: str) -> dict:
    """A head books a place (once scheduling knows them) and attends: a chargeable attendance."""
    def attempt():
        status, body = http_json("POST", f"{scheduling}/sessions/{session_id}/bookings",
                                 {"urn": urn, "booked_on": "2026-11-20"}, token=tokens.contact(urn, contact_id))
        if status == 422 and body.get("field") in ("urn", "contact_id"):
            return None  # not learnt yet
        return status, body
    status, booking = eventually(attempt, timeout=60, message=f"scheduling learning of {urn}'s head")
    assert status == 201 and booking["status"] == "confirmed", booking
    assert (booking["price_basis"], booking["unit_price_pence"]) == ("non_subscriber", 15000), booking
    status, attendance = http_json("POST", f"{scheduling}/bookings/{booking['booking_id']}/attendance",
                                   {"attended": True})
    assert status == 201 and attendance["chargeable"] is True, attendance
    return attendance


def invoice_lines(url: str) -> list[tuple]:
    """(charge_id, operator_name, number) of every invoice line."""
    return rows(url, "SELECT l.charge_id, d.operator_name, d.number FROM document_lines l "
                     "JOIN documents d ON d.id = l.document_id WHERE d.kind = 'invoice'")


def numbers(url: str, operator: str) -> list[str]:
    return sorted(n for (n,) in rows(url, f"SELECT number FROM documents WHERE kind = 'invoice' "
                                          f"AND operator_name = '{operator}'"))


def file_bytes(sqlite_url: str) -> bytes:
    return open(sqlite_url.removeprefix("sqlite:///"), "rb").read()


# -- the drill ------------------------------------------------------------------------------------
@pytest.fixture
def mat_vhost():
    host = Vhost()
    yield host
    host.delete()


def test_billing_to_the_council_and_scheduling_to_a_mat_lose_and_duplicate_nothing(
        stack_factory, tmp_path, mat_vhost):
    sqlite, postgresql = Databases("sqlite", tmp_path), Databases("postgresql", tmp_path)
    stack = stack_factory(sqlite, extra_env=TERMLY)
    try:
        _drill(stack, tmp_path, mat_vhost, sqlite, postgresql)
    finally:
        stack.stop_all()  # before its PostgreSQL database goes
        postgresql.drop_all()


def _drill(stack, tmp_path, mat_vhost, sqlite, postgresql):
    county = stack.amqp_uri
    stack.start()
    logs = tmp_path / "logs"
    pids = {name: stack.processes[name].process.pid for name in ("membership", "catalogue")}
    offering = factories.per_pupil_offering()
    assert http_json("POST", f"{stack.url('catalogue')}/offerings", offering)[0] == 201
    course_offering = {"code": f"DSL-{random.randint(1000, 9999)}", "name": "Designated safeguarding lead training",
                       "service_area": "governance", "vat_treatment": "exempt",
                       "edition": {"year": 2026, "terms": {"model": "per_delegate", "subscriber_price_pence": 9500,
                                                           "non_subscriber_price_pence": 15000}}}
    assert http_json("POST", f"{stack.url('catalogue')}/offerings", course_offering)[0] == 201

    # 1. The trust runs everything: schools join, appoint heads, buy SLAs; heads book a course and attend.
    customers = Customers(stack, offering["code"])
    for _ in range(5):
        customers.join_and_buy()
    assert not customers.errors, customers.errors
    scheduling = stack.url("scheduling")
    eventually(lambda: http_json("POST", f"{scheduling}/courses", {
        "course_code": "DSL-DRILL", "title": "DSL refresher", "offering_code": course_offering["code"]})[0] == 201,
        timeout=60, message="scheduling learning of the course's offering")
    status, session = http_json("POST", f"{scheduling}/courses/DSL-DRILL/sessions",
                                {"date": COURSE_DAY, "capacity": 50, "cutoff_days": 7})
    assert status == 201, session
    attendances = [book_and_attend(scheduling, session["session_id"], urn, customers.heads[urn])
                   for urn in customers.joined[:3]]
    old_billing_db = stack.database_urls["billing"]
    eventually(lambda: count(old_billing_db, "charges") == 5 + 3, timeout=60, message="5 SLA + 3 course charges")
    billing = stack.url("billing")
    autumn = billing_run(billing, {"period": "2026/27 autumn", "issue_date": "2026-12-01"})
    assert not autumn["rerun"] and autumn["operator"] == TRUST, autumn
    assert autumn["invoices_issued"] == 5  # the SLAs; the spring course is not due yet
    assert numbers(old_billing_db, TRUST) == [f"BLT-{n:06d}" for n in range(1, 6)]

    # 2. Billing goes to the council, from SQLite to PostgreSQL, while schools keep joining and buying.
    customers.start()
    time.sleep(1.0)
    council_db = postgresql.url("billing")
    billing_archive = tmp_path / "billing-handover.tar.gz"
    old_billing = stack.processes["billing"]
    gap_start = time.monotonic()
    report = ops("handover", "--service", "billing", "--from-database", old_billing_db, "--from-amqp", county,
                 "--from-operator", TRUST, "--from-operator-legal-name", TRUST_LEGAL, "--to-database", council_db,
                 "--to-operator", COUNCIL, "--archive", str(billing_archive), "--effective-date", "2027-01-01",
                 "--quiesce-url", old_billing.url, "--stop-pid", str(old_billing.process.pid))
    assert old_billing.process.wait(5) == 0, "the quiesced instance still stopped cleanly"
    assert report["quiesce"]["drained"] and len(report["quiesce"]["quiesced"]) == len(links.handlers_of("billing"))
    assert all(q["consumers"] == 0 for q in report["queues"].values())
    assert report["drain"]["left_unsent"] == 0
    assert report["import"]["rows_loaded"] == report["export"]["row_counts"]
    assert report["import"]["rows_loaded"]["documents"] == 5
    assert report["import"]["handover_event"]["to_operator"] == COUNCIL
    time.sleep(1.5)  # the gap: billing runs nowhere, its queues keep collecting
    billing_queues = [h.queue for h in links.handlers_of("billing")]
    eventually(lambda: sum(queue_depths(county, billing_queues).values()) > 0, timeout=30,
               message="events waiting for billing during the gap")
    council_billing = start_instance(stack, "billing", amqp_uri=stack.service_amqp_uri("billing"), database_url=council_db,
                                     operator=COUNCIL, logs=logs, extra_env={**TERMLY, **COUNCIL_ENV})
    gap_end = time.monotonic()
    assert http_json("GET", f"{council_billing.url}/health")[1]["operator"] == COUNCIL
    assert customers.bought_between(gap_start, gap_end) >= 1, "purchases went on while billing ran nowhere"
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
    gap_start = time.monotonic()
    report = ops("handover", "--service", "scheduling", "--from-database", old_scheduling_db,
                 "--from-amqp", county, "--from-operator", TRUST, "--to-database", mat_db, "--to-operator", MAT,
                 "--archive", str(scheduling_archive), "--effective-date", "2027-09-01",
                 "--stop-pid", str(old_scheduling.process.pid))
    assert old_scheduling.process.wait(5) is not None
    assert report["import"]["rows_loaded"] == report["export"]["row_counts"]
    assert report["import"]["rows_loaded"]["schools"] >= 5 and report["import"]["rows_loaded"]["bookings"] == 3
    scheduling_queues = [h.queue for h in links.handlers_of("scheduling")]
    eventually(lambda: sum(queue_depths(county, scheduling_queues).values()) > 0, timeout=30,
               message="events waiting for scheduling during the gap")
    linked = ops("link-brokers", "--service", "scheduling", "--old-amqp", county, "--new-amqp", mat_vhost.amqp_uri,
                 "--label", MAT, "--config", str(ROOT / "services/scheduling/config.yml"),
                 "--write-definitions", str(tmp_path / "scheduling-links.json"))
    assert set(linked["running"].values()) == {"running"}
    assert len(linked["running"]) == len(scheduling_queues) + 1  # one per handler queue, one back for its events
    time.sleep(1.0)
    mat_scheduling = start_instance(stack, "scheduling", amqp_uri=mat_vhost.service_uris["scheduling"], database_url=mat_db,
                                    operator=MAT, logs=logs)
    gap_end = time.monotonic()
    assert customers.bought_between(gap_start, gap_end) >= 1, "purchases went on while scheduling ran nowhere"
    time.sleep(2.0)
    customers.stop()
    assert not customers.errors, customers.errors
    # The MAT's scheduling takes a booking for a school that joined after the trust's scheduling stopped;
    # its attendance reaches the council's billing through the outbound shovel.
    late = customers.joined[-1]
    attendances.append(book_and_attend(mat_scheduling.url, session["session_id"], late, customers.heads[late]))

    # Settled: every effect once, at both new operators.
    joined, bought = set(customers.joined), customers.subscriptions
    assert len(joined) == len(customers.joined) >= 10 and len(bought) == len(joined)
    attendance_ids = sorted(a["attendance_id"] for a in attendances)
    eventually(lambda: count(council_db, "charges") == len(bought) + len(attendances), timeout=120,
               message="every charge at the council")
    eventually(lambda: count(mat_db, "eligibility") == len(bought) and count(mat_db, "schools") == len(joined),
               timeout=120, message="scheduling at the MAT caught up")

    # 4. The council bills the spring term, in its own series.
    council = council_billing.url
    spring = billing_run(council, {"period": "2026/27 spring", "issue_date": "2027-04-01"})
    assert not spring["rerun"] and spring["operator"] == COUNCIL and spring["invoices_issued"] >= 1, spring
    eventually(lambda: count(council_db, "outbox", "WHERE sent_at IS NULL") == 0
               and count(mat_db, "outbox", "WHERE sent_at IS NULL") == 0, timeout=60, message="outboxes empty")
    time.sleep(2.0)  # anything still in flight would show as an extra row now

    charges = rows(council_db, "SELECT id, subscription_id, attendance_id, status, kind FROM charges")
    assert sorted(s for _, s, _, _, _ in charges if s) == sorted(bought), "every SLA charged exactly once"
    assert sorted(a for _, _, a, _, _ in charges if a) == attendance_ids, "every attendance charged once"
    members = {urn for (urn,) in rows(council_db, "SELECT urn FROM members")}
    stuck = rows(council_db, "SELECT id, urn, source FROM charges WHERE status = 'unmatched'")
    assert not [c for c in stuck if c[1] in members], (
        f"charges left unmatched although billing knows their school: {stuck}; a charge and its school's "
        "member_joined handled at the same moment on PostgreSQL each miss the other's uncommitted row")
    assert {(status, kind) for _, _, _, status, kind in charges} == {("invoiced", "charge")}
    old_charges = rows(old_billing_db, "SELECT id, subscription_id FROM charges")
    assert set(old_charges) <= {(i, s) for i, s, _, _, _ in charges}, "the trust's charges moved unchanged"

    # Every charge invoiced exactly once across both operators; the trust's invoices moved unchanged.
    lines = invoice_lines(council_db)
    per_charge: dict[str, list[str]] = {}
    for charge_id, _, number in lines:
        per_charge.setdefault(charge_id, []).append(number)
    assert sorted(per_charge) == sorted(i for i, *_ in charges)
    assert all(len(n) == 1 for n in per_charge.values()), {c: n for c, n in per_charge.items() if len(n) > 1}
    by_trust = {c for c, operator, _ in lines if operator == TRUST}
    by_council = {c for c, operator, _ in lines if operator == COUNCIL}
    assert by_trust == {c for c, *_ in invoice_lines(old_billing_db)} and len(by_trust) == 5
    assert by_council and not by_trust & by_council and by_trust | by_council == set(per_charge)
    assert {c for c, _, a, _, _ in charges if a} <= by_council, "the spring course is billed by the council"
    assert count(council_db, "documents", "WHERE kind = 'credit_note'") == 0
    # Both series gap-free and distinct.
    trust_numbers, council_numbers = numbers(council_db, TRUST), numbers(council_db, COUNCIL)
    assert trust_numbers == [f"BLT-{n:06d}" for n in range(1, 6)]
    assert council_numbers == [f"BC-{n:06d}" for n in range(1, len(council_numbers) + 1)]
    assert len(council_numbers) == spring["invoices_issued"]
    def documents(url, where=""):
        return sorted(tuple(str(v) for v in row) for row in rows(
            url, f"SELECT id, number, operator, gross_pence, issue_date FROM documents {where}"))
    assert documents(council_db, f"WHERE operator_name = '{TRUST}'") == documents(old_billing_db), \
        "the trust's documents moved unchanged"
    # Each document shows its issuer's legal identity.
    for number in trust_numbers:
        document = http_json("GET", f"{council}/invoices/{number}")[1]
        assert (document["operator"]["legal_name"], document["issue_date"]) == (TRUST_LEGAL, "2026-12-01")
    for number in council_numbers:
        document = http_json("GET", f"{council}/invoices/{number}")[1]
        assert (document["operator"]["legal_name"], document["operator"]["vat_number"],
                document["issue_date"]) == (COUNCIL_LEGAL, "GB987654321", "2027-04-01"), document

    # No event lost or published twice.
    events = observed(county, stack.database_urls["membership"], stack.database_urls["catalogue"], old_billing_db,
                      council_db, old_scheduling_db, mat_db)
    ids = [e["event_id"] for e in events]
    assert len(ids) == len(set(ids)), "no event published twice"
    by_type: dict[str, list[dict]] = {}
    for event in events:
        by_type.setdefault(event["type"], []).append(event)
    assert len(by_type["member_joined"]) == len(joined) and len(by_type["subscription_started"]) == len(bought)
    assert len(by_type["attendance_recorded"]) == len(attendances)
    for service, database, new_broker in (("billing", council_db, county), ("scheduling", mat_db, mat_vhost.amqp_uri)):
        consumed = {(h.source, h.event_type) for h in links.handlers_of(service)}
        expected = {e["event_id"] for e in events if (e["producer"], e["type"]) in consumed}

        def all_handled(database=database, expected=expected, service=service):
            handled = {event_id for (event_id,) in rows(database, "SELECT event_id FROM inbox")}
            missing = [e for e in events if e["event_id"] in expected - handled]
            assert handled == expected, (
                f"{service}: every event it consumes applied, once (the inbox holds each once); missing "
                f"{[(e['event_id'], e['type'], e['occurred_at']) for e in missing]}, unknown {handled - expected}; "
                f"where they wait: {waiting_for(service, missing, {'county': county, 'new': new_broker})}")
            return True
        eventually(all_handled, timeout=30, message=f"{service} applied every event it consumes")
    charge_events: dict[str, set] = {}
    for event in by_type["charge_recorded"]:
        charge_events.setdefault(event["payload"]["charge_id"], set()).add(event["event_id"])
    assert sorted(charge_events) == sorted(str(i) for i, *_ in charges)
    assert all(len(ids) == 1 for ids in charge_events.values()), "no charge announced under two event ids"
    assert {e["operator"] for e in by_type["charge_recorded"]} == {TRUST, COUNCIL}
    issued = sorted((e["payload"]["invoice_number"], e["operator"]) for e in by_type["invoice_issued"])
    assert issued == sorted([(n, TRUST) for n in trust_numbers] + [(n, COUNCIL) for n in council_numbers])
    assert {e["operator"] for e in by_type["attendance_recorded"]} == {TRUST, MAT}

    handed = {e["event_id"]: e for e in by_type["function_handed_over"]}
    assert sorted((e["producer"], e["operator"], e["exchange"], json.dumps(e["payload"], sort_keys=True))
                  for e in handed.values()) == [
        ("billing", COUNCIL, "billing.events", json.dumps({"effective_date": "2027-01-01", "from_operator": TRUST,
                                                            "function": "billing", "to_operator": COUNCIL},
                                                           sort_keys=True)),
        ("scheduling", MAT, "scheduling.events", json.dumps({"effective_date": "2027-09-01", "from_operator": TRUST,
                                                              "function": "scheduling", "to_operator": MAT},
                                                             sort_keys=True)),
    ], "each handover announced exactly once, the MAT's through the shovel"

    handlers = [h.queue for h in links.handlers_of("scheduling")]
    assert set(queue_depths(county, handlers).values()) == {0}, "the county's scheduling queues are all forwarded"
    assert set(queue_depths(county, [f"{q}.dead" for q in billing_queues]).values()) == {0}
    assert set(queue_depths(mat_vhost.amqp_uri, [f"{q}.dead" for q in handlers]).values()) == {0}

    # Membership and catalogue were never restarted.
    for name, pid in pids.items():
        assert stack.processes[name].alive() and stack.processes[name].process.pid == pid, name

    # 5. The trust erases its copies of personal data; each service's own PERSONAL_DATA says what that is.
    people = [f"Drill Head {urn}".encode() for urn in joined] + [f"head.{urn}@".encode() for urn in joined]
    # billing keeps each school's head teacher as the invoice contact (issue 14, rule 13)
    known = count(old_billing_db, "contacts", "WHERE display_name LIKE 'Drill Head %'")
    assert known >= 5  # the heads of the schools that joined before the handover
    erased = ops("erase", "--service", "billing", "--database", old_billing_db, "--archive", str(billing_archive))
    assert erased["declared"] == {"audit_log": ["subject"], "contacts": ["display_name", "email"],
                                  "documents": ["contact_name", "contact_email"]}
    assert {(e["table"], e["column"]): e["values"] for e in erased["erased"]}[("contacts", "display_name")] == known
    assert count(old_billing_db, "contacts", "WHERE display_name LIKE 'Drill Head %'") == 0
    assert erased["outbox_events_deleted"] >= 5 + 3 + 5 and erased["vacuumed"]
    assert count(old_billing_db, "outbox") == 0
    raw = file_bytes(old_billing_db)
    assert not [p for p in people if p in raw]
    assert b"Drill School" in raw, "organisations' names are not personal data: the trust keeps its records"
    known = count(old_scheduling_db, "contacts", "WHERE display_name IS NOT NULL")
    assert known >= 5
    erased = ops("erase", "--service", "scheduling", "--database", old_scheduling_db,
                 "--archive", str(scheduling_archive))
    assert erased["declared"] == {"audit_log": ["subject"], "contacts": ["display_name"], "peer_reviews": ["report"]}
    assert [e for e in erased["erased"] if e["table"] != "audit_log"] == [
        {"table": "contacts", "column": "display_name", "values": known, "replaced_with": None},
        {"table": "peer_reviews", "column": "report", "values": 0, "replaced_with": None}]  # no review in the drill
    assert erased["outbox_events_deleted"] >= 3 and count(old_scheduling_db, "outbox") == 0
    assert count(old_scheduling_db, "contacts", "WHERE display_name IS NOT NULL") == 0
    raw = file_bytes(old_scheduling_db)
    assert not [p for p in people if p in raw], "no name left in the old scheduling file, free pages included"
    # ... while the new operators keep theirs.
    assert count(mat_db, "contacts", "WHERE display_name LIKE 'Drill Head %'") == len(joined)
    assert count(council_db, "members", "WHERE name LIKE 'Drill School%'") == len(joined)

    print(json.dumps({"schools_joined": len(joined), "slas_bought": len(bought), "charges": len(charges),
                      "invoices_by_trust": len(trust_numbers), "invoices_by_council": len(council_numbers),
                      "events_observed": len(events),
                      "events_by_type": {t: len(v) for t, v in sorted(by_type.items())}}))
