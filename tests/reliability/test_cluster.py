"""A three-node RabbitMQ cluster: the node leading the queues dies mid-stream, and nothing is lost.

The test starts a cluster of its own (tests/brokers.py `broker_cluster`: three more nodes of the
installed RabbitMQ beside the machine's, never touching it), applies the topology on it, and runs
membership, catalogue and billing with `AMQP_URI` listing the three nodes. Schools join through
membership's API, a steady stream; each join is an outbox row that the relay publishes, and a
`member_joined` that the catalogue and billing each apply. A third of the way in, the node that leads
the handler queues (and holds every service's first connection) is SIGKILLed. The stream goes on;
every event must still reach both consumers through the two surviving nodes, with the handler queues'
new leaders on them. Then the killed node is started again and must rejoin the cluster, with its queue
replicas back online, and every outbox row is confirmed.

The relay's publishes must be confirmed while the node is down too. On RabbitMQ 3.10.8 a channel
opened while the node was dying went on nacking every publish (the queues behind the exchange had
new leaders), while a new channel's were confirmed; the relay now starts a new connection after a
nacked round (shared/shared/relay.py), and its rows were stuck unsent without that.

Exact counts at the end, from the services' own databases: every `member_joined` in membership's
outbox is sent and in each consumer's inbox once (nothing lost), no inbox holds an event the outbox
does not (nothing unexpected), and each consumer holds exactly one member row per school (nothing
applied twice).
"""
from __future__ import annotations

import threading
import time

import pytest

from deploy import topology as deploy_topology
from partnership_ops import topology
from tests import factories
from tests.brokers import broker_cluster  # noqa: F401 - fixture
from tests.conftest import TEST_TOPOLOGY_SETTINGS, TEST_USER_PREFIX, Vhost, eventually, http_json
from tests.e2e.steps import rows

pytestmark = pytest.mark.outage

SCHOOLS = 90
KILL_AFTER = 30
CONSUMERS = ("catalogue", "billing")
REPLICAS = 3


@pytest.fixture
def broker(broker_cluster):  # noqa: F811 - the test's vhost and services live on the cluster
    return broker_cluster


@pytest.fixture
def vhost(broker):
    # Not deleted afterwards: the whole cluster is (deleting a vhost waits on every replica of its queues).
    return Vhost(broker=broker)


class Joins:
    """Schools joining through membership's API, one after another, until `total` have joined."""

    def __init__(self, membership_url: str, total: int, pause: float = 0.05):
        self.url = membership_url
        self.total = total
        self.pause = pause
        self.joined: list[str] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        for index in range(self.total):
            if self._stop.is_set():
                return
            urn = f"{170000 + index}"
            status, body = http_json("POST", f"{self.url}/members", factories.school(urn=urn), timeout=30)
            if status != 201:
                self.errors.append(f"{urn}: {status} {body}")
                return
            self.joined.append(urn)
            self._stop.wait(self.pause)  # a steady stream, not a burst (pacing only; nothing waits on it)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(40)

    def start(self) -> "Joins":
        self._thread.start()
        return self

    def wait(self, timeout: float) -> None:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), f"the joins did not finish in {timeout:.0f}s ({len(self.joined)} done)"
        assert not self.errors, self.errors


def event_ids(url: str, table: str, event_type: str, extra: str = "") -> list[str]:
    return [r["event_id"] for r in rows(url, f"SELECT event_id FROM {table} WHERE event_type = :t {extra}",
                                        t=event_type)]


def handler_queues(cluster, vhost: str) -> list[dict]:
    return [q for q in cluster.queues(vhost)
            if q["name"].startswith("evt-membership-member_joined--") and not q["name"].endswith(".dead")]


