"""The soak: a seeded, bounded run of a county's busiest day times ten, under chaos, and a checker.

    python -m tests.reliability.soak --minutes 10 --seed 17 --replicas 2     # `make soak`

What runs, all started here and removed afterwards (never the machine's shared broker or database):
- a three-node RabbitMQ cluster (tests/brokers.py `BrokerCluster`), the topology applied on it, and
  every service given `AMQP_URI` listing the three nodes;
- a PostgreSQL cluster on its own port (tests/reliability/pg_cluster.py), one database per service;
- `replicas` processes of each of the four services on that database, each on its own HTTP port.

The load (seeded: the same seed gives the same plan) is ten times a county's busiest day (`BUSIEST_DAY`:
the first school day of April, when SLAs are bought and renewed, a billing run goes out and courses
are booked), delivered evenly over the run: schools join and appoint a head teacher, who buys
SLAs, decides renewals (stops an SLA renewing by its notice date) and books course places; some schools convert to academies; a renewal round and
a billing run start half-way. Requests go to the replicas in turn; one refused or failed because its
replica or the database is down is sent again to another replica (bounded).

The chaos loop, at seeded intervals, in turn: SIGKILLs a random replica (and starts it again a few
seconds later), restarts a broker node (SIGKILL, then it rejoins), and restarts PostgreSQL. Every kind
happens at least once in a run.

The checker (after the load stops, everything is back up and the event flow has gone quiet), in the
style of Jepsen's RabbitMQ checker, from what each service itself stored:
- **lost**: an event in a producer's outbox, of a type a consumer subscribes to, missing from that
  consumer's inbox (or never sent);
- **unexpected**: an inbox entry no producer's outbox holds;
- **duplicated**: an effect applied twice: a consumer's row for one fact held twice (a member, a
  charge for one SLA period, a booking), an SLA bought twice, two outbox events with one aggregate
  sequence number;
- and, for information, events the relays **published more than once** (each producer's archive
  stream keeps every copy the broker accepted): harmless when the inboxes hold, which `duplicated` checks;
- throughput (operations and events per second) and publish-to-apply latency (outbox `created_at` to
  inbox `handled_at`, per consumer and event).
"""
from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import random
import statistics
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# A county's busiest day (about 250 schools): the first school day of April, when the year's new members
# join and appoint their head, SLAs are bought and renewals confirmed, courses booked, a few schools
# convert, and the renewal round and the year's billing run go out. Operations in that day.
BUSIEST_DAY = {"join": 30, "purchase": 60, "renewal": 40, "booking": 30, "conversion": 2, "billing_run": 1,
               "renewal_round": 1}
SCALE = 10  # "ten times a county's busiest day"
# A run of this many minutes carries SCALE x BUSIEST_DAY; a shorter or longer one the same rate.
REFERENCE_MINUTES = 10.0
SERVICE_NAMES = ("membership", "catalogue", "billing", "scheduling")
MAT = {"id": "TR07001", "name": "Soak Learning Trust"}
EVENT_ENV = {"EVENT_RETRY_DELAYS_MS": "[200, 500]", "EVENT_DELIVERY_LIMIT": "20",
             "EVENT_RELAY_MAX_BACKOFF_SECONDS": "2", "EVENT_TRANSIENT_BACKOFF_MAX_SECONDS": "2"}
REQUEST_DEADLINE = 120.0  # a request is sent again (another replica) until this long after its first try


def log(message: str) -> None:
    print(f"[soak {time.strftime('%H:%M:%S')}] {message}", flush=True)


