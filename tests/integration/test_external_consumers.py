"""The example consumers of another organisation (`examples/consumers/python`, plain pika, and
`examples/consumers/node`, amqplib and ajv) against the real broker and the running membership
service, each with the broker user `partnership-ops topology consumer-user` gives it: on their first
start they replay the archive (a school that joined before they existed), then see each new event
exactly once (a redelivered copy is a duplicate), reject an event that breaks the published schema,
and on a later start do not replay again."""
from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pika
import pytest

from partnership_ops import event_archive, topology
from tests import factories
from tests.conftest import ROOT, eventually, http_json
from tests.reliability import tools

EXAMPLES = ROOT / "examples" / "consumers"
CONTRACTS = ROOT / "services" / "membership" / "contracts"


class ExampleConsumer:
    """One example consumer as a process; its JSON-lines output parsed."""

    def __init__(self, language: str, name: str, amqp_uri: str, workdir: Path):
        self.language, self.name, self.amqp_uri = language, name, amqp_uri
        self.state = workdir / f"{language}-state"
        self.output_path = workdir / f"{language}.out"
        self.process: subprocess.Popen | None = None
        self.starts = 0

    def command(self) -> list[str]:
        options = ["--amqp", self.amqp_uri, "--name", self.name, "--bind", "membership:member_joined.v1",
                   "--schemas", str(CONTRACTS), "--state", str(self.state), "--archive-idle-seconds", "1"]
        if self.language == "python":
            return [sys.executable, str(EXAMPLES / "python" / "consumer.py"), *options]
        return ["node", str(EXAMPLES / "node" / "consumer.js"), *options]

    def start(self) -> "ExampleConsumer":
        self.starts += 1
        self.output = open(self.output_path, "a", encoding="utf-8")
        self.output.write(json.dumps({"outcome": "started", "start": self.starts}) + "\n")
        self.output.flush()
        self.process = subprocess.Popen(self.command(), stdout=self.output, stderr=subprocess.STDOUT, cwd=ROOT)
        eventually(lambda: self.process.poll() is None and self.lines(self.starts, outcome="consuming"), timeout=60,
                   message=f"the {self.language} consumer consuming (exit code {self.process.poll()}; "
                           f"{self.output_path.read_text()[-2000:]})")
        return self

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.output.close()
        self.process = None

    def lines(self, start: int | None = None, **where) -> list[dict]:
        """Output lines (of one start, if given) whose fields equal `where`."""
        found, current = [], 0
        for line in self.output_path.read_text(encoding="utf-8").splitlines():
            try:
                item = json.loads(line)
            except ValueError:
                continue  # a stack trace or warning: shown in the failure message
            if item.get("outcome") == "started":
                current = item["start"]
                continue
            if (start is None or current == start) and all(item.get(k) == v for k, v in where.items()):
                found.append(item)
        return found


@pytest.fixture
def consumer_users(vhost):
    """Two external consumers' broker users, made as an operator would (the command line for one, the
    function it runs for the other), reading membership's events only; deleted afterwards."""
    management = topology.Management.for_amqp_uri(vhost.amqp_uri, url=vhost.management_url)
    names = {language: f"{language}-{uuid.uuid4().hex[:8]}" for language in ("python", "node")}
    passwords = {language: uuid.uuid4().hex for language in names}
    variable = f"PARTNERSHIP_AMQP_PASSWORD_CONSUMER_{names['python'].upper().replace('-', '_')}"
    made = subprocess.run([sys.executable, "-m", "partnership_ops", "topology", "consumer-user", names["python"],
                           "--producer", "membership", "--amqp", vhost.amqp_uri,
                           *(["--management-url", vhost.management_url] if vhost.management_url else [])],
                          capture_output=True, text=True, timeout=120, cwd=ROOT,
                          env={**os.environ, variable: passwords["python"]})
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["queue_prefix"] == f"consumer.{names['python']}."
    topology.provision_consumer(management, names["node"], vhost=vhost.name, password=passwords["node"],
                                producers=["membership"])
    uris = {language: topology.amqp_uri_for(vhost.amqp_uri, topology.consumer_user(name), passwords[language])
            for language, name in names.items()}
    yield names, uris
    for name in names.values():
        try:
            management.request("DELETE", f"/api/users/{topology.consumer_user(name)}")
        except topology.TopologyError:
            pass


