"""Fixtures for tests that run the real services as processes on the real broker.

Every test gets its own RabbitMQ virtual host (deleted afterwards), and
every stack its own fresh databases (SQLite files in a temporary folder, or
PostgreSQL databases created and dropped here), so runs never collide.
"""
from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from deploy.local import SERVICES, SPECS, ServiceProcess  # noqa: E402
from tests.brokers import SHARED_BROKER, Broker, private_broker  # noqa: E402,F401 - fixture re-exported
from tests import tokens  # noqa: E402

PG_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
TEST_EVENT_SETTINGS = {"EVENT_RETRY_DELAYS_MS": "[200, 500]", "EVENT_DELIVERY_LIMIT": "5",
                       "EVENT_RELAY_MAX_BACKOFF_SECONDS": "2"}
# The broker topology of a test vhost is provisioned with the same settings the services run with.
TEST_TOPOLOGY_SETTINGS = {"retry_delays_ms": [200, 500], "delivery_limit": 5}
# Test services run as their own least-privilege broker users, `test-<session>-<service>`, as in a
# deployment. Broker users belong to the whole broker, not to a vhost, so the prefix keeps them apart
# from the users a local `make run` provisions and from those of other test sessions running on the
# same broker at the same time: with one shared `test-<service>`, whichever session provisioned last
# reset its password and the other session's services were refused (ACCESS_REFUSED) mid-run.
# `pytest_sessionfinish` deletes them.
TEST_USER_PREFIX = f"test-{uuid.uuid4().hex[:8]}-"
TEST_BROKER_PASSWORDS = {spec.name: uuid.uuid4().hex for spec in SERVICES}


_BROKER_USERS_MADE: list[str] = []  # an administrator's URI, once this session made its broker users


def pytest_sessionfinish(session, exitstatus):
    """Delete this session's broker users (each test's vhost is deleted after it; users outlive vhosts)."""
    if not _BROKER_USERS_MADE:
        return
    from partnership_ops.topology import Management, TopologyError

    management = Management.for_amqp_uri(_BROKER_USERS_MADE[0])
    for spec in SERVICES:
        try:
            management.request("DELETE", f"/api/users/{TEST_USER_PREFIX}{spec.name}")
        except TopologyError:  # best effort: never created, or already gone
            pass


def rabbitmqctl(*args: str) -> str:
    """rabbitmqctl against the machine's shared node (read and per-vhost commands only: never stop it)."""
    return SHARED_BROKER.rabbitmqctl(*args)


class Vhost:
    """A throwaway RabbitMQ virtual host for one test, provisioned as a deployment is
    (`deploy/topology.py`): every producer's exchange and archive and one least-privilege user
    per service at once; each service's handler queues when it is first started (`provision`),
    or before, by a test that publishes before its subscriber starts. `amqp_uri` is guest's (an
    administrator: tests publish upstream events and inspect queues with it);
    `service_uris[name]` is what each service runs with. On `broker` (default: the machine's
    shared one; or a test's `private_broker`)."""

    def __init__(self, *, provision: bool = True, broker: Broker = SHARED_BROKER):
        from partnership_ops.topology import Management

        self.broker = broker
        self.name = f"test-{uuid.uuid4().hex[:10]}"
        self.management_url = broker.management_url
        # Through the management API, not rabbitmqctl: every concurrent rabbitmqctl holds one of the
        # few ports the CLI may use to reach the node, and a test run beside another ran out of them.
        self._management = Management.for_amqp_uri(broker.amqp_uri, url=broker.management_url, timeout=60)
        self._management.request("PUT", f"/api/vhosts/{self.name}", {})
        self._management.request("PUT", f"/api/permissions/{self.name}/{broker.admin_user}",
                                 {"configure": ".*", "write": ".*", "read": ".*"})
        self.amqp_uri = broker.uri(self.name)
        self.service_uris: dict[str, str] = {}
        if provision:
            self.service_uris = provision_vhost(self.amqp_uri, [], management_url=self.management_url)

    def delete(self):
        try:
            self._management.request("DELETE", f"/api/vhosts/{self.name}")
        except Exception:  # noqa: BLE001 - best effort cleanup
            pass


def provision_vhost(amqp_uri: str, consumers: list[str] | None, settings: dict | None = None, *,
                    management_url: str | None = None) -> dict[str, str]:
    """Apply the topology (`consumers`' handler queues; all if None) to the vhost of guest's `amqp_uri`;
    returns each service's own AMQP URI there."""
    from deploy.local import provision_broker

    if not _BROKER_USERS_MADE:
        _BROKER_USERS_MADE.append(amqp_uri)
    return provision_broker(amqp_uri, TEST_BROKER_PASSWORDS, user_prefix=TEST_USER_PREFIX,
                            settings=settings or TEST_TOPOLOGY_SETTINGS, consumers=consumers,
                            management_url=management_url)


