"""partnership_ops.topology: the definitions document generated from what services declare, and the
least-privilege permissions of each service's broker user (no broker needed; the applied topology is
tested on the real broker in tests/integration/test_topology.py)."""
from __future__ import annotations

import re

import pytest

from partnership_ops import topology
from partnership_ops.topology import Handler, ServiceTopology
from shared import topology as names

JOINED = Handler("membership", "member_joined", "on_member_joined",
                 names.handler_queue_name("membership", "member_joined", "billing", "on_member_joined"))
BILLING = ServiceTopology("billing", (JOINED,))
MEMBERSHIP = ServiceTopology("membership", (), serves_rpc=True)


def document(*topologies, **overrides):
    settings = {"delivery_limit": 20, "retry_delays_ms": [1000, 5000], **overrides}
    return topology.definitions(topologies or (BILLING, MEMBERSHIP), **settings)


def matches(pattern: str, name: str) -> bool:
    return re.fullmatch(pattern, name) is not None


class TestDefinitions:
    def test_every_producer_gets_its_exchange_and_its_archive_stream_bound_to_everything(self):
        doc = document()
        exchanges = {e["name"]: e["type"] for e in doc["exchanges"]}
        assert exchanges["membership.events"] == exchanges["billing.events"] == "topic"
        queues = {q["name"]: q["arguments"] for q in doc["queues"]}
        assert queues["membership.events.archive"] == {"x-queue-type": "stream"}
        assert {"source": "membership.events", "destination": "membership.events.archive", "routing_key": "#",
                "destination_type": "queue", "arguments": {}} in doc["bindings"]
        archive = {p["name"]: p for p in doc["policies"]}["archive.membership"]
        assert archive["definition"] == {"max-age": topology.ARCHIVE_MAX_AGE}

    def test_a_handler_queue_is_bound_to_its_source_and_its_limits_are_a_policy(self):
        doc = document()
        queues = {q["name"]: q["arguments"] for q in doc["queues"]}
        assert queues[JOINED.queue] == names.handler_queue_arguments()
        assert queues[names.dead_letter_queue_name(JOINED.queue)] == {"x-queue-type": "quorum"}
        routes = {(b["source"], b["destination"], b["routing_key"]) for b in doc["bindings"]}
        assert ("membership.events", JOINED.queue, "member_joined.v1") in routes
        assert ("billing.requeue", JOINED.queue, JOINED.queue) in routes
        policy = {p["name"]: p for p in doc["policies"]}[JOINED.queue]
        assert policy["pattern"] == f"^{re.escape(JOINED.queue)}$"
        assert policy["definition"] == {
            "delivery-limit": 20, "dead-letter-exchange": "billing.dead-letter",
            "dead-letter-routing-key": f"{JOINED.queue}.dead", "dead-letter-strategy": "at-least-once",
            "overflow": "reject-publish"}

    def test_a_handler_is_bound_to_the_one_version_it_reads(self):
        v2 = Handler("membership", "member_joined", "on_member_joined_v2",
                     names.handler_queue_name("membership", "member_joined", "billing", "on_member_joined_v2"), 2)
        doc = document(ServiceTopology("billing", (JOINED, v2)), MEMBERSHIP)
        from_membership = {(b["destination"], b["routing_key"]) for b in doc["bindings"]
                           if b["source"] == "membership.events"}
        assert from_membership == {(JOINED.queue, "member_joined.v1"), (v2.queue, "member_joined.v2"),
                                   ("membership.events.archive", "#")}

    def test_each_retry_delay_is_a_queue_whose_ttl_returns_through_requeue(self):
        policies = {p["name"]: p["definition"] for p in document()["policies"]}
        assert policies["billing.retry.5000ms"] == {
            "message-ttl": 5000, "dead-letter-exchange": "billing.requeue", "dead-letter-strategy": "at-least-once",
            "overflow": "reject-publish"}
        assert "membership.retry.1000ms" not in policies  # no handlers, no retries

    def test_a_source_outside_the_deployment_still_gets_its_exchange(self):
        doc = document(BILLING)
        assert "membership.events" in {e["name"] for e in doc["exchanges"]}
        assert "membership.events.archive" not in {q["name"] for q in doc["queues"]}

    def test_the_document_is_the_same_whatever_the_order_of_the_services(self):
        assert document(BILLING, MEMBERSHIP) == document(MEMBERSHIP, BILLING)

    def test_users_are_named_with_the_prefix(self):
        assert [p["user"] for p in document(user_prefix="t-")["permissions"]] == ["t-billing", "t-membership"]


class TestPermissions:
    def test_a_service_writes_only_its_own_exchanges(self):
        write = topology.permissions_of(BILLING)["write"]
        for own in ("billing.events", "billing.retry.1000ms", "billing.dead-letter", "billing.requeue", JOINED.queue):
            assert matches(write, own), own
        for other in ("membership.events", "catalogue.requeue", "evt-membership-member_joined--catalogue.on_x"):
            assert not matches(write, other), other

    def test_a_service_reads_its_sources_and_its_own_queues_only(self):
        read = topology.permissions_of(BILLING)["read"]
        assert matches(read, "membership.events") and matches(read, JOINED.queue)
        assert not matches(read, "catalogue.events") and not matches(read, "billing.events")

    def test_rpc_only_for_a_service_that_serves_it(self):
        assert matches(topology.permissions_of(MEMBERSHIP)["configure"], "rpc-membership")
        assert not matches(topology.permissions_of(BILLING)["configure"], "nameko-rpc")