@pytest.mark.timeout(600)
def test_the_node_leading_the_queues_dies_mid_stream_and_nothing_is_lost_or_applied_twice(
        broker_cluster, vhost, stack_factory, sqlite_databases):  # noqa: F811
    cluster = broker_cluster
    stack = stack_factory(sqlite_databases).start("membership", *CONSUMERS)
    assert stack.processes["membership"].amqp_uri.count(";") == REPLICAS - 1  # the services got all three nodes

    # Replication factor 3: every quorum queue and every archive stream of the vhost has a replica on each node.
    # (The management API lists a new stream's members only with its first statistics, some seconds on.)
    def all_replicated():
        replicated = [q for q in cluster.queues(vhost.name) if q.get("type") in ("quorum", "stream")]
        assert {q["name"] for q in replicated} >= {"membership.events.archive", "catalogue.events.archive"}
        members = {q["name"]: len(q.get("members") or []) for q in replicated}
        assert members == {name: REPLICAS for name in members}, members
        return True
    eventually(all_replicated, timeout=60, message=f"every quorum queue and stream on {REPLICAS} nodes")
    document = deploy_topology.document(TEST_TOPOLOGY_SETTINGS, user_prefix=TEST_USER_PREFIX,
                                        consumers=["membership", *CONSUMERS])
    assert topology.replication_problems(cluster.management(), document, vhost=vhost.name) == []

    joins = Joins(stack.url("membership"), SCHOOLS).start()
    try:
        check_the_stream(cluster, vhost, stack, joins)
    finally:
        joins.stop()


def check_the_stream(cluster, vhost, stack, joins: Joins) -> None:
    eventually(lambda: len(joins.joined) >= KILL_AFTER or joins.errors, timeout=120, message="the stream under way")

    # The node leading the member_joined queues: the one declarations went to, and every service's first address.
    leaders = [q["leader"] for q in handler_queues(cluster, vhost.name)]
    assert len(leaders) == len(CONSUMERS), leaders
    victim = cluster.node_named(max(set(leaders), key=leaders.count))
    killed_at = len(joins.joined)
    victim.kill()
    survivors = {node.node for node in cluster.nodes} - {victim.node}

    joins.wait(timeout=300)
    assert killed_at < SCHOOLS and len(joins.joined) == SCHOOLS

    # The services carried on through the surviving nodes: new queue leaders elected on them, and every join,
    # those made after the kill included, reached and was applied by both consumers while the victim is down.
    membership_db = stack.database_urls["membership"]
    committed = set(event_ids(membership_db, "outbox", "member_joined"))
    assert len(committed) == SCHOOLS
    for service in CONSUMERS:
        eventually(lambda: set(event_ids(stack.database_urls[service], "inbox", "member_joined")) == committed,
                   timeout=180, message=f"{service} applying every join through the surviving nodes")
    sent = set(eventually(
        lambda: (lambda ids: ids if len(ids) == SCHOOLS else None)(
            event_ids(membership_db, "outbox", "member_joined", "AND sent_at IS NOT NULL")),
        timeout=180, message="membership's relay having every join confirmed through the surviving nodes"))
    assert {q["leader"] for q in handler_queues(cluster, vhost.name)} <= survivors
    assert not victim._node_process_alive()

    # The killed node comes back into the cluster, and its replicas of the queues are online again.
    victim.revive()
    cluster.await_running({node.node for node in cluster.nodes})
    eventually(lambda: all(set(q.get("online") or []) == {n.node for n in cluster.nodes}
                           for q in handler_queues(cluster, vhost.name)),
               timeout=120, message=f"{victim.node}'s queue replicas back online")

    # Exact counts: nothing lost, nothing unexpected, nothing applied twice.
    assert sent == committed
    for service in CONSUMERS:
        url = stack.database_urls[service]
        applied = event_ids(url, "inbox", "member_joined")
        assert len(applied) == len(set(applied)) == SCHOOLS, service
        assert set(applied) == sent, (service, "lost", len(sent - set(applied)), "unexpected", len(set(applied) - sent))
        members = rows(url, "SELECT urn, count(*) AS n FROM members GROUP BY urn")
        assert {m["urn"] for m in members} == set(joins.joined), service
        assert all(m["n"] == 1 for m in members), (service, [m for m in members if m["n"] != 1])

    # ... and the path still works with the node back: one more join reaches both consumers, once.
    ok, body = http_json("POST", f"{stack.url('membership')}/members", factories.school(urn="179999"))
    assert ok == 201, body
    for service in CONSUMERS:
        eventually(lambda: len(event_ids(stack.database_urls[service], "inbox", "member_joined")) == SCHOOLS + 1,
                   timeout=120, message=f"{service} applying the join after the rejoin")
