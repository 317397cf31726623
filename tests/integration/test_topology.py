"""The provisioned broker topology, on the real broker: what a deployment relies on.

Each test's vhost is provisioned as `make run` and a deployment provision one
(`deploy/topology.py` through the management API), and services run as their own
least-privilege users (`tests/conftest.py`).
"""
from __future__ import annotations

import json
import threading

import pika
import pytest

from deploy import topology as deploy_topology
from partnership_ops import event_archive, topology
from partnership_ops.topology import Management
from tests.factories import school
from tests.conftest import TEST_TOPOLOGY_SETTINGS, TEST_USER_PREFIX, eventually, http_json, provision_vhost
from tests.integration.billing_upstream import Upstream
from tests.reliability import tools

CATALOGUE_JOINED_QUEUE = "evt-membership-member_joined--catalogue.on_member_joined"
BILLING_JOINED_QUEUE = "evt-membership-member_joined--billing.on_member_joined"


@pytest.fixture
def vhost(vhost):
    """These tests look at the whole topology, as `make run` and a deployment apply it: every
    service's queues provisioned up front (other tests' vhosts get a service's queues when it starts)."""
    provision_vhost(vhost.amqp_uri, None)
    return vhost


def _channel(uri: str):
    connection = pika.BlockingConnection(pika.URLParameters(uri))
    return connection, connection.channel()


class TestProvisioning:
    def test_applied_topology_matches_its_definitions_and_apply_is_idempotent(self, vhost):
        management = Management.for_amqp_uri(vhost.amqp_uri)
        document = deploy_topology.document(TEST_TOPOLOGY_SETTINGS, user_prefix=TEST_USER_PREFIX)
        assert topology.check(management, document, vhost=vhost.name) == []
        again = topology.apply(management, document, vhost=vhost.name)  # users exist: no passwords needed
        assert again["queues"] == len(document["queues"])
        assert topology.check(management, document, vhost=vhost.name) == []

    def test_check_names_what_was_removed_or_changed(self, vhost):
        management = Management.for_amqp_uri(vhost.amqp_uri)
        document = deploy_topology.document(TEST_TOPOLOGY_SETTINGS, user_prefix=TEST_USER_PREFIX)
        policy = f"{BILLING_JOINED_QUEUE}"
        management.request("DELETE", f"/api/policies/{vhost.name}/{policy}")
        management.request("DELETE", f"/api/queues/{vhost.name}/billing.events.archive")
        problems = topology.check(management, document, vhost=vhost.name)
        assert f"policy {policy} missing" in problems
        assert "queue billing.events.archive missing" in problems

    def test_limits_and_dead_lettering_are_policies_not_queue_arguments(self, vhost):
        management = Management.for_amqp_uri(vhost.amqp_uri)
        queue = eventually(lambda: (lambda q: q if q.get("effective_policy_definition") else None)(
            management.request("GET", f"/api/queues/{vhost.name}/{BILLING_JOINED_QUEUE}")), timeout=20,
            message="policy applied to the handler queue")
        assert queue["arguments"] == {"x-queue-type": "quorum"}
        assert queue["effective_policy_definition"] == {
            "delivery-limit": 5, "dead-letter-exchange": "billing.dead-letter",
            "dead-letter-routing-key": f"{BILLING_JOINED_QUEUE}.dead", "dead-letter-strategy": "at-least-once",
            "overflow": "reject-publish"}

    def test_a_changed_delivery_limit_is_applied_without_redeclaring_anything(self, vhost):
        management = Management.for_amqp_uri(vhost.amqp_uri)
        changed = deploy_topology.document({**TEST_TOPOLOGY_SETTINGS, "delivery_limit": 9},
                                           user_prefix=TEST_USER_PREFIX)
        topology.apply(management, changed, vhost=vhost.name)
        assert topology.check(management, changed, vhost=vhost.name) == []
        # a consumer declaring its queue as the services do still succeeds
        connection, channel = _channel(vhost.service_uris["billing"])
        try:
            channel.queue_declare(BILLING_JOINED_QUEUE, durable=True, arguments={"x-queue-type": "quorum"})
        finally:
            connection.close()


