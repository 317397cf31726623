"""A service started before its broker waits for it, saying so, for a bounded time; then it
either starts normally (the broker came) or exits with an error naming the broker."""
from __future__ import annotations

from deploy.local import SPECS, ServiceProcess
from tests.conftest import TEST_EVENT_SETTINGS, eventually, free_port
from tests.reliability.proxy import DelayingProxy


def service(name: str, amqp_uri: str, database_url: str, log_path, **env) -> ServiceProcess:
    return ServiceProcess(SPECS[name], amqp_uri=amqp_uri, database_url=database_url, port=free_port(),
                          log_path=log_path, extra_env={**TEST_EVENT_SETTINGS, **env})


class TestBrokerAtStartup:
    def test_no_broker_makes_startup_fail_clearly_after_the_timeout(self, sqlite_databases, tmp_path):
        port = free_port()  # nothing listens there
        log_path = tmp_path / "billing.log"
        proc = service("billing", f"amqp://guest:guest@127.0.0.1:{port}/", sqlite_databases.url("billing"),
                       log_path, EVENT_BROKER_STARTUP_TIMEOUT_SECONDS="4").start()
        try:
            eventually(lambda: not proc.alive(), timeout=40, interval=0.2,
                       message="the service gave up on the broker and exited")
            log = log_path.read_text(errors="replace")
            assert proc.process.returncode != 0
            assert f"waiting for the broker at amqp://guest:**@127.0.0.1:{port}//" in log
            assert "giving up in" in log
            assert f"no broker answered at amqp://guest:**@127.0.0.1:{port}// in 4 s" in log
            assert "guest:guest@" not in log  # the password is never printed
        finally:
            proc.kill()

    def test_a_broker_that_comes_up_during_the_wait_is_used(self, vhost, sqlite_databases, tmp_path):
        port = free_port()
        log_path = tmp_path / "billing.log"
        proc = service("billing", f"amqp://guest:guest@127.0.0.1:{port}/{vhost.name}",
                       sqlite_databases.url("billing"), log_path, EVENT_BROKER_STARTUP_TIMEOUT_SECONDS="60").start()
        try:
            eventually(lambda: log_path.exists() and "waiting for the broker" in log_path.read_text(errors="replace"),
                       timeout=60, message="the service says it waits for the broker")
            with DelayingProxy(0.0, port=port):  # the broker "comes up" on that port
                proc.wait_ready(60)
                assert "answered after" in log_path.read_text(errors="replace")
        finally:
            proc.stop()


class TestProductionSettings:
    def test_a_production_service_without_its_settings_exits_naming_each_one(self, sqlite_databases, tmp_path):
        log_path = tmp_path / "catalogue.log"
        proc = service("catalogue", "amqp://guest:guest@127.0.0.1:5672/", sqlite_databases.url("catalogue"),
                       log_path, PARTNERSHIP_ENV="production", OPERATOR_LEGAL_NAME="").start()
        try:
            eventually(lambda: not proc.alive(), timeout=60, message="the service refused to start")
            assert proc.process.returncode != 0
            log = log_path.read_text(errors="replace")
            assert "catalogue refuses to start in production" in log
            assert "OPERATOR_LEGAL_NAME" in log and "guest account" in log
        finally:
            proc.stop()


class TestStopWhileStarting:
    def test_a_sigterm_while_the_consumers_are_still_starting_ends_the_process(self, vhost, sqlite_databases,
                                                                               tmp_path):
        """Every broker reply comes 0.5 s late, so billing answers HTTP long before its event consumers
        are set up; a SIGTERM then must still stop it. It used to hang for ever: each handler's stop
        re-sent nameko's "last provider unregistered" (raising), and the consume loop, ready later,
        waited for consumers nobody cancelled."""
        log_path = tmp_path / "billing.log"
        with DelayingProxy(0.5) as proxy:
            proc = service("billing", proxy.amqp_uri(vhost.name), sqlite_databases.url("billing"), log_path).start()
            try:
                eventually(lambda: _answers(f"{proc.url}/health"), timeout=90, message="billing answering HTTP")
                consuming = _consumers(vhost.name)
                proc.process.terminate()  # SIGTERM, as a container stop sends
                assert proc.process.wait(60) == 0
            finally:
                proc.kill()
        assert consuming == 0, "the consumers were already set up: the test did not stop a starting service"


def _answers(url: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def _consumers(vhost: str) -> int:
    """Consumers on the vhost's queues, from the management API."""
    import base64
    import json
    import urllib.parse
    import urllib.request

    request = urllib.request.Request(f"http://127.0.0.1:15672/api/queues/{urllib.parse.quote(vhost, safe='')}"
                                     "?columns=name,consumers",
                                     headers={"Authorization": "Basic " + base64.b64encode(b"guest:guest").decode()})
    with urllib.request.urlopen(request, timeout=10) as response:
        return sum(queue.get("consumers") or 0 for queue in json.load(response))