# -- the services, `replicas` processes each --------------------------------------------------------
class Replicas:
    """Each service's processes on one database; `post`/`get` go to them in turn."""

    def __init__(self, service_uris: dict[str, str], database_urls: dict[str, str], replicas: int, log_dir: Path):
        from deploy.local import SPECS, ServiceProcess
        from tests import tokens
        from tests.conftest import free_port

        # Every replica trusts the tests' token issuer (its JWKS served over HTTP by tests.tokens, in this process).
        env = {**EVENT_ENV, **tokens.service_auth_env()}
        self.processes: dict[str, list] = {}
        for name in SERVICE_NAMES:
            self.processes[name] = [
                ServiceProcess(SPECS[name], amqp_uri=service_uris[name], database_url=database_urls[name],
                               port=free_port(), log_path=log_dir / f"{name}-{index}.log", extra_env=env)
                for index in range(replicas)]
        self._turn = collections.Counter()
        self._lock = threading.Lock()
        self.retries = collections.Counter()

    def start(self) -> None:
        # One at a time per service: the first migrates its database, the others find it at head.
        for name, processes in self.processes.items():
            for process in processes:
                process.start()
                process.wait_ready(120)

    def all(self):
        return [p for processes in self.processes.values() for p in processes]

    def restart(self, process) -> None:
        process.start()
        process.wait_ready(120)

    def stop(self) -> None:
        for process in self.all():
            process.stop()

    def _next(self, service: str):
        with self._lock:
            self._turn[service] += 1
            processes = self.processes[service]
            return processes[self._turn[service] % len(processes)]

    def request(self, method: str, service: str, path: str, body: dict | None = None, *, token: str | None = None,
                idempotency_key: str | None = None) -> tuple[int, dict, int]:
        """(status, body, tries). A refused connection, a timeout or a 5xx (a replica or the database
        down) is tried again on the next replica until REQUEST_DEADLINE; any other answer is returned.

        Sent with `token` (by default trust staff's, who hold every trust role) and, when given, an
        `Idempotency-Key`: the services' own answer to a retry whose first answer was lost."""
        from tests import tokens

        headers = {"Content-Type": "application/json", **tokens.bearer(token or tokens.trust_staff())}
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        deadline = time.monotonic() + REQUEST_DEADLINE
        tries = 0
        last = None
        while time.monotonic() < deadline:
            tries += 1
            process = self._next(service)
            data = json.dumps(body).encode() if body is not None else None
            request = urllib.request.Request(f"{process.url}{path}", data=data, method=method, headers=headers)
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    return response.status, json.loads(response.read() or b"null"), tries
            except urllib.error.HTTPError as exc:
                payload = exc.read()
                try:
                    answer = json.loads(payload or b"null")
                except ValueError:
                    answer = {"raw": payload[:200].decode(errors="replace")}
                if exc.code < 500:
                    return exc.code, answer, tries
                last = (exc.code, answer)
            except (urllib.error.URLError, OSError) as exc:
                last = exc
            self.retries[service] += 1
            time.sleep(0.5)
        raise TimeoutError(f"{method} {service}{path}: no answer in {REQUEST_DEADLINE:.0f}s; last {last!r}")


# -- the load -----------------------------------------------------------------------------------------
@dataclasses.dataclass
class School:
    urn: str
    head: str | None = None
    subscriptions: list = dataclasses.field(default_factory=list)