class TestLeastPrivilege:
    def test_a_service_user_cannot_publish_to_another_services_exchange(self, vhost):
        connection, channel = _channel(vhost.service_uris["billing"])
        channel.confirm_delivery()
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
            channel.basic_publish("membership.events", "member_joined", b"{}", mandatory=True)
        assert refused.value.reply_code == 403
        connection.close()

    def test_a_service_user_cannot_consume_or_declare_another_services_queues(self, vhost):
        connection, channel = _channel(vhost.service_uris["billing"])
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
            channel.basic_consume(CATALOGUE_JOINED_QUEUE, lambda *a: None)
        assert refused.value.reply_code == 403
        channel = connection.channel()
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
            channel.queue_declare("evt-membership-member_joined--catalogue.sneaky", durable=True)
        assert refused.value.reply_code == 403
        connection.close()

    def test_a_service_user_may_do_what_its_service_does(self, vhost):
        connection, channel = _channel(vhost.service_uris["catalogue"])
        channel.confirm_delivery()
        channel.basic_publish("catalogue.events", "offering_published", b"{}", mandatory=True)  # the archive routes it
        channel.queue_declare(CATALOGUE_JOINED_QUEUE, durable=True, arguments={"x-queue-type": "quorum"})
        channel.basic_publish("catalogue.requeue", CATALOGUE_JOINED_QUEUE, b"{}", mandatory=True)
        connection.close()

    def test_a_service_started_with_another_services_credentials_is_refused(self, vhost, sqlite_databases,
                                                                              stack_factory):
        stack = stack_factory(sqlite_databases)
        # catalogue's process with billing's broker user: the broker refuses catalogue's queues
        stack.service_amqp_uri = lambda name: vhost.service_uris["billing"]
        stack.start("catalogue", wait=False)
        process = stack.processes["catalogue"]
        eventually(lambda: "ACCESS_REFUSED" in process.log_path.read_text(errors="replace"), timeout=60,
                   message="the broker refusing catalogue's consumer")
        assert tools.queue_consumers(vhost.amqp_uri, CATALOGUE_JOINED_QUEUE) == 0


class TestSubscribersThatStartLate:
    def test_an_event_published_before_its_subscriber_ever_started_is_delivered_when_it_starts(
            self, vhost, sqlite_databases, stack_factory):
        stack = stack_factory(sqlite_databases)
        stack.start("membership")  # billing's queues were provisioned with the rest, before anything started
        urn = "149901"
        status, body = http_json("POST", f"{stack.url('membership')}/members", school(urn=urn))
        assert status == 201, body
        eventually(lambda: http_json("GET", f"{stack.url('membership')}/ops/outbox")[1]["unsent"] == 0,
                   timeout=30, message="membership's outbox drained with no subscriber running")
        stack.start("billing")  # for the first time, after the event was confirmed
        eventually(lambda: tools.count(stack.database_urls["billing"], "members", f"WHERE urn = '{urn}'") == 1,
                   timeout=30, message="billing learning of the member")


