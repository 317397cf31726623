"""The brokers tests run on: the machine's shared RabbitMQ, or a private node of their own.

A test that stops, restarts or reconfigures a broker must not do it to the machine's shared node
(`rabbit@localhost`, port 5672): every other test and developer on this machine uses it. Such a
test takes the `private_broker` fixture instead: a RabbitMQ node of its own, started beside the
machine's one as in /work/shared/brief/RABBITMQ.md (own node name, config file, ports, data, log
and pid folders; the machine's Erlang cookie and epmd), with the management plugin (the topology
is applied through it), and stopped by name and removed afterwards, even when the test fails.

    def test_x(private_broker):
        private_broker.restart(down_seconds=2)

To run a whole test's vhost and services on it, override the `broker` fixture (tests/conftest.py)
in the test's class or module:

    @pytest.fixture
    def broker(self, private_broker):
        return private_broker
"""
from __future__ import annotations

import dataclasses
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.parse
from pathlib import Path

import pytest

# The Debian `rabbitmq-server` script runs the node as this user: its folders must belong to it.
RABBITMQ_USER = "rabbitmq"
START_TIMEOUT = 90.0
STOP_TIMEOUT = 60.0
HOST = "127.0.0.1"


class BrokerNodeError(RuntimeError):
    """A private RabbitMQ node could not be started, restarted or stopped (a test error, never a skip)."""


@dataclasses.dataclass
class Broker:
    """A RabbitMQ node as the tests use it: `rabbitmqctl` against it, an administrator's AMQP URI per
    vhost and its management API (`management_url`; None means the default, port 15672 of the AMQP host)."""

    node: str | None  # None: rabbitmqctl's default node, the machine's own `rabbit@localhost`
    amqp_port: int
    admin_user: str
    admin_password: str
    management_url: str | None = None

    def rabbitmqctl(self, *args: str, timeout: float = 60.0) -> str:
        """Run rabbitmqctl against this node. The Debian wrapper runs it as `rabbitmq` through `su`: on a
        timeout the whole process group goes (killing the wrapper alone would leave the CLI running)."""
        command = ["rabbitmqctl", *(["-n", self.node] if self.node else []), *args]
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                   text=True, start_new_session=True)
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(process.pid, signal.SIGKILL)  # the group of the CLI this call started
            except ProcessLookupError:
                pass
            process.communicate()
            raise BrokerNodeError(f"{' '.join(command)} did not finish within {timeout:.0f}s") from None
        if process.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed: {stderr.strip() or stdout.strip()}")
        return stdout

    def uri(self, vhost: str = "/") -> str:
        """The administrator's AMQP URI on `vhost`."""
        user = urllib.parse.quote(self.admin_user, safe="")
        password = urllib.parse.quote(self.admin_password, safe="")
        path = "" if vhost == "/" else urllib.parse.quote(vhost, safe="")
        return f"amqp://{user}:{password}@{HOST}:{self.amqp_port}/{path}"

    @property
    def amqp_uri(self) -> str:
        return self.uri("/")

    def management(self):
        from partnership_ops.topology import Management

        return Management.for_amqp_uri(self.amqp_uri, url=self.management_url)


# The machine's own broker, which every test run and developer shares: never stopped by a test.
SHARED_BROKER = Broker(node=None, amqp_port=5672, admin_user="guest", admin_password="guest")


# Ports the machine's own node and the CLI tools use: epmd, AMQP, management, distribution, and the range
# `rabbitmqctl` takes its own distribution port from (the shared node's 25672 + 10000 .. + 10010).
RESERVED_PORTS = frozenset({4369, 5672, 15672, 15692, 25672, *range(35672, 35683)})


def free_ports(count: int) -> list[int]:
    """`count` distinct free TCP ports on 127.0.0.1 (held open together, so the kernel gives distinct ones),
    none of them one the machine's own node or its CLI tools use (RESERVED_PORTS)."""
    sockets = []
    try:
        for _ in range(count + 64):  # a reserved port is kept open (so not given again) and skipped
            if sum(1 for sock in sockets if sock.getsockname()[1] not in RESERVED_PORTS) == count:
                break
            sock = socket.socket()
            sock.bind((HOST, 0))
            sockets.append(sock)
        ports = [sock.getsockname()[1] for sock in sockets if sock.getsockname()[1] not in RESERVED_PORTS]
        assert len(ports) == count, "could not find enough free ports"
        return ports
    finally:
        for sock in sockets:
            sock.close()


