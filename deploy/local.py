"""Run the four services as local processes: `make run`, `make demo` and the tests use this.

Each service runs as its own `nameko run` process from its own folder, with its
own database (SQLite file by default, PostgreSQL when `<SERVICE>_DATABASE_URL`
or `DATABASE_BACKEND=postgresql` says so) and the shared broker at `AMQP_URI`.
"""
from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_AMQP_URI = "amqp://guest:guest@127.0.0.1:5672/"
# nameko's CLI imports eventlet, which warns that it is deprecated; that one
# warning is silenced (it comes from this one import line), nothing else.
SILENCE_EVENTLET = "ignore::Warning:nameko.cli.commands"


@dataclasses.dataclass(frozen=True)
class ServiceSpec:
    name: str
    port: int
    service_class: str

    @property
    def folder(self) -> Path:
        return ROOT / "services" / self.name

    @property
    def target(self) -> str:
        return f"{self.name}.entrypoints.service:{self.service_class}"


SERVICES = (
    ServiceSpec("membership", 8001, "MembershipService"),
    ServiceSpec("catalogue", 8002, "CatalogueService"),
    ServiceSpec("billing", 8003, "BillingService"),
    ServiceSpec("scheduling", 8004, "SchedulingService"),
)
SPECS = {spec.name: spec for spec in SERVICES}


class ServiceProcess:
    """One service as a child process; its output goes to `log_path`."""

    def __init__(self, spec: ServiceSpec, *, amqp_uri: str, database_url: str, port: int | None = None,
                 log_path: Path | None = None, extra_env: dict | None = None, operator: str | None = None):
        self.spec = spec
        self.port = port or spec.port
        self.amqp_uri = amqp_uri
        self.database_url = database_url
        self.log_path = log_path or ROOT / "var" / "log" / f"{spec.name}.log"
        self.extra_env = dict(extra_env or {})
        self.operator = operator
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def environment(self) -> dict:
        env = dict(os.environ)
        env.update({"AMQP_URI": self.amqp_uri, "DATABASE_URL": self.database_url,
                    "WEB_SERVER_ADDRESS": f"127.0.0.1:{self.port}",
                    "PYTHONWARNINGS": SILENCE_EVENTLET, "PYTHONUNBUFFERED": "1"})
        if self.operator:
            env["OPERATOR_NAME"] = self.operator
        env.update(self.extra_env)
        return env

    def start(self) -> "ServiceProcess":
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "nameko", "run", "--config", "config.yml", self.spec.target],
            cwd=self.spec.folder, env=self.environment(), stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)
        log.close()
        return self

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"{self.spec.name} exited with {self.process.returncode}; see {self.log_path}")
            try:
                with urllib.request.urlopen(f"{self.url}/ready", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        raise TimeoutError(f"{self.spec.name} was not ready within {timeout:.0f}s; see {self.log_path}")

    def stop(self, timeout: float = 20.0) -> None:
        if not self.alive():
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        if self.alive():
            self.process.kill()
            self.process.wait(10)


def broker_answers(amqp_uri: str) -> bool:
    from kombu import Connection

    try:
        with Connection(amqp_uri, connect_timeout=3) as connection:
            connection.connect()
        return True
    except Exception:  # noqa: BLE001 - any failure means "not reachable"
        return False


def ensure_broker(amqp_uri: str) -> None:
    """Start the local RabbitMQ if it is installed and not answering; else explain how to get one."""
    if broker_answers(amqp_uri):
        return
    if shutil.which("rabbitmq-server"):
        print("RabbitMQ is not answering; starting it with `rabbitmq-server -detached` ...", flush=True)
        subprocess.run(["rabbitmq-server", "-detached"], check=False)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if broker_answers(amqp_uri):
                return
            time.sleep(1)
    raise SystemExit(f"No RabbitMQ answers at {amqp_uri}: install and start one (e.g. `apt-get install "
                     "rabbitmq-server && rabbitmq-server -detached`) or set AMQP_URI to a broker you can reach.")


def ensure_management(amqp_uri: str) -> None:
    """The topology is applied through RabbitMQ's management API: enable the plugin on a local broker
    whose API does not answer (enabling a plugin does not restart the broker)."""
    from partnership_ops import topology

    management = topology.Management.for_amqp_uri(amqp_uri, url=os.environ.get("RABBITMQ_MANAGEMENT_URL"))
    try:
        management.request("GET", "/api/overview")
        return
    except topology.TopologyError:
        pass
    if shutil.which("rabbitmq-plugins"):
        print("enabling RabbitMQ's management plugin (the topology is applied through it) ...", flush=True)
        subprocess.run(["rabbitmq-plugins", "enable", "--quiet", "rabbitmq_management"], check=False,
                       capture_output=True, timeout=120)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                management.request("GET", "/api/overview")
                return
            except topology.TopologyError:
                time.sleep(1)
    raise SystemExit(f"RabbitMQ's management API does not answer at {management.url}: enable the "
                     "rabbitmq_management plugin, or set RABBITMQ_MANAGEMENT_URL.")


def local_passwords(path: Path = ROOT / "var" / "broker-passwords.json") -> dict[str, str]:
    """Each service's broker password for local runs: made once, kept in var/ (not committed), mode 600."""
    import json
    import secrets

    passwords = json.loads(path.read_text()) if path.exists() else {}
    if any(spec.name not in passwords for spec in SERVICES):
        passwords = {spec.name: passwords.get(spec.name) or secrets.token_urlsafe(24) for spec in SERVICES}
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(passwords, indent=2))
        path.chmod(0o600)
    return passwords