class TestArchive:
    def test_every_published_event_is_in_its_producers_archive_and_tail_reads_it(self, vhost):
        upstream = Upstream(vhost.amqp_uri)
        ids = [upstream.member_joined(f"1499{n:02d}", f"School {n}") for n in range(3)]
        printed: list[dict] = []
        count = event_archive.tail(vhost.amqp_uri, ["membership"], types={"member_joined"}, idle_seconds=1.0,
                                   emit=printed.append)
        assert count == 3
        assert [item["event_id"] for item in printed] == ids
        assert [item["offset"] for item in printed] == sorted(item["offset"] for item in printed)

    def test_a_read_waits_longer_for_its_first_event_than_between_events(self, vhost):
        # A stream has no end marker: a read ends after `idle_seconds` with nothing new. Its first event
        # may come later than that (a busy broker still opening the stream); the read must not end
        # first. The event is published one second into a read whose quiet spell is 0.2 s (the first wait, 5 s).
        upstream = Upstream(vhost.amqp_uri)
        published: list[str] = []
        late = threading.Timer(1.0, lambda: published.append(upstream.member_joined("149701", "Late School")))
        late.start()
        try:
            read = [e.envelope["event_id"] for e in event_archive.read(vhost.amqp_uri, "membership", idle_seconds=0.2,
                                                                     timeout=30)]
        finally:
            late.join(30)
        assert read == published and len(published) == 1

    def test_replay_resends_one_handlers_events_to_its_queue_only(self, vhost):
        upstream = Upstream(vhost.amqp_uri)
        ids = [upstream.member_joined(f"1498{n:02d}", f"School {n}") for n in range(4)]
        # drain both subscribers' queues, as if the events had been handled
        for queue in (BILLING_JOINED_QUEUE, CATALOGUE_JOINED_QUEUE):
            eventually(lambda q=queue: tools.queue_depth(vhost.amqp_uri, q) == 4, timeout=20)
            tools.purge(vhost.amqp_uri, queue)
        report = event_archive.replay(vhost.amqp_uri, BILLING_JOINED_QUEUE, source="membership",
                                      event_type="member_joined", idle_seconds=1.0)
        assert report["replayed"] == 4
        eventually(lambda: tools.queue_depth(vhost.amqp_uri, BILLING_JOINED_QUEUE) == 4, timeout=20)
        assert tools.queue_depth(vhost.amqp_uri, CATALOGUE_JOINED_QUEUE) == 0
        replayed = [json.loads(body)["event_id"] for _, body in tools.queue_messages(vhost.amqp_uri,
                                                                                       BILLING_JOINED_QUEUE)]
        assert replayed == ids


class TestOperatorCommands:
    def test_topology_check_tail_and_replay_from_the_command_line(self, vhost, tmp_path):
        import subprocess
        import sys

        from deploy.local import ROOT

        def ops(*args):
            return subprocess.run([sys.executable, "-m", "partnership_ops", *args], capture_output=True, text=True,
                                  timeout=120, cwd=ROOT)

        definitions = tmp_path / "definitions.json"
        definitions.write_text(json.dumps(deploy_topology.document(TEST_TOPOLOGY_SETTINGS,
                                                                   user_prefix=TEST_USER_PREFIX)))
        checked = ops("topology", "check", "--definitions", str(definitions), "--amqp", vhost.amqp_uri)
        assert checked.returncode == 0, checked.stderr
        assert json.loads(checked.stdout)["matches"] is True
        # the file in deploy/ has the default limits, which this test vhost does not: check says so
        stale = ops("topology", "check", "--definitions", str(deploy_topology.FILE), "--amqp", vhost.amqp_uri)
        assert stale.returncode == 1
        assert any("delivery-limit" in problem for problem in json.loads(stale.stdout)["problems"])

        event_id = Upstream(vhost.amqp_uri).member_joined("149700", "Tailed School")
        tailed = ops("tail", "--amqp", vhost.amqp_uri, "--producer", "membership", "--type", "member_joined")
        assert tailed.returncode == 0, tailed.stderr
        lines = [json.loads(line) for line in tailed.stdout.splitlines()]
        assert [(line["event_id"], line["type"], line["payload"]["urn"]) for line in lines] == [
            (event_id, "member_joined", "149700")]

        tools.purge(vhost.amqp_uri, BILLING_JOINED_QUEUE)
        replayed = ops("replay", "--amqp", vhost.amqp_uri, "--queue", BILLING_JOINED_QUEUE, "--from", "first")
        assert replayed.returncode == 0, replayed.stderr
        assert json.loads(replayed.stdout)["replayed"] == 1
        refused = ops("replay", "--amqp", vhost.amqp_uri, "--queue", "not-a-handler-queue")
        assert refused.returncode == 2 and "not a handler queue" in refused.stderr