class Load:
    """The seeded plan, run by a few workers at an even rate until it is done or the time is up."""

    OFFERINGS = ("SI-SOAK", "GV-SOAK", "DSL-SOAK")

    def __init__(self, services: Replicas, *, seed: int, minutes: float, workers: int = 8):
        self.services = services
        self.rng = random.Random(seed)
        factor = SCALE * minutes / REFERENCE_MINUTES
        self.volume = {kind: max(1, round(count * factor)) for kind, count in BUSIEST_DAY.items()}
        self.volume["billing_run"] = self.volume["renewal_round"] = 1
        self.minutes = minutes
        self.workers = workers
        self.outcomes: collections.Counter = collections.Counter()
        self.errors: list[str] = []
        self.session_ids: list[str] = []
        self._stop = threading.Event()
        self.started = self.finished = 0.0

    def _ok(self, kind: str, answer, *accepted: int) -> dict | None:
        status, body, tries = answer
        self.outcomes[f"{kind} {status}"] += 1
        if status in accepted:
            return body
        if tries > 1 and status == 409:  # an earlier try had committed before its answer was lost
            return {"retried": True}
        self.errors.append(f"{kind}: {status} {str(body)[:200]}")
        return None

    def _eventually(self, check, what: str, timeout: float = 180.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self._stop.is_set():
            found = check()
            if found:
                return found
            time.sleep(0.3)
        self.errors.append(f"{what}: not seen in {timeout:.0f}s")
        return None

    def setup(self) -> None:
        from tests import factories
        from tests.e2e.steps import offering

        s = self.services
        offerings = [factories.per_pupil_offering(code="SI-SOAK"), factories.flat_offering(code="GV-SOAK"),
                     offering("DSL-SOAK", "Designated safeguarding lead training", "governance", "exempt",
                              {"model": "per_delegate", "subscriber_price_pence": 9500,
                               "non_subscriber_price_pence": 15000})]
        for item in offerings:
            self._ok("offering", s.request("POST", "catalogue", "/offerings", item), 201)

        def course():
            status, body, _ = s.request("POST", "scheduling", "/courses", {
                "course_code": "DSL-SOAK", "title": "DSL refresher", "offering_code": "DSL-SOAK"})
            return status in (201, 409)
        self._eventually(course, "scheduling learning the DSL offering")
        for day in (5, 6, 9, 10, 11, 12, 13, 16, 17, 18):  # school days of November 2026
            body = self._ok("session", s.request("POST", "scheduling", "/courses/DSL-SOAK/sessions", {
                "date": f"2026-11-{day:02d}", "capacity": 1000, "cutoff_days": 7}), 201)
            if body:
                self.session_ids.append(body["session_id"])

    def plan(self) -> list[tuple[str, dict]]:
        """Per school, in order: join (with its head), then purchases (one per offering at most), renewals,
        bookings, conversions; the operations of each kind dealt to the schools in a seeded order."""
        joins = self.volume["join"]
        per_school = collections.defaultdict(list)
        for kind in ("purchase", "renewal", "booking", "conversion"):
            order = list(range(joins))
            self.rng.shuffle(order)
            for index in range(self.volume[kind]):
                per_school[order[index % joins]].append(kind)
        steps = []
        for index in range(joins):
            kinds = sorted(per_school[index], key=["purchase", "renewal", "booking", "conversion"].index)
            steps.append((f"{160000 + index}", kinds))
        return steps

    def _journey(self, urn: str, kinds: list[str], rng: random.Random) -> None:
        from tests import factories, tokens

        s = self.services
        if self._ok("join", s.request("POST", "membership", "/members", factories.school(
                urn=urn, number_on_roll=rng.randint(80, 600))), 201) is None:
            return
        self._pace()
        body = self._ok("appoint", s.request("POST", "membership", f"/members/{urn}/contacts", {
            "display_name": f"Head {urn}", "role": "head_teacher", "effective_date": "2026-01-05"}), 201)
        if body is None or "contact_id" not in body:
            return
        head = body["contact_id"]
        # Purchases, renewal decisions and bookings are the head's own: made with their token, which names them.
        own = tokens.contact(urn, head)
        self._eventually(lambda: head in [b["contact_id"] for b in s.request(
            "GET", "catalogue", f"/members/{urn}")[1].get("authorised_buyers", [])], f"catalogue learning {urn}'s head")
        bought: list[str] = []
        offerings = list(self.OFFERINGS)
        rng.shuffle(offerings)
        for kind in kinds:
            if self._stop.is_set():
                return
            self._pace()
            if kind == "purchase":
                if not offerings:
                    continue  # one of each offering per school: a fourth would overlap
                code = offerings.pop()
                body = self._ok("purchase", s.request("POST", "catalogue", "/subscriptions", {
                    "urn": urn, "offering_code": code, "edition_year": 2026}, token=own,
                    idempotency_key=f"soak-purchase-{urn}-{code}"), 201)
                if body and "subscription_id" in body:
                    bought.append(body["subscription_id"])
            elif kind == "renewal" and bought:
                # a renewal decision: the head stops one SLA renewing by its notice date (already stopped: 409);
                # the SLAs left to renew are renewed by the renewal round
                self._ok("renewal stopped", s.request("POST", "catalogue",
                                                      f"/subscriptions/{rng.choice(bought)}/cancel",
                                                      {"reason": "budget review"}, token=own), 200, 409)
            elif kind == "booking" and self.session_ids:
                session = rng.choice(self.session_ids)

                def book():
                    status, body, _ = s.request("POST", "scheduling", f"/sessions/{session}/bookings",
                                                {"urn": urn, "booked_on": "2026-10-01"}, token=own,
                                                idempotency_key=f"soak-booking-{urn}-{session}")
                    return (status, body) if status in (201, 409) else None
                found = self._eventually(book, f"{urn}'s booking")
                if found:
                    self.outcomes[f"booking {found[0]}"] += 1
            elif kind == "conversion":
                self._ok("conversion", s.request("POST", "membership", f"/members/{urn}/conversion", {
                    "successor_urn": f"{int(urn) + 20000}", "conversion_date": "2027-01-01", "mat": MAT,
                    "carry_contacts": True}), 201)
                return  # the school is an academy from January: nothing more for its old URN

    def _pace(self) -> None:
        """Spread the operations evenly over the run (a rate, not an order: nothing waits on it)."""
        with self._pace_lock:
            self._issued += 1
            due = self.started + self._issued / self.rate
        pause = due - time.monotonic()
        if pause > 0:
            self._stop.wait(pause)

    def run(self) -> None:
        steps = self.plan()
        total = sum(2 + len(kinds) for _, kinds in steps)
        paced = sum(1 + len(kinds) for _, kinds in steps)  # a join and its head's appointment are paced as one
        self.rate = paced / (self.minutes * 60.0)
        self._pace_lock = threading.Lock()
        self._issued = 0
        self.started = time.monotonic()
        log(f"load: {len(steps)} schools, {total} operations over {self.minutes:g} min; volume {self.volume}")
        queue = collections.deque(steps)
        queue_lock = threading.Lock()
        seeds = [self.rng.randrange(2**32) for _ in range(len(steps))]

        def worker():
            while not self._stop.is_set():
                with queue_lock:
                    if not queue:
                        return
                    index = len(steps) - len(queue)
                    urn, kinds = queue.popleft()
                try:
                    self._journey(urn, kinds, random.Random(seeds[index]))
                except Exception as exc:  # noqa: BLE001 - reported; the run goes on
                    self.errors.append(f"{urn}: {type(exc).__name__}: {exc}")

        threads = [threading.Thread(target=worker, daemon=True) for _ in range(self.workers)]
        for thread in threads:
            thread.start()
        half = self.started + self.minutes * 30.0
        while time.monotonic() < half and any(t.is_alive() for t in threads):
            time.sleep(0.5)
        self._jobs()
        end = self.started + self.minutes * 60.0 + 120.0  # the plan's time, and a bounded grace
        for thread in threads:
            thread.join(max(0.0, end - time.monotonic()))
        self._stop.set()
        for thread in threads:
            thread.join(30)
        self.finished = time.monotonic()

    def _jobs(self) -> None:
        """Half-way: the renewal round and the spring term's billing run (jobs; waited for, bounded)."""
        for service, path, body in (("catalogue", "/renewal-rounds", {"year": 2026}),
                                    ("billing", "/billing-runs", {"period": "2026/27",
                                                                  "issue_date": "2026-09-01"})):
            kind = path.strip("/")
            for _ in range(3):  # started again if chaos interrupted it (both jobs are resumable or rerunnable)
                answer = self.services.request("POST", service, path, body)
                run = self._ok(kind, answer, 202)
                if run is None:
                    break
                link = run["links"]["self"]
                done = self._eventually(lambda: (lambda r: r if r.get("status") not in ("queued", "running") else None)(
                    self.services.request("GET", service, link)[1] or {}), f"{kind} to finish", timeout=240)
                if done and done["status"] == "succeeded":
                    self.outcomes[f"{kind} succeeded"] += 1
                    break
                self.outcomes[f"{kind} {done and done['status']}"] += 1

    def stop(self) -> None:
        self._stop.set()


# -- the chaos ------------------------------------------------------------------------------------
class Chaos:
    KINDS = ("kill_replica", "restart_broker_node", "restart_postgres")

    def __init__(self, services: Replicas, cluster, postgres, *, seed: int, interval: tuple[float, float]):
        self.services = services
        self.cluster = cluster
        self.postgres = postgres
        self.rng = random.Random(seed + 1)
        self.interval = interval
        self.done: collections.Counter = collections.Counter()
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _act(self, kind: str) -> None:
        if kind == "kill_replica":
            process = self.rng.choice(self.services.all())
            log(f"chaos: SIGKILL {process.spec.name} on port {process.port}")
            process.kill()
            self._stop.wait(self.rng.uniform(1, 4))
            self.services.restart(process)
        elif kind == "restart_broker_node":
            node = self.rng.choice(self.cluster.nodes)
            log(f"chaos: SIGKILL broker node {node.node}, then start it again")
            node.kill()
            self._stop.wait(self.rng.uniform(2, 6))
            node.revive()
            self.cluster.await_running({n.node for n in self.cluster.nodes})
        else:
            log("chaos: restart PostgreSQL")
            self.postgres.stop("fast")
            self._stop.wait(self.rng.uniform(1, 3))
            self.postgres.start()
        self.done[kind] += 1

    def _run(self) -> None:
        order = list(self.KINDS)
        self.rng.shuffle(order)  # each kind once first, then at random
        for round_ in range(10_000):
            if self._stop.wait(self.rng.uniform(*self.interval)):
                return
            kind = order[round_] if round_ < len(order) else self.rng.choice(self.KINDS)
            try:
                self._act(kind)
            except Exception as exc:  # noqa: BLE001 - reported; the run goes on
                self.errors.append(f"{kind}: {type(exc).__name__}: {exc}")
                log(f"chaos: {kind} failed: {exc}")

    def start(self) -> "Chaos":
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop after the action in progress (which puts back what it took down)."""
        self._stop.set()
        self._thread.join(300)


# -- the checker ------------------------------------------------------------------------------------
def _rows(url: str, query: str) -> list[dict]:
    from tests.e2e.steps import rows

    return rows(url, query)


def subscriptions_of(service: str) -> set[tuple[str, str]]:
    from partnership_ops import links

    return {(h.source, h.event_type) for h in links.topology_of(service).handlers}


def check(database_urls: dict[str, str], amqp_uri: str | None = None) -> dict:
    """The figures of the module docstring, from every producer's outbox and every consumer's inbox and state."""
    outbox = {p: _rows(url, "SELECT event_id, event_type, aggregate, sequence, created_at, sent_at FROM outbox")
              for p, url in database_urls.items()}
    by_id = {r["event_id"]: (p, r) for p, rows_ in outbox.items() for r in rows_}
    lost: dict[str, int] = {}
    unexpected: dict[str, int] = {}
    latencies: list[float] = []
    applied = 0
    for consumer, url in database_urls.items():
        wanted = subscriptions_of(consumer)
        if not wanted:
            continue
        inbox = {r["event_id"]: r for r in _rows(url, "SELECT event_id, event_type, producer, handled_at FROM inbox")}
        expected = {e for e, (p, r) in by_id.items() if (p, r["event_type"]) in wanted}
        lost[consumer] = len(expected - set(inbox))
        unexpected[consumer] = len([e for e in inbox if e not in by_id])
        applied += len(inbox)
        for event_id in expected & set(inbox):
            created = by_id[event_id][1]["created_at"]
            latencies.append((inbox[event_id]["handled_at"] - created).total_seconds())
    unsent = {p: sum(1 for r in rows_ if r["sent_at"] is None) for p, rows_ in outbox.items()}

    duplicated = {}
    duplicate_queries = {
        "catalogue": {"member rows per urn": "SELECT urn FROM members GROUP BY urn HAVING count(*) > 1",
                      "SLAs bought twice": "SELECT urn FROM subscriptions GROUP BY urn, offering_code, edition_year "
                                           "HAVING count(*) > 1"},
        "billing": {"member rows per urn": "SELECT urn FROM members GROUP BY urn HAVING count(*) > 1",
                    "charges per SLA period": "SELECT subscription_id FROM charges WHERE subscription_id IS NOT NULL "
                                              "GROUP BY subscription_id, period_start, kind HAVING count(*) > 1"},
        "scheduling": {"bookings per contact and session": "SELECT session_id FROM bookings WHERE status != 'cancelled' "
                                                           "GROUP BY session_id, contact_id HAVING count(*) > 1"},
    }
    for service, queries in duplicate_queries.items():
        for what, query in queries.items():
            duplicated[f"{service}: {what}"] = len(_rows(database_urls[service], query))
    for producer, rows_ in outbox.items():
        seen = collections.Counter((r["aggregate"], r["sequence"]) for r in rows_ if r["sequence"] is not None)
        duplicated[f"{producer}: outbox events with one aggregate sequence"] = sum(1 for n in seen.values() if n > 1)
    # SLAs in billing with no SLA in the catalogue, or the reverse: effects unexplained or missing
    catalogue_slas = {r["id"] for r in _rows(database_urls["catalogue"], "SELECT id FROM subscriptions")}
    billing_slas = {r["subscription_id"] for r in _rows(database_urls["billing"], "SELECT subscription_id FROM subscriptions")}
    unexpected["billing SLAs the catalogue never sold"] = len(billing_slas - catalogue_slas)
    lost["catalogue SLAs billing never learnt"] = len(catalogue_slas - billing_slas)

    published_twice = None
    if amqp_uri is not None:
        published_twice = archive_copies(amqp_uri, list(database_urls))
    latencies.sort()

    def pct(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] if latencies else 0.0

    return {"lost": lost, "unexpected": unexpected, "duplicated": duplicated, "unsent": unsent,
            "events_published": len(by_id), "events_applied": applied, "published_more_than_once": published_twice,
            "latency_seconds": {"p50": pct(0.50), "p95": pct(0.95), "p99": pct(0.99),
                                "max": latencies[-1] if latencies else 0.0,
                                "mean": statistics.fmean(latencies) if latencies else 0.0}}


def archive_copies(amqp_uri: str, producers: list[str]) -> dict[str, int]:
    """Per producer, how many events its archive stream holds more than once (copies the relays published)."""
    from partnership_ops import event_archive

    copies = {}
    for producer in producers:
        counts = collections.Counter(e.properties.message_id for e in event_archive.read(
            amqp_uri, producer, start="first", idle_seconds=3.0, timeout=120))
        copies[producer] = sum(n - 1 for n in counts.values() if n > 1)
    return copies


def totals(report: dict) -> dict[str, int]:
    return {"lost": sum(report["lost"].values()) + sum(report["unsent"].values()),
            "duplicated": sum(report["duplicated"].values()),
            "unexpected": sum(report["unexpected"].values())}


# -- the run ------------------------------------------------------------------------------------------
def run(*, minutes: float, seed: int, replicas: int, chaos_interval: tuple[float, float] = (15.0, 30.0),
        log_dir: Path | None = None, quiet_timeout: float = 300.0) -> dict:
    """Start everything, run the load and the chaos for `minutes`, wait for quiet, check, remove all."""
    from shared.db import ensure_postgres_database
    from tests.brokers import BrokerCluster
    from tests.conftest import TEST_BROKER_PASSWORDS, TEST_USER_PREFIX, Vhost, free_port, provision_vhost
    from tests.reliability.pg_cluster import PostgresCluster
    from partnership_ops.topology import amqp_uri_for

    log_dir = Path(log_dir or Path("/tmp") / f"soak-{uuid.uuid4().hex[:6]}")
    log_dir.mkdir(parents=True, exist_ok=True)
    cluster = BrokerCluster(3)
    postgres = None
    services = None
    try:
        log("starting a three-node RabbitMQ cluster and PostgreSQL")
        cluster.start()
        postgres = PostgresCluster(free_port(), max_connections=300)
        postgres.start()
        vhost = Vhost(broker=cluster, provision=False)
        provision_vhost(vhost.amqp_uri, None, {"retry_delays_ms": [200, 500], "delivery_limit": 20},
                        management_url=vhost.management_url)
        service_uris = {name: amqp_uri_for(vhost.amqp_uri, f"{TEST_USER_PREFIX}{name}", TEST_BROKER_PASSWORDS[name])
                        for name in SERVICE_NAMES}
        database_urls = {}
        for name in SERVICE_NAMES:
            database_urls[name] = postgres.url(f"soak_{name}")
            ensure_postgres_database(database_urls[name])
        services = Replicas(service_uris, database_urls, replicas, log_dir)
        log(f"starting {replicas} replica(s) of each service (logs in {log_dir})")
        services.start()
        load = Load(services, seed=seed, minutes=minutes)
        load.setup()
        chaos = Chaos(services, cluster, postgres, seed=seed, interval=chaos_interval).start()
        began = time.monotonic()
        try:
            load.run()
        finally:
            chaos.stop()
        duration = load.finished - load.started
        log(f"load done in {duration:.0f}s; chaos {dict(chaos.done)}; waiting for the event flow to go quiet")
        for process in services.all():  # anything chaos left down (a failed restart) comes back first
            if not process.alive():
                services.restart(process)
        report = _quiet(database_urls, quiet_timeout)
        report["published_more_than_once"] = archive_copies(vhost.amqp_uri, list(SERVICE_NAMES))
        operations = sum(n for k, n in load.outcomes.items()  # requests made: set-up and job outcomes aside
                         if not k.startswith(("offering", "session")) and not k.endswith(("succeeded", "failed",
                                                                                          "interrupted", "None")))
        report.update({
            "seed": seed, "minutes": minutes, "replicas": replicas, "duration_seconds": round(duration, 1),
            "volume": load.volume, "operations": operations, "operations_per_second": round(operations / duration, 2),
            "events_published_per_second": round(report["events_published"] / (time.monotonic() - began), 2),
            "outcomes": dict(sorted(load.outcomes.items())), "load_errors": load.errors[:20],
            "load_error_count": len(load.errors), "chaos": dict(chaos.done), "chaos_errors": chaos.errors,
            "request_retries": dict(services.retries), "totals": None})
        report["totals"] = totals(report)
        return report
    finally:
        if services is not None:
            services.stop()
        if postgres is not None:
            postgres.destroy()
        cluster.stop()


def _quiet(database_urls: dict[str, str], timeout: float) -> dict:
    """Check until nothing is lost or unsent, or `timeout` passed (then the last check stands)."""
    deadline = time.monotonic() + timeout
    report = check(database_urls)
    while time.monotonic() < deadline and totals(report)["lost"]:
        time.sleep(3)
        report = check(database_urls)
    return report


def print_report(report: dict) -> None:
    t = report["totals"]
    lat = report["latency_seconds"]
    print(json.dumps({k: v for k, v in report.items() if k != "totals"}, indent=2, default=str))
    print(f"\nsoak: seed {report['seed']}, {report['minutes']} min, {report['replicas']} replica(s) per service, "
          f"chaos {report['chaos']}")
    print(f"  lost {t['lost']}  duplicated {t['duplicated']}  unexpected {t['unexpected']}")
    print(f"  operations {report['operations']} ({report['operations_per_second']}/s); events published "
          f"{report['events_published']}, applied {report['events_applied']} "
          f"({report['events_published_per_second']} published/s)")
    print(f"  publish-to-apply latency p50 {lat['p50'] * 1000:.0f} ms, p95 {lat['p95'] * 1000:.0f} ms, "
          f"p99 {lat['p99'] * 1000:.0f} ms, max {lat['max']:.1f} s")
    print(f"  published more than once (harmless, inbox): {report['published_more_than_once']}")
    print(f"  load errors {report['load_error_count']}; chaos errors {len(report['chaos_errors'])}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--replicas", type=int, default=2)
    args = parser.parse_args(argv)
    report = run(minutes=args.minutes, seed=args.seed, replicas=args.replicas)
    print_report(report)
    return 0 if not any(report["totals"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
