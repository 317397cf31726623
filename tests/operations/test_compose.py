"""The compose stack, for real, with podman-compose: docker-compose.yml plus the host-network
override (deploy/compose/host.override.yml) that builds RabbitMQ, PostgreSQL and Prometheus from
Debian's packages and keeps every container on 127.0.0.1 on ports of its own (AMQP 5679,
PostgreSQL 5439, services 18001-18004, Prometheus 9099), beside the machine's own broker and
database, which it never touches.

One test, in steps: build what is missing (the debootstrap base is reused when present, podman's
layer cache keeps unchanged images), `up -d`, wait (bounded) for every service's /ready, drive the
first flow (join, buy, charge, eligible) through the containers' HTTP ports, kill billing's
container's process (a crash) and see its restart policy bring it back with nothing lost (the charge is still there,
and a purchase made while it was down is charged once it is back), ask Prometheus's API for
`up == 1` on every target (the four services and RabbitMQ), then `down -v` even on failure.
Each step's duration goes to build/compose-test-timings.json.

Skipped, saying why, when podman or podman-compose is not installed (.ci/run installs both).
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.parse
import uuid
from pathlib import Path

import pytest

from tests import factories
from tests.conftest import eventually, http_json
from tests.e2e import steps

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILES = [ROOT / "docker-compose.yml", ROOT / "deploy" / "compose" / "host.override.yml"]
PROJECT = "partnership-ci"
SERVICE_PORTS = {"membership": 18001, "catalogue": 18002, "billing": 18003, "scheduling": 18004}
PROMETHEUS = "http://127.0.0.1:9099"
# Every port the stack binds on 127.0.0.1: none may be taken (by another run, or anything else).
STACK_PORTS = [5679, 15679, 15699, 25679, 4370, 5439, 9099, *SERVICE_PORTS.values()]
INFRASTRUCTURE = ["rabbitmq", "postgres", "prometheus"]
CONTAINERS_CONF = ROOT / "build" / "podman" / "containers.conf"
TIMINGS_FILE = ROOT / "build" / "compose-test-timings.json"

PODMAN = shutil.which("podman")
PODMAN_COMPOSE = shutil.which("podman-compose") or (
    str(ROOT / ".venv" / "bin" / "podman-compose") if (ROOT / ".venv" / "bin" / "podman-compose").exists() else None)

pytestmark = [
    pytest.mark.skipif(PODMAN is None, reason="podman is not installed (.ci/run installs it: "
                                              "apt-get install podman runc debootstrap)"),
    pytest.mark.skipif(PODMAN_COMPOSE is None, reason="podman-compose is not installed (.ci/run installs it: "
                                                      "pip install -c constraints.txt podman-compose)"),
    pytest.mark.timeout(1500),
]


class Timings(dict):
    def step(self, name: str):
        timings = self

        class _Step:
            def __enter__(self):
                self.start = time.monotonic()

            def __exit__(self, *exc):
                timings[name] = round(time.monotonic() - self.start, 1)

        return _Step()


def _env() -> dict:
    env = dict(os.environ)
    env["CONTAINERS_CONF"] = str(CONTAINERS_CONF)
    env.pop("PIP_CONSTRAINT", None)
    return env


def _run(args: list[str], *, timeout: float, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(args, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(args)} exited {result.returncode}\n--- stdout\n{result.stdout[-4000:]}"
                             f"\n--- stderr\n{result.stderr[-4000:]}")
    return result


def _podman(*args: str, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess:
    return _run([PODMAN, *args], timeout=timeout, check=check)


class Compose:
    def __init__(self, env_file: Path):
        self.env_file = env_file

    def __call__(self, *args: str, timeout: float, check: bool = True) -> subprocess.CompletedProcess:
        command = [PODMAN_COMPOSE, "--project-name", PROJECT, "--env-file", str(self.env_file)]
        for path in COMPOSE_FILES:
            command += ["-f", str(path)]
        return _run([*command, *args], timeout=timeout, check=check)

    @staticmethod
    def container(service: str) -> str:
        return f"{PROJECT}_{service}_1"


class Stack:
    """What tests/e2e/steps.py needs: each service's URL (the containers' host ports)."""

    @staticmethod
    def url(name: str) -> str:
        return f"http://127.0.0.1:{SERVICE_PORTS[name]}"


def _port_taken(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def _write_env_file(path: Path) -> None:
    secrets = {name: uuid.uuid4().hex for name in (
        "RABBITMQ_ADMIN_PASSWORD", "MEMBERSHIP_AMQP_PASSWORD", "CATALOGUE_AMQP_PASSWORD", "BILLING_AMQP_PASSWORD",
        "SCHEDULING_AMQP_PASSWORD", "POSTGRES_PASSWORD", "MEMBERSHIP_DB_PASSWORD", "CATALOGUE_DB_PASSWORD",
        "BILLING_DB_PASSWORD", "SCHEDULING_DB_PASSWORD", "GRAFANA_ADMIN_PASSWORD")}
    lines = [f"{key}={value}" for key, value in secrets.items()]
    lines += ["RABBITMQ_ADMIN_USER=partnership-admin", "BASE_IMAGE=localhost/bookworm-python"]
    # The stack runs as in production (PARTNERSHIP_ENV defaults to production in docker-compose.yml),
    # so the operator's settings are given, as an operations team would (none is a development
    # placeholder). If a service ever needs a further production setting, add it here: running the
    # stack with PARTNERSHIP_ENV=development would hide exactly what this test is for.
    lines += ["OPERATOR_NAME=buckinghamshire-council", "OPERATOR_LEGAL_NAME=Buckinghamshire Council",
              "OPERATOR_ADDRESS=The Gateway, Gatehouse Road, Aylesbury HP19 8FF",
              "OPERATOR_VAT_NUMBER=GB987654321", "OPERATOR_BANK_ACCOUNT_NAME=Buckinghamshire Council",
              "OPERATOR_BANK_SORT_CODE=40-11-62", "OPERATOR_BANK_ACCOUNT_NUMBER=71234568"]
    # The services trust the tests' token issuer (its JWKS on 127.0.0.1: the host override's services
    # share the host's network), and Prometheus scrapes with the tests' metrics credential.
    from tests import tokens

    token_file = path.parent / "metrics-token"
    token_file.write_text(tokens.METRICS_TOKEN)
    auth = tokens.service_auth_env()
    lines += [f"AUTH_ISSUER={auth['AUTH_ISSUER']}", f"AUTH_AUDIENCE={auth['AUTH_AUDIENCE']}",
              f"AUTH_JWKS_URL={auth['AUTH_JWKS_URL']}", f"METRICS_TOKEN_PATH={token_file}"]
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)


def _ready(name: str) -> bool:
    try:
        return http_json("GET", f"{Stack.url(name)}/ready", timeout=3)[0] == 200
    except (OSError, ValueError):
        return False


def _wait_ready(names, timeout: float) -> None:
    eventually(lambda: all(_ready(name) for name in names), timeout=timeout, interval=2,
               message=f"/ready of {', '.join(names)}")


def _state(container: str) -> dict:
    out = _podman("inspect", "--format", "{{json .State}}|{{.RestartCount}}", container).stdout.strip()
    state, _, restarts = out.rpartition("|")
    return {**json.loads(state), "RestartCount": int(restarts or 0)}


def _prometheus_up() -> dict[str, str]:
    query = urllib.parse.urlencode({"query": "up"})
    status, body = http_json("GET", f"{PROMETHEUS}/api/v1/query?{query}", timeout=5)
    assert status == 200, body
    return {f"{r['metric']['job']}/{r['metric']['instance']}": r["value"][1] for r in body["data"]["result"]}


def _logs(compose: Compose) -> str:
    out = []
    for service in [*INFRASTRUCTURE, "topology", *SERVICE_PORTS]:
        result = _podman("logs", "--tail", "40", Compose.container(service), check=False)
        out.append(f"==== {service}\n{result.stdout[-3000:]}{result.stderr[-3000:]}")
    return "\n".join(out)


def test_the_compose_stack_runs_the_first_flow_survives_a_killed_service_and_is_scraped(tmp_path):
    taken = [port for port in STACK_PORTS if _port_taken(port)]
    assert not taken, (f"ports {taken} on 127.0.0.1 are taken: another compose stack ({PROJECT}) still up? "
                       f"`podman-compose -p {PROJECT} down -v` or `podman ps`")
    env_file = tmp_path / "compose.env"
    _write_env_file(env_file)
    compose = Compose(env_file)
    timings = Timings()
    started = time.monotonic()
    try:
        # --- images ------------------------------------------------------------------------
        with timings.step("images: base, wheels, four services (deploy/images.sh build)"):
            _run(["bash", "deploy/images.sh", "build"], timeout=900)
        with timings.step("images: rabbitmq, postgres, prometheus from Debian packages"):
            compose("--podman-build-args=--network=host --format docker", "build", *INFRASTRUCTURE, timeout=900)

        # --- up ----------------------------------------------------------------------------------
        with timings.step("up -d"):
            # In three steps, each with --no-deps: Debian 12's podman (4.3) cannot start a container
            # whose `--requires` chain is two deep (service -> topology -> rabbitmq), which is what
            # podman-compose makes of depends_on; it also ignores `service_healthy` (before 4.6).
            compose("up", "-d", "--no-deps", *INFRASTRUCTURE, timeout=300)
            compose("up", "-d", "--no-deps", "topology", timeout=300)
            _podman("wait", Compose.container("topology"), timeout=240)
            topology = _state(Compose.container("topology"))
            assert topology["ExitCode"] == 0, f"topology: {topology}\n{_logs(compose)}"
            compose("up", "-d", "--no-deps", *SERVICE_PORTS, timeout=300)
        with timings.step("every service ready"):
            try:
                _wait_ready(list(SERVICE_PORTS), timeout=240)
            except AssertionError as exc:
                raise AssertionError(f"{exc}\n{_logs(compose)}") from None

        # --- the first flow through the containers' HTTP ports ---------------------------------------
        stack = Stack()
        with timings.step("first flow: join, buy, charge, eligible"):
            offering = factories.per_pupil_offering()
            steps.publish_offering(stack, offering)
            school = factories.school(number_on_roll=172)
            steps.join(stack, school)
            head = steps.appoint(stack, school["urn"])
            sub = steps.buy(stack, school["urn"], offering["code"], head, po_number="PO-1")
            assert sub["annual_price_pence"] == 291900
            charges = eventually(lambda: steps.charges(stack, urn=school["urn"]), timeout=60,
                                 message="billing's charge")
            assert [(c["payer_kind"], c["payer_id"], c["amount_pence"]) for c in charges] == [
                ("school", school["urn"], 291900)]

            def eligible():
                status, body = http_json("GET", f"{stack.url('scheduling')}/schools/{school['urn']}")
                return body if status == 200 and body["eligibility"] and body["school"] else None

            seen = eventually(eligible, timeout=60, message="scheduling's eligibility")
            assert [e["offering_code"] for e in seen["eligibility"]] == [offering["code"]]

        # --- kill billing: its restart policy brings it back, nothing lost ---------------------------
        with timings.step("billing killed, restarted and caught up"):
            billing = Compose.container("billing")
            before = _state(billing)
            assert before["Running"], before
            # A crash: SIGKILL to the container's main process from outside. (`podman kill` counts as
            # an operator's stop, like `docker stop`, and no restart policy restarts after that.)
            assert before["Pid"] > 1, before
            os.kill(before["Pid"], signal.SIGKILL)
            # Bought while billing is down or restarting: its event waits in billing's queue.
            second = factories.flat_offering()
            steps.publish_offering(stack, second)
            steps.buy(stack, school["urn"], second["code"], head)

            def restarted():
                state = _state(billing)
                return state if state["Running"] and state["StartedAt"] != before["StartedAt"] else None

            after = eventually(restarted, timeout=60, interval=1, message="billing restarted by its restart policy")
            assert after["Pid"] != before["Pid"]
            _wait_ready(["billing"], timeout=120)
            both = eventually(lambda: (lambda cs: cs if len(cs) >= 2 else None)(steps.charges(stack, urn=school["urn"])),
                              timeout=90, message="the purchase made while billing was down, charged")
            assert sorted((c["offering_code"], c["amount_pence"]) for c in both) == sorted(
                [(offering["code"], 291900), (second["code"], 95000)]), both

        # --- Prometheus scrapes every target ------------------------------------------------------
        with timings.step("prometheus: up == 1 on every target"):
            expected = {f"partnership/127.0.0.1:{port}" for port in SERVICE_PORTS.values()} | {
                "rabbitmq/127.0.0.1:15699"}

            def all_up():
                up = _prometheus_up()
                # Every target Prometheus has (e.g. also the broker's alarms job) is up, and among them
                # are the four services and RabbitMQ.
                return up if expected <= set(up) and all(v == "1" for v in up.values()) else None

            try:
                eventually(all_up, timeout=90, interval=3, message="up == 1 on every Prometheus target")
            except AssertionError as exc:
                status, targets = http_json("GET", f"{PROMETHEUS}/api/v1/targets", timeout=5)
                raise AssertionError(f"{exc}\n{json.dumps(targets)[:4000]}") from None
    except BaseException:
        print(_logs(compose))
        raise
    finally:
        with timings.step("stop the services (SIGTERM, grace 120 s)"):
            # Services first, while the broker and database still answer: podman-compose's `down`
            # stops every container at once, and a service whose broker goes away while it stops
            # waits (about 30 s here) until it is killed.
            compose("stop", *SERVICE_PORTS, timeout=300, check=False)
        with timings.step("down -v"):
            result = compose("down", "-v", "-t", "30", timeout=300, check=False)
            if result.returncode != 0:
                print(result.stdout[-3000:], result.stderr[-3000:])
            for service in [*INFRASTRUCTURE, "topology", *SERVICE_PORTS]:
                _podman("rm", "-f", "-t", "5", Compose.container(service), check=False)
        timings["total"] = round(time.monotonic() - started, 1)
        TIMINGS_FILE.parent.mkdir(parents=True, exist_ok=True)
        TIMINGS_FILE.write_text(json.dumps(timings, indent=2) + "\n")
        print(json.dumps(timings, indent=2))
    leftover = _podman("ps", "-a", "--filter", f"name={PROJECT}_", "--format", "{{.Names}}").stdout.split()
    assert not leftover, f"containers left after down: {leftover}"