@pytest.fixture
def broker():
    """The node a test's vhost and stacks live on: the machine's shared one. A test that stops, restarts
    or reconfigures a broker overrides this fixture with `private_broker` (see tests/brokers.py)."""
    return SHARED_BROKER


@pytest.fixture
def vhost(broker):
    # One per test: queues, retry copies and dead letters never leak between tests.
    host = Vhost(broker=broker)
    yield host
    host.delete()


@pytest.fixture
def amqp_uri(vhost):
    return vhost.amqp_uri


class Databases:
    """Fresh databases, one per service, on SQLite or PostgreSQL; dropped on cleanup."""

    def __init__(self, backend: str, tmp_path: Path):
        self.backend = backend
        self.tmp_path = tmp_path
        self.created: list[str] = []

    def url(self, service: str) -> str:
        if self.backend == "sqlite":
            return f"sqlite:///{self.tmp_path / f'{service}-{uuid.uuid4().hex[:6]}.db'}"
        from shared.db import ensure_postgres_database

        url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/t_{service}_{uuid.uuid4().hex[:10]}"
        ensure_postgres_database(url)
        self.created.append(url)
        return url

    def drop_all(self):
        from shared.db import drop_postgres_database

        for url in self.created:
            try:
                drop_postgres_database(url)
            except Exception:  # noqa: BLE001 - best effort cleanup
                pass


@pytest.fixture(params=["sqlite", "postgresql"])
def databases(request, tmp_path):
    dbs = Databases(request.param, tmp_path)
    yield dbs
    dbs.drop_all()


@pytest.fixture
def sqlite_databases(tmp_path):
    return Databases("sqlite", tmp_path)


class Stack:
    """Some or all services running as separate processes."""

    def __init__(self, amqp_uri: str, databases: Databases, log_dir: Path, extra_env: dict | None = None, *,
                 management_url: str | None = None):
        self.amqp_uri = amqp_uri  # an administrator's, on the vhost the services run in
        self.management_url = management_url  # None: port 15672 of amqp_uri's host (the shared broker)
        self.databases = databases
        self.log_dir = log_dir
        # Every service trusts the tests' token issuer (its JWKS served over HTTP by tests.tokens).
        self.extra_env = {**TEST_EVENT_SETTINGS, **tokens.service_auth_env(), **(extra_env or {})}
        self.provisioned: set[str] = set()
        self.processes: dict[str, ServiceProcess] = {}  # a service's (first) process
        self.replicas: dict[str, list[ServiceProcess]] = {}  # every process of a service
        self._turn: dict[str, int] = {}
        self.database_urls: dict[str, str] = {}

    def provision(self, *names: str) -> None:
        """Provision these services' handler queues (and those already provisioned) on this stack's vhost,
        with the retry delays and delivery limit its services run with (idempotent)."""
        import json as _json

        settings = {"retry_delays_ms": _json.loads(self.extra_env["EVENT_RETRY_DELAYS_MS"]),
                    "delivery_limit": int(self.extra_env["EVENT_DELIVERY_LIMIT"])}
        wanted = self.provisioned | set(names)
        provision_vhost(self.amqp_uri, sorted(wanted), settings, management_url=self.management_url)
        self.provisioned = wanted

    def service_amqp_uri(self, name: str) -> str:
        """The service's own broker user on this stack's vhost (provisioned by `Vhost`)."""
        from partnership_ops.topology import amqp_uri_for

        return amqp_uri_for(self.amqp_uri, f"{TEST_USER_PREFIX}{name}", TEST_BROKER_PASSWORDS[name])

    def start(self, *names: str, wait: bool = True, replicas: int = 1) -> "Stack":
        """Start these services (all by default), each as `replicas` processes on its own ports against one
        database (PostgreSQL for more than one: SQLite serves one process)."""
        names = names or tuple(spec.name for spec in SERVICES)
        if not set(names) <= self.provisioned:
            self.provision(*names)
        for name in names:
            if name not in self.database_urls:
                self.database_urls[name] = self.databases.url(name)
            self.replicas[name] = [self._replica(name, i).start() for i in range(replicas)]
            self.processes[name] = self.replicas[name][0]
        if wait:
            for name in names:
                for proc in self.replicas[name]:
                    proc.wait_ready(90)
        return self

    def _replica(self, name: str, index: int) -> ServiceProcess:
        log_name = f"{name}.log" if index == 0 else f"{name}-{index + 1}.log"
        return ServiceProcess(SPECS[name], amqp_uri=self.service_amqp_uri(name), database_url=self.database_urls[name],
                              port=free_port(), log_path=self.log_dir / log_name, extra_env=self.extra_env)

    def restart(self, name: str) -> None:
        for proc in self.replicas.get(name, [self.processes[name]]):
            proc.stop()
        self.start(name)

    def kill_replica(self, name: str, index: int) -> None:
        """SIGKILL one replica of a service (no shutdown of any kind)."""
        self.replicas[name][index].kill()

    def restart_replica(self, name: str, index: int, wait: bool = True) -> None:
        """Start a new process in place of replica `index` (after `kill_replica`)."""
        proc = self._replica(name, index).start()
        self.replicas[name][index] = proc
        if index == 0:
            self.processes[name] = proc
        if wait:
            proc.wait_ready(90)

    def url(self, name: str) -> str:
        """The service's address; with several replicas, each call gives the next live one (round robin),
        so a scenario's requests are spread over them."""
        replicas = self.replicas.get(name) or []
        if len(replicas) < 2 or self.processes.get(name) is not replicas[0]:
            return self.processes[name].url
        for _ in range(len(replicas)):
            self._turn[name] = (self._turn.get(name, -1) + 1) % len(replicas)
            if replicas[self._turn[name]].alive():
                return replicas[self._turn[name]].url
        return replicas[0].url

    def stop_all(self) -> None:
        for proc in {id(p): p for p in [*self.processes.values(),
                                       *(p for ps in self.replicas.values() for p in ps)]}.values():
            proc.stop()

    def logs(self) -> str:
        every = {p.log_path: n for n, p in self.processes.items()}
        every.update({p.log_path: n for n, ps in self.replicas.items() for p in ps})
        return "\n".join(f"==== {n} ({path.name})\n{path.read_text(errors='replace')[-6000:]}"
                         for path, n in every.items() if path.exists())


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def stack_factory(vhost, tmp_path, request):
    stacks: list[Stack] = []

    def make(databases: Databases, extra_env: dict | None = None) -> Stack:
        stack = Stack(vhost.amqp_uri, databases, tmp_path / "logs", extra_env, management_url=vhost.management_url)
        stacks.append(stack)
        return stack

    yield make
    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    for stack in stacks:
        if failed:
            print(stack.logs())
        stack.stop_all()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