class TestConsumerPermissions:
    """An external consumer's broker user (`partnership-ops topology consumer-user`)."""

    PERMISSIONS = topology.consumer_permissions("finance", ["membership", "catalogue"])

    def test_it_configures_and_binds_only_its_own_queues(self):
        for kind in ("configure", "write"):
            assert matches(self.PERMISSIONS[kind], "consumer.finance.events")
            for other in ("consumer.financex.events", "consumer.warehouse.events", JOINED.queue, "membership.events",
                          "membership.events.archive", "amq.default", ""):
                assert not matches(self.PERMISSIONS[kind], other), (kind, other)

    def test_it_reads_the_chosen_producers_exchanges_and_archives_and_its_own_queues(self):
        read = self.PERMISSIONS["read"]
        for allowed in ("membership.events", "catalogue.events", "membership.events.archive",
                        "catalogue.events.archive", "consumer.finance.events"):
            assert matches(read, allowed), allowed
        for refused in ("billing.events", "billing.events.archive", JOINED.queue, "consumer.warehouse.events",
                        "billing.requeue"):
            assert not matches(read, refused), refused

    @pytest.mark.parametrize("name", ["", "Finance", "fin.ance", "a" * 41, "-x"])
    def test_a_bad_name_is_refused_naming_the_rule(self, name):
        with pytest.raises(ValueError, match="consumer name"):
            topology.consumer_permissions(name, ["membership"])


class TestBrokerAddresses:
    def test_the_management_api_is_found_from_an_administrators_amqp_uri(self):
        management = topology.Management.for_amqp_uri("amqp://admin:p%40ss@broker.example:5672/partnership")
        assert (management.url, management.username, management.password) == (
            "http://broker.example:15672", "admin", "p@ss")

    def test_a_services_uri_keeps_the_broker_and_vhost_with_its_own_credentials(self):
        uri = topology.amqp_uri_for("amqp://guest:guest@127.0.0.1:5679/%2Fv", "billing", "s3cr/t")
        assert uri == "amqp://billing:s3cr%2Ft@127.0.0.1:5679/%2Fv"

    def test_an_unreachable_management_api_is_a_topology_error_naming_it(self):
        management = topology.Management("http://127.0.0.1:9", "guest", "guest", timeout=2)
        with pytest.raises(topology.TopologyError, match="not reachable"):
            management.request("GET", "/api/overview")

    def test_a_clusters_list_gives_every_nodes_management_api_and_every_node_the_services_credentials(self):
        cluster = "amqp://admin:pw@rabbit-1:5672/p;amqp://admin:pw@rabbit-2:5672/p;amqp://admin:pw@rabbit-3:5672/p"
        management = topology.Management.for_amqp_uri(cluster)
        assert management.urls == ["http://rabbit-1:15672", "http://rabbit-2:15672", "http://rabbit-3:15672"]
        assert (management.username, management.password) == ("admin", "pw")
        assert topology.amqp_uri_for(cluster, "billing", "s") == (
            "amqp://billing:s@rabbit-1:5672/p;amqp://billing:s@rabbit-2:5672/p;amqp://billing:s@rabbit-3:5672/p")
        assert [p.port for p in topology.pika_parameters(cluster)] == [5672, 5672, 5672]
        assert [p.host for p in topology.pika_parameters(cluster)] == ["rabbit-1", "rabbit-2", "rabbit-3"]

    def test_a_request_goes_to_the_first_node_that_answers(self):
        # the first node is down; the second (the machine's broker) answers
        management = topology.Management("http://127.0.0.1:9;http://127.0.0.1:15672", "guest", "guest", timeout=5)
        assert management.request("GET", "/api/overview")["management_version"]

    def test_an_http_error_from_a_node_is_the_answer_not_a_reason_to_try_the_next(self):
        management = topology.Management("http://127.0.0.1:15672;http://127.0.0.1:9", "guest", "guest", timeout=5)
        with pytest.raises(topology.TopologyError, match="HTTP 404"):
            management.request("GET", "/api/queues/no-such-vhost-here/none")

    def test_the_services_names_are_shareds_own(self):
        assert topology.handler_queue_name is names.handler_queue_name
        assert topology.archive_name is names.archive_name


class _Listing:
    """A management API stand-in answering the two listings `replication_problems` reads."""

    def __init__(self, nodes, queues):
        self.answers = {"/api/nodes": nodes, "/api/queues/v": queues}

    def request(self, method, path):
        return self.answers[path]


def test_replication_counts_members_and_leaves_a_stream_not_yet_reported_alone():
    document = {"queues": [{"name": "a.archive", "arguments": {"x-queue-type": "stream"}},
                           {"name": "b.archive", "arguments": {"x-queue-type": "stream"}},
                           {"name": "q", "arguments": {"x-queue-type": "quorum"}}]}
    nodes = [{"name": f"rabbit-{n}", "running": True} for n in range(3)]
    queues = [{"name": "a.archive"},  # declared a moment ago: no `members` in the listing yet
              {"name": "b.archive", "members": ["rabbit-0", "rabbit-1", "rabbit-2"]},
              {"name": "q", "members": ["rabbit-0"]}]
    problems = topology.replication_problems(_Listing(nodes, queues), document, vhost="v")
    assert problems == ["queue q has 1 replica(s), expected 3 (rabbitmq-queues grow <node> all)"]