class PrivateBroker(Broker):
    """A RabbitMQ node of a test's own: `start()`, `restart(down_seconds)`, `stop()` (idempotent)."""

    def __init__(self, base: Path | None = None, *, node: str | None = None, admin_user: str | None = None,
                 admin_password: str | None = None):
        amqp_port, management_port, dist_port = free_ports(3)
        super().__init__(node=node or f"rabbit-t{secrets.token_hex(4)}@localhost", amqp_port=amqp_port,
                         admin_user=admin_user or f"admin-{secrets.token_hex(3)}",
                         admin_password=admin_password or secrets.token_hex(16),
                         management_url=f"http://{HOST}:{management_port}")
        self.management_port = management_port
        self.dist_port = dist_port
        self.base = Path(base) if base else Path(tempfile.mkdtemp(prefix="rabbit-t", dir="/tmp"))
        self.pid: int | None = None
        self.launched = False
        self.start_seconds: float | None = None

    # -- files --------------------------------------------------------------------------------------
    @property
    def config_file(self) -> Path:
        return self.base / "rabbitmq.conf"

    @property
    def pid_file(self) -> Path:
        return self.base / "pid"

    @property
    def log_dir(self) -> Path:
        return self.base / "log"

    def _write_files(self) -> None:
        (self.base / "mnesia").mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(exist_ok=True)
        # The machine's /etc/rabbitmq/rabbitmq.conf pins port 5672 (it beats RABBITMQ_NODE_PORT): this file
        # replaces it. The only user is an administrator made at first boot (there is no `guest` here).
        self.config_file.write_text("\n".join([
            f"listeners.tcp.local = {HOST}:{self.amqp_port}",
            "loopback_users = none",
            f"management.tcp.port = {self.management_port}",
            f"management.tcp.ip = {HOST}",
            f"default_user = {self.admin_user}",
            f"default_pass = {self.admin_password}",
            "default_user_tags.administrator = true",
            "default_permissions.configure = .*",
            "default_permissions.read = .*",
            "default_permissions.write = .*",
            "",
        ]))
        self.config_file.chmod(0o600)
        (self.base / "enabled_plugins").write_text("[rabbitmq_management].\n")
        shutil.chown(self.base, RABBITMQ_USER, RABBITMQ_USER)
        for path in self.base.rglob("*"):
            shutil.chown(path, RABBITMQ_USER, RABBITMQ_USER)

    def _environment(self) -> dict[str, str]:
        return {**os.environ,
                "RABBITMQ_NODENAME": self.node,
                "RABBITMQ_CONFIG_FILE": str(self.config_file),
                "RABBITMQ_DIST_PORT": str(self.dist_port),
                "RABBITMQ_MNESIA_BASE": str(self.base / "mnesia"),
                "RABBITMQ_LOG_BASE": str(self.log_dir),
                "RABBITMQ_PID_FILE": str(self.pid_file),
                "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.base / "enabled_plugins")}

    def diagnostics(self) -> str:
        """For error messages: what `rabbitmq-server` printed, the node log's errors and its last lines."""
        parts = []
        for path in [self.base / "startup.out", *sorted(self.log_dir.glob("*.log"))]:
            try:
                lines = path.read_text(errors="replace").strip().splitlines()
            except OSError:
                continue
            errors = [line for line in lines if "[error]" in line or "[critical]" in line][:20]
            if errors:
                parts.append(f"--- {path}, errors:\n" + "\n".join(errors))
            if lines:
                parts.append(f"--- {path}, last lines:\n" + "\n".join(lines[-12:]))
        return "\n".join(parts) or "(no output, no log)"

    # -- lifecycle ----------------------------------------------------------------------------------
    def start(self, timeout: float = START_TIMEOUT) -> "PrivateBroker":
        if shutil.which("rabbitmq-server") is None or shutil.which("rabbitmqctl") is None:
            raise BrokerNodeError("a private RabbitMQ node needs rabbitmq-server and rabbitmqctl on PATH "
                                  "(apt-get install rabbitmq-server)")
        began = time.monotonic()
        deadline = began + timeout
        try:
            self._write_files()
            self.launched = True
            with open(self.base / "startup.out", "wb") as out:
                # `-detached` daemonises; its output goes to a file, not a pipe the daemon would keep open.
                started = subprocess.run(["rabbitmq-server", "-detached"], env=self._environment(),
                                         stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         timeout=60)
            if started.returncode != 0:
                raise BrokerNodeError(f"rabbitmq-server -detached exited with {started.returncode}")
            self._await_startup(deadline)
            self._await_management(deadline)
        except Exception as exc:
            diagnostics = self.diagnostics()
            self.stop()
            if isinstance(exc, BrokerNodeError):
                raise BrokerNodeError(f"private RabbitMQ node {self.node} did not start: {exc}\n{diagnostics}") from exc
            raise BrokerNodeError(f"private RabbitMQ node {self.node} did not start: {exc!r}\n{diagnostics}") from exc
        self.start_seconds = time.monotonic() - began
        return self

    def _read_pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None

    def _node_process_alive(self) -> bool:
        if self.pid is None:
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        try:  # a killed node whose parent (init here) has not reaped it yet is a zombie: gone all the same
            return Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
        except (OSError, IndexError):
            return False

    def _await_startup(self, deadline: float) -> None:
        # The pid file appears once the node's VM runs; until it registers with epmd, `await_startup`
        # fails at once ("node not running"), so it is retried until the deadline.
        while self.pid is None:
            self.pid = self._read_pid()
            if self.pid is None:
                if time.monotonic() > deadline:
                    raise BrokerNodeError("no pid file (the node's VM never started)")
                time.sleep(0.2)
        last = ""
        while time.monotonic() < deadline:
            if not self._node_process_alive():
                raise BrokerNodeError(f"the node's process {self.pid} exited during startup")
            remaining = max(1, int(deadline - time.monotonic()))
            try:
                self.rabbitmqctl("await_startup", "--timeout", str(remaining), timeout=remaining + 15)
                return
            except RuntimeError as exc:
                last = str(exc)
            time.sleep(0.5)
        raise BrokerNodeError(f"`rabbitmqctl -n {self.node} await_startup` did not succeed in time; last: {last}")

    def _await_management(self, deadline: float) -> None:
        from partnership_ops.topology import TopologyError

        management = self.management()
        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                management.request("GET", "/api/overview")
                return
            except TopologyError as exc:
                last = exc
            time.sleep(0.3)
        raise BrokerNodeError(f"management API at {self.management_url} did not answer: {last}")

    def kill(self, timeout: float = 30.0) -> None:
        """SIGKILL this node's VM (the pid its own pid file names) and wait until it is gone: a crash,
        with no goodbye to its clients or its cluster."""
        pid = self.pid or self._read_pid()
        if pid is None:
            raise BrokerNodeError(f"{self.node} has no pid to kill")
        self.pid = pid
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + timeout
        while self._node_process_alive():
            if time.monotonic() > deadline:
                raise BrokerNodeError(f"{self.node} (pid {pid}) still alive {timeout:.0f}s after SIGKILL")
            time.sleep(0.1)
        self.pid = None
        self.pid_file.unlink(missing_ok=True)

    def revive(self, timeout: float = START_TIMEOUT) -> None:
        """Start this node again on its own data after `kill()`: a cluster member rejoins its cluster."""
        if self._node_process_alive():
            raise BrokerNodeError(f"{self.node} is still running")
        self.pid = None
        self.pid_file.unlink(missing_ok=True)
        deadline = time.monotonic() + timeout
        with open(self.base / "startup.out", "ab") as out:
            started = subprocess.run(["rabbitmq-server", "-detached"], env=self._environment(), stdout=out,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, timeout=60)
        if started.returncode != 0:
            raise BrokerNodeError(f"rabbitmq-server -detached exited with {started.returncode}\n{self.diagnostics()}")
        try:
            self._await_startup(deadline)
            self._await_management(deadline)
        except BrokerNodeError as exc:
            raise BrokerNodeError(f"{self.node} did not come back: {exc}\n{self.diagnostics()}") from exc

    def restart(self, down_seconds: float = 2.0, timeout: float = START_TIMEOUT) -> None:
        """stop_app / start_app on this node only: every connection drops; durable queues and
        persistent messages stay."""
        self.rabbitmqctl("stop_app", timeout=STOP_TIMEOUT)
        time.sleep(down_seconds)
        self.rabbitmqctl("start_app", timeout=timeout)
        deadline = time.monotonic() + timeout
        self._await_startup(deadline)
        self._await_management(deadline)

    def stop(self, *, kill: bool = False) -> None:
        """Stop the node by its name (or, with `kill`, by SIGKILL to its own pid: a throwaway cluster member,
        whose polite stop would wait on its peers), wait for its process to exit, and remove its folders.
        Idempotent; never raises a second error over the one a failed test reports, but says what it left
        behind."""
        problems = []
        pid = self.pid or self._read_pid()
        if pid is not None:
            self.pid = pid
            if kill and self._node_process_alive():
                os.kill(pid, signal.SIGKILL)  # the node this fixture started, by its pid
                for _ in range(100):
                    if not self._node_process_alive():
                        break
                    time.sleep(0.1)
            if self._node_process_alive():
                try:
                    # With the pid file, `stop` returns once the node's OS process has exited.
                    self.rabbitmqctl("stop", str(self.pid_file), timeout=STOP_TIMEOUT)
                except Exception as exc:  # noqa: BLE001 - fall back to the node's own pid below
                    problems.append(f"rabbitmqctl -n {self.node} stop: {exc}")
                if self._node_process_alive():
                    os.kill(pid, 9)  # the node this fixture started, by its pid
                    for _ in range(50):
                        if not self._node_process_alive():
                            break
                        time.sleep(0.1)
        elif self.launched:
            # Launched, but no pid file yet (a startup that timed out early): stop it by name all the same.
            try:
                self.rabbitmqctl("stop", timeout=STOP_TIMEOUT)
            except Exception:  # noqa: BLE001 - most likely it never came up
                pass
        shutil.rmtree(self.base, ignore_errors=True)
        self.pid = None
        self.launched = False
        if problems:
            import warnings

            warnings.warn(f"private RabbitMQ node {self.node} was killed: {'; '.join(problems)}", stacklevel=2)


@pytest.fixture
def private_broker():
    """A RabbitMQ node of this test's own (see the module docstring); stopped and removed afterwards."""
    node = PrivateBroker()
    try:
        node.start()  # stops and removes itself if it fails; the error says why (never a skip)
    except BrokerNodeError as exc:
        # Its free ports are picked a few seconds before the node binds them: on a busy machine another
        # process may take one meanwhile. Once, with new ports; any other failure is the test's error.
        if "eaddrinuse" not in str(exc):
            raise
        node = PrivateBroker()
        node.start()
    try:
        yield node
    finally:
        node.stop()


class BrokerCluster(Broker):
    """Three (or `size`) private RabbitMQ nodes of a test's own, joined into one cluster with
    `rabbitmqctl join_cluster` (/work/shared/brief/RABBITMQ.md): each with its own node name, AMQP,
    management and distribution ports and folders; one administrator on all. Its `uri(vhost)` lists
    every node (`;`, kombu's failover syntax), as a deployment's `AMQP_URI` does, and its
    `management_url` lists every node's management API. Never the machine's own node."""

    def __init__(self, size: int = 3):
        token = secrets.token_hex(3)
        admin_user, admin_password = f"admin-{token}", secrets.token_hex(16)
        self.nodes = [PrivateBroker(node=f"rabbit-c{token}-{index}@localhost", admin_user=admin_user,
                                    admin_password=admin_password) for index in range(size)]
        super().__init__(node=self.nodes[0].node, amqp_port=self.nodes[0].amqp_port, admin_user=admin_user,
                         admin_password=admin_password,
                         management_url=";".join(node.management_url for node in self.nodes))

    def uri(self, vhost: str = "/") -> str:
        return ";".join(node.uri(vhost) for node in self.nodes)

    def node_named(self, name: str) -> PrivateBroker:
        return next(node for node in self.nodes if node.node == name)

    def start(self) -> "BrokerCluster":
        """Start every node, then join the others to the first; fails (a test error) unless all run as one."""
        errors: list[BaseException] = []

        def start(node: PrivateBroker) -> None:
            try:
                node.start()
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        import threading

        threads = [threading.Thread(target=start, args=(node,)) for node in self.nodes]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(START_TIMEOUT + 30)
        if errors:
            raise errors[0]
        seed = self.nodes[0]
        for node in self.nodes[1:]:
            node.rabbitmqctl("stop_app", timeout=STOP_TIMEOUT)
            node.rabbitmqctl("join_cluster", seed.node, timeout=START_TIMEOUT)
            node.rabbitmqctl("start_app", timeout=START_TIMEOUT)
            node._await_startup(time.monotonic() + START_TIMEOUT)
        self.await_running(set(node.node for node in self.nodes))
        return self

    def running_nodes(self) -> set[str]:
        """The cluster's running members, as its management API reports them."""
        return {n["name"] for n in self.management().request("GET", "/api/nodes") if n.get("running")}

    def await_running(self, wanted: set[str], timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        running: set[str] = set()
        while time.monotonic() < deadline:
            try:
                running = self.running_nodes()
            except Exception:  # noqa: BLE001 - a node's API may not answer yet; the deadline decides
                running = set()
            if running == wanted:
                return
            time.sleep(0.5)
        raise BrokerNodeError(f"cluster runs {sorted(running)}, expected {sorted(wanted)}")

    def queues(self, vhost: str) -> list[dict]:
        """Every queue of `vhost` with its type, leader and members (quorum queues and streams)."""
        import urllib.parse as parse

        return self.management().request("GET", f"/api/queues/{parse.quote(vhost, safe='')}")

    def stop(self) -> None:
        """Kill every node by its own pid and remove its folders (a throwaway cluster: a polite stop of
        its members one by one would wait on the others)."""
        for node in self.nodes:
            node.stop(kill=True)


@pytest.fixture
def broker_cluster():
    """A three-node RabbitMQ cluster of this test's own (see `BrokerCluster`); removed afterwards."""
    cluster = BrokerCluster(3)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