def test_a_consumer_user_may_read_and_bind_but_not_publish_or_touch_the_services_queues(vhost, consumer_users):
    names, uris = consumer_users
    connection = pika.BlockingConnection(pika.URLParameters(uris["python"]))
    try:
        channel = connection.channel()
        own = f"consumer.{names['python']}.events"
        channel.queue_declare(own, durable=True, arguments={"x-queue-type": "quorum"})
        channel.queue_bind(own, "membership.events", "member_joined.v1")
        channel.confirm_delivery()
        refusals = []
        for attempt in (lambda c: c.basic_publish("membership.events", "member_joined.v1", b"{}", mandatory=True),
                        lambda c: c.queue_bind(own, "billing.events", "invoice_issued.v1"),
                        lambda c: c.basic_consume("billing.events.archive", lambda *a: None),
                        lambda c: c.queue_declare("evt-membership-member_joined--billing.sneaky", durable=True),
                        lambda c: c.queue_declare(f"consumer.{names['node']}.events", durable=True)):
            with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
                attempt(channel)
            refusals.append(refused.value.reply_code)
            channel = connection.channel()
            channel.confirm_delivery()
        assert refusals == [403] * 5
    finally:
        connection.close()


def test_python_and_node_consumers_replay_the_archive_then_see_each_event_once_and_reject_an_invalid_one(
        vhost, consumer_users, stack_factory, sqlite_databases, tmp_path):
    if not (EXAMPLES / "node" / "node_modules" / "amqplib").exists():
        pytest.fail("examples/consumers/node/node_modules is missing: run `make install` (npm ci)")
    names, uris = consumer_users
    stack = stack_factory(sqlite_databases).start("membership")

    def join() -> str:
        school = factories.school()
        status, body = http_json("POST", f"{stack.url('membership')}/members", school)
        assert status == 201, body
        return school["urn"]

    def archived(urn: str):
        for message in event_archive.read(vhost.amqp_uri, "membership", idle_seconds=0.3):
            envelope = json.loads(message.body)
            if envelope["type"] == "member_joined" and envelope["payload"]["urn"] == urn:
                return envelope
        return None

    first = join()  # before any consumer exists: only the archive has it for them
    before = eventually(lambda: archived(first), timeout=30, message="the first school's event archived")
    consumers = [ExampleConsumer(language, names[language], uris[language], tmp_path) for language in ("python", "node")]
    try:
        for consumer in consumers:
            consumer.start()
        second = join()
        after = eventually(lambda: archived(second), timeout=30, message="the second school's event archived")
        # a copy of it delivered again, as at-least-once delivery may
        tools.publish_raw(vhost.amqp_uri, "membership.events", "member_joined", after)
        invalid = copy.deepcopy(after)
        invalid.update(event_id=str(uuid.uuid4()))
        invalid["payload"]["number_on_roll"] = "many"
        tools.publish_raw(vhost.amqp_uri, "membership.events", "member_joined", invalid)

        for consumer in consumers:
            eventually(lambda c=consumer: c.lines(1, outcome="rejected") and c.lines(1, outcome="duplicate"),
                       timeout=30, message=f"the {consumer.language} consumer seeing the copy and the invalid event")
            applied = [(line["event_id"], line["via"]) for line in consumer.lines(1, outcome="applied")]
            assert applied == [(before["event_id"], "archive"), (after["event_id"], "queue")], consumer.language
            assert [line["event_id"] for line in consumer.lines(1, outcome="duplicate")] == [after["event_id"]]
            rejected = consumer.lines(1, outcome="rejected")
            assert [line["message_id"] for line in rejected] == [invalid["event_id"]], consumer.language
            assert any("number_on_roll" in error for error in rejected[0]["errors"]), rejected
            assert len(consumer.lines(1, outcome="archive_replayed")) == 1
            consumer.stop()

        # a later start does not replay the archive; what was published meanwhile arrives once, from the queue
        later = join()
        later_event = eventually(lambda: archived(later), timeout=30, message="the third school's event archived")
        for consumer in consumers:
            consumer.start()
            eventually(lambda c=consumer: c.lines(2, outcome="applied"), timeout=30,
                       message=f"the {consumer.language} consumer applying the third school's event")
            assert [(line["event_id"], line["via"]) for line in consumer.lines(2, outcome="applied")] == [
                (later_event["event_id"], "queue")]
            assert consumer.lines(2, outcome="archive_replayed") == []
            assert consumer.lines(2, outcome="duplicate") == []
    finally:
        for consumer in consumers:
            consumer.stop()