def provision_broker(admin_amqp_uri: str, passwords: dict[str, str], *, user_prefix: str = "",
                     settings: dict | None = None, consumers: list[str] | None = None,
                     management_url: str | None = None) -> dict[str, str]:
    """Apply the topology to the vhost of `admin_amqp_uri` (an administrator's URI): everything, or
    the handler queues of `consumers` only (with every exchange, archive and user); returns each
    service's own AMQP URI (user `<user_prefix><service>`, password from `passwords` by service name)."""
    from deploy import topology as deploy_topology
    from partnership_ops.topology import amqp_uri_for

    users = {f"{user_prefix}{spec.name}": passwords[spec.name] for spec in SERVICES}
    deploy_topology.apply(admin_amqp_uri, passwords=users, settings=settings, user_prefix=user_prefix,
                          consumers=consumers, management_url=management_url)
    return {spec.name: amqp_uri_for(admin_amqp_uri, f"{user_prefix}{spec.name}", passwords[spec.name])
            for spec in SERVICES}


DEV_AUTH_FOLDER = ROOT / "var" / "dev-auth"


def development_auth(folder: Path = DEV_AUTH_FOLDER, port: int | None = None):
    """Start serving the development issuer's JWKS; returns the services' auth environment and the server."""
    import secrets

    from partnership_ops.devauth import DEV_JWKS_PORT, JwksServer, development_issuer, development_settings

    issuer = development_issuer(folder)
    server = JwksServer(issuer, port=DEV_JWKS_PORT if port is None else port).start()
    token_path = folder / "metrics-token"
    if not token_path.exists():
        token_path.write_text(secrets.token_urlsafe(24))
        token_path.chmod(0o600)
    return {**development_settings(server.jwks_url), "METRICS_TOKEN_FILE": str(token_path)}, server


def database_url_for(name: str) -> str:
    explicit = os.environ.get(f"{name.upper()}_DATABASE_URL")
    if explicit:
        return explicit
    if os.environ.get("DATABASE_BACKEND") == "postgresql":
        return f"postgresql+psycopg2://postgres@127.0.0.1:5432/partnership_{name}"
    return f"sqlite:///{ROOT / 'var' / f'{name}.db'}"


def main() -> None:
    """`make run`: start the four services, print their URLs, stop them all on Ctrl-C."""
    from shared.db import ensure_postgres_database

    amqp_uri = os.environ.get("AMQP_URI", DEFAULT_AMQP_URI)
    ensure_broker(amqp_uri)
    ensure_management(amqp_uri)
    # AMQP_URI is an administrator's: it provisions the topology and one user per service, and
    # each service then runs with its own least-privilege user.
    service_uris = provision_broker(amqp_uri, local_passwords())
    print("broker topology applied (deploy/rabbitmq/definitions.json; users' passwords in "
          "var/broker-passwords.json)", flush=True)
    # Tokens: a development signing key (made once in var/dev-auth/, mode 600) whose JWKS is served
    # here on 127.0.0.1; the services accept its issuer only because AUTH_DEVELOPMENT=1 is set here.
    auth_env, jwks = development_auth()
    processes = []
    for spec in SERVICES:
        url = database_url_for(spec.name)
        ensure_postgres_database(url)
        processes.append(ServiceProcess(spec, amqp_uri=service_uris[spec.name], database_url=url,
                                        extra_env=auth_env))

    def stop_all(*_):
        print("\nstopping services ...", flush=True)
        for proc in reversed(processes):
            proc.stop()
        print("all services stopped.")
        raise SystemExit(0)

    signal.signal(signal.SIGINT, stop_all)
    signal.signal(signal.SIGTERM, stop_all)
    try:
        for proc in processes:
            proc.start()
        for proc in processes:
            proc.wait_ready(90)
    except Exception as exc:  # noqa: BLE001
        print(f"could not start the services: {exc}", file=sys.stderr)
        for proc in processes:
            proc.stop()
        raise SystemExit(1)
    print(f"broker: {amqp_uri.rsplit('@', 1)[-1]}")
    for proc in processes:
        print(f"{proc.spec.name:<11} {proc.url}  (database {proc.database_url}; log {proc.log_path})")
    print(f"tokens: development issuer, keys at {jwks.jwks_url}. Every route but /health and /ready needs one:")
    print("  TOKEN=$(.venv/bin/partnership-ops dev-token --role finance)   # trust staff; or e.g.")
    print("  .venv/bin/partnership-ops dev-token --role head_teacher --urn 110000 --contact-id C-...")
    print('  curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8003/charges')
    print(f"metrics: /metrics with the scrape token in {DEV_AUTH_FOLDER / 'metrics-token'}.")
    print("health: /health  readiness: /ready.  Ctrl-C stops them all.", flush=True)
    while True:
        for proc in processes:
            if not proc.alive():
                print(f"{proc.spec.name} stopped unexpectedly; see {proc.log_path}", file=sys.stderr)
                stop_all()
        time.sleep(1)


if __name__ == "__main__":
    main()