TRUST_STAFF = object()  # http_json's default: a token of trust staff holding every trust role


def http_json(method: str, url: str, body: dict | None = None, timeout: float = 10.0,
              headers: dict | None = None, token=TRUST_STAFF) -> tuple[int, dict]:
    """One JSON request; with a trust-staff bearer token unless `token` is given (None: anonymous)."""
    data = json.dumps(body).encode() if body is not None else None
    token = tokens.trust_staff() if token is TRUST_STAFF else token
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": "application/json", **tokens.bearer(token),
                                              **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def http_text(url: str, timeout: float = 10.0, token=TRUST_STAFF) -> str:
    """A GET answering text (CSV, HTML); with a trust-staff bearer token unless `token` is given."""
    token = tokens.trust_staff() if token is TRUST_STAFF else token
    request = urllib.request.Request(url, headers=tokens.bearer(token))
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.read().decode()


def scrape(base_url: str, timeout: float = 10.0) -> str:
    """A service's /metrics, with the scrape credential Prometheus is configured with."""
    request = urllib.request.Request(f"{base_url.rstrip('/')}/metrics", headers=tokens.metrics_headers())
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.read().decode()


def finished_run(base_url: str, answer: tuple[int, dict], timeout: float = 120.0) -> dict:
    """Wait for a job started over HTTP (202 + run resource) to finish; returns the run (status
    succeeded, failed or interrupted). Fails at once if the start was refused."""
    status, run = answer
    assert status == 202, (status, run)
    return eventually(lambda: (lambda r: r if r["status"] not in ("queued", "running") else None)(
        http_json("GET", f"{base_url}{run['links']['self']}")[1]), timeout=timeout, message=f"run {run['id']} to finish")


def billing_run(billing_url: str, body: dict, timeout: float = 120.0) -> dict:
    """Start a billing run (a job) and wait for it: the run's summary (`rerun` true when the period had
    been invoiced already). Fails if it was refused or did not succeed."""
    run = finished_run(billing_url, http_json("POST", f"{billing_url}/billing-runs", body), timeout=timeout)
    assert run["status"] == "succeeded", run
    return run["result"]


def eventually(check, *, timeout: float = 30.0, interval: float = 0.2, message: str = "condition"):
    """Poll `check()` until it returns a truthy value (returned) or the time is up (AssertionError)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except AssertionError as exc:
            last = exc
        time.sleep(interval)
    raise AssertionError(f"{message} not reached in {timeout:.0f}s; last: {last!r}")
