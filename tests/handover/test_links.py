"""Separate brokers: the link definitions in deploy/ applied with rabbitmqctl, a second
virtual host on the same broker standing in for the new operator's RabbitMQ."""
from __future__ import annotations

import json
import os
import subprocess

import pytest
from deploy.local import ROOT
from partnership_ops import links
from partnership_ops import event_archive
from tests.conftest import Vhost, eventually, provision_vhost, rabbitmqctl
from tests.reliability import tools

SCRIPT = ROOT / "deploy" / "rabbitmq" / "apply-links.sh"
DEFINITIONS = ROOT / "deploy" / "rabbitmq" / "links" / "scheduling.json"


@pytest.fixture
def new_broker():
    # The new operator's broker starts empty: the link definitions provision what the moved service needs.
    host = Vhost(provision=False)
    yield host
    host.delete()


def browse(amqp_uri: str, queue: str) -> list[dict]:
    return [json.loads(body) for _, body in tools.queue_messages(amqp_uri, queue)]


class TestLinkDefinitions:
    def test_applied_definitions_carry_events_both_ways_between_brokers(self, vhost, new_broker):
        old, new = vhost, new_broker
        provision_vhost(old.amqp_uri, ["scheduling"])  # the old broker, where the old instance ran
        gap_event = tools.envelope("member_joined", {"urn": "123456"}, producer="membership")
        tools.publish_raw(old.amqp_uri, "membership.events", "member_joined", gap_event)

        env = {**os.environ, "OLD_BROKER_URI": old.amqp_uri, "NEW_BROKER_URI": new.amqp_uri,
               "NEW_BROKER_VHOST": new.name, "NEW_OPERATOR": "great-learners-trust"}
        result = subprocess.run(["bash", str(SCRIPT), str(DEFINITIONS)], capture_output=True, text=True,
                                env=env, timeout=300)
        assert result.returncode == 0, result.stderr + result.stdout
        assert "all shovels running" in result.stdout

        joined_queue = "evt-membership-member_joined--scheduling.on_member_joined"
        # The event published while nothing consumed reaches the new broker's queue, and so does a later one.
        later_event = tools.envelope("member_joined", {"urn": "654321"}, producer="membership")
        tools.publish_raw(old.amqp_uri, "membership.events", "member_joined", later_event)
        # (counted without browsing: every browse of a quorum queue counts towards its delivery limit)
        eventually(lambda: tools.queue_depth(new.amqp_uri, joined_queue) == 2, timeout=30,
                   message="events forwarded to the new broker")
        moved = browse(new.amqp_uri, joined_queue)
        assert [e["event_id"] for e in moved] == [gap_event["event_id"], later_event["event_id"]]
        queues = rabbitmqctl("list_queues", "-p", new.name, "name", "type", "--no-table-headers", "-q")
        assert f"{joined_queue}\tquorum" in queues.splitlines()

        # What the moved service publishes on its broker reaches the old broker's exchange, routing key
        # kept: the old broker's archive of scheduling's events holds it.
        outgoing = tools.envelope("attendance_recorded", {"attendance_id": "a1"}, producer="scheduling")
        tools.publish_raw(new.amqp_uri, "scheduling.events", "attendance_recorded", outgoing)
        arrived = eventually(lambda: [e for e in event_archive.read(old.amqp_uri, "scheduling", idle_seconds=0.5)],
                             timeout=30, message="event on the old broker")
        assert [(e.properties.message_id, e.routing_key) for e in arrived] == [
            (outgoing["event_id"], "attendance_recorded.v1")]

    def test_missing_variable_stops_the_script_before_anything_is_applied(self, new_broker):
        env = {k: v for k, v in os.environ.items() if not k.endswith("BROKER_URI")}
        result = subprocess.run(["bash", str(SCRIPT), str(DEFINITIONS)], capture_output=True, text=True,
                                env=env, timeout=60)
        assert result.returncode != 0
        assert "NEW_BROKER_URI" in result.stderr and "OLD_BROKER_URI" in result.stderr


class TestPlan:
    def test_one_inbound_shovel_per_handler_and_one_outbound_for_the_exchange(self):
        shovels = links.plan("billing", old_uri="amqp://old/", new_uri="amqp://new/", label="council")
        queues = [h.queue for h in links.handlers_of("billing")]
        assert len(queues) == 12 and "evt-scheduling-attendance_recorded--billing.on_attendance_recorded" in queues
        assert [(s["name"], s["value"].get("src-queue"), s["value"].get("dest-queue"),
                 s["value"].get("dest-exchange")) for s in shovels] == [
            *[(f"handover.{q}", q, q, None) for q in queues],
            ("link.billing.events.council", "link.billing.events.council", None, "billing.events")]
        assert {s["value"]["ack-mode"] for s in shovels} == {"on-confirm"}

    def test_definitions_in_deploy_match_the_services(self):
        result = subprocess.run([os.sys.executable, "-m", "deploy.links", "--check"], cwd=ROOT,
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
