"""A slow or stuck broker: confirms that take 1.5 s, a connection whose confirms never come.

Everything talks to the real broker through `proxy.DelayingProxy` on 127.0.0.1, and each
test counts what reached the queues: every event and every copy exactly once, no
republish storm, and no wait that outlasts its timeout.
"""
from __future__ import annotations

import json
import threading
import time
import uuid

import pika
import pytest
import sqlalchemy as sa

from shared.consumer import Republisher
from shared.db import Database
from shared.envelope import Envelope
from shared.messaging_tables import define_messaging_tables, utcnow
from shared.metrics import metrics_for
from shared.relay import OutboxRelay
from shared.unit_of_work import outbox_row
from tests.conftest import eventually
from tests.reliability import tools
from tests.reliability.proxy import DelayingProxy

CONFIRM_DELAY = 1.5


def declare_queue(amqp_uri: str, queue: str, *, exchange: str | None = None, routing_key: str = "thing_happened.v1") -> None:
    """A durable queue, bound (when an exchange is named) to the one event type the test relays publish."""
    connection = pika.BlockingConnection(pika.URLParameters(amqp_uri))
    try:
        channel = connection.channel()
        channel.queue_declare(queue, durable=True)
        if exchange:
            channel.exchange_declare(exchange, "topic", durable=True)
            channel.queue_bind(queue, exchange, routing_key)
    finally:
        connection.close()


def copy_properties(index: int) -> dict:
    return {"content_type": "application/json", "message_id": f"copy-{index}", "type": "subscription_started"}


def outbox_with(tmp_path, service: str, total: int):
    """A SQLite database holding an outbox of `total` unsent events of `service`."""
    metadata = sa.MetaData()
    outbox, _ = define_messaging_tables(metadata)
    database = Database(f"sqlite:///{tmp_path / f'{service}.db'}")
    metadata.create_all(database.engine)
    with database.transaction() as session:
        session.execute(sa.insert(outbox), [
            outbox_row(Envelope.new(type="thing_happened", payload={"n": n}, producer=service, operator="t",
                                    aggregate=f"thing-{n}", sequence=1), utcnow())
            for n in range(total)])
        session.commit()
    return database, outbox


RELAY_SETTINGS = {"relay_batch_size": 10, "relay_poll_seconds": 0.2, "relay_linger_ms": 0,
                  "relay_max_backoff_seconds": 1, "outbox_retention_hours": 1}


class TestRelayThroughSlowConfirms:
    def test_each_event_is_published_exactly_once_when_confirms_take_1_5_s(self, vhost, tmp_path):
        service = f"slowrelay{uuid.uuid4().hex[:6]}"
        declare_queue(vhost.amqp_uri, "tap", exchange=f"{service}.events")
        total = 30
        database, outbox = outbox_with(tmp_path, service, total)
        settings = RELAY_SETTINGS
        metrics = metrics_for(service)
        with DelayingProxy(CONFIRM_DELAY) as proxy:
            relay = OutboxRelay(service=service, database=database, outbox=outbox,
                                amqp_uri=proxy.amqp_uri(vhost.name), metrics=metrics, settings=settings)
            stop = threading.Event()
            runner = threading.Thread(target=relay.run, args=(stop.is_set,), daemon=True)
            started = time.monotonic()
            runner.start()
            try:
                eventually(lambda: relay.backlog()[0] == 0, timeout=45, interval=0.2, message="outbox drained")
                elapsed = time.monotonic() - started
            finally:
                stop.set()
                runner.join(30)
        assert not runner.is_alive()
        # three rounds of ten, each confirmed together after the 1.5 s delay (plus the slowed handshake)
        assert eventually(lambda: tools.queue_depth(vhost.amqp_uri, "tap") == total, timeout=10,
                          message="30 messages in the bound queue")
        assert tools.queue_depth(vhost.amqp_uri, "tap") == total  # exactly once each: no republish storm
        assert metrics.registry.get_sample_value("partnership_outbox_relay_errors_total", {"service": service}) == 0
        assert metrics.registry.get_sample_value("partnership_events_published_total",
                                                 {"service": service, "type": "thing_happened"}) == total
        with database.reader() as session:
            assert session.execute(sa.select(sa.func.count()).select_from(outbox)
                                   .where(outbox.c.sent_at.is_(None))).scalar_one() == 0
            assert session.execute(sa.select(sa.func.max(outbox.c.attempts))).scalar_one() == 1
        database.dispose()
        print(f"\n30 events through 1.5 s confirms: drained in {elapsed:.1f} s")

    def test_confirms_that_never_come_fail_the_round_at_the_timeout_and_the_relay_carries_on(self, vhost,
                                                                                             tmp_path):
        service = f"stuckrelay{uuid.uuid4().hex[:6]}"
        declare_queue(vhost.amqp_uri, "tap", exchange=f"{service}.events")
        total = 10
        database, outbox = outbox_with(tmp_path, service, total)
        metrics = metrics_for(service)
        with DelayingProxy(0.0) as proxy:
            proxy_uri = proxy.amqp_uri(vhost.name)
            relay = OutboxRelay(service=service, database=database, outbox=outbox, amqp_uri=proxy_uri,
                                metrics=metrics, settings=RELAY_SETTINGS)
            relay._connect()  # on the proxy's first connection, which then stops answering
            proxy.stall(0)
            stop = threading.Event()
            runner = threading.Thread(target=relay.run, args=(stop.is_set,), daemon=True)
            started = time.monotonic()
            runner.start()
            try:
                eventually(lambda: relay.backlog()[0] == 0, timeout=40, interval=0.2,
                           message="outbox drained on a new connection")
                elapsed = time.monotonic() - started
            finally:
                stop.set()
                runner.join(30)
                proxy.resume(0)
        assert not runner.is_alive(), "the relay hung on a broker that stopped answering"
        assert metrics.registry.get_sample_value("partnership_outbox_relay_errors_total", {"service": service}) == 1
        assert 9.5 <= elapsed < 25  # one round given up at the 10 s confirm timeout, then published again
        # the first round's messages were routed, only their confirms were lost: each event is
        # there twice (a duplicate the consumers' inboxes absorb), none is missing
        ids = [json.loads(body)["event_id"] for _, body in tools.queue_messages(vhost.amqp_uri, "tap")]
        assert len(ids) == 2 * total and len(set(ids)) == total
        database.dispose()


class TestRepublisher:
    def test_slow_confirms_publish_each_copy_once_and_concurrently(self, vhost):
        declare_queue(vhost.amqp_uri, "copies")
        with DelayingProxy(CONFIRM_DELAY) as proxy:
            republisher = Republisher(proxy.amqp_uri(vhost.name))
            errors: list[BaseException] = []

            def publish(index: int) -> None:
                try:
                    republisher.publish(b"{}", exchange="", routing_key="copies", properties=copy_properties(index),
                                        headers={"x-attempt": 2})
                except BaseException as exc:  # noqa: BLE001 - asserted below
                    errors.append(exc)

            threads = [threading.Thread(target=publish, args=(i,)) for i in range(8)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(60)
            republisher.close()
        assert not errors, errors
        assert not any(thread.is_alive() for thread in threads)
        assert tools.queue_depth(vhost.amqp_uri, "copies") == 8

    def test_a_confirm_that_never_comes_times_out_and_blocks_no_other_copy(self, vhost):
        declare_queue(vhost.amqp_uri, "copies")
        with DelayingProxy(0.0) as proxy:
            republisher = Republisher(proxy.amqp_uri(vhost.name))
            republisher.publish(b"{}", exchange="", routing_key="copies", properties=copy_properties(0), headers={})
            proxy.stall(0)  # the broker's answers on that (now idle) connection stop arriving
            sent_before = proxy.links[0].bytes_up
            stuck: dict = {}

            def publish_stuck() -> None:
                started = time.monotonic()
                try:
                    republisher.publish(b"{}", exchange="", routing_key="copies", properties=copy_properties(1),
                                        headers={})
                    stuck["outcome"] = "confirmed"
                except Exception as exc:  # noqa: BLE001 - asserted below
                    stuck["outcome"] = exc
                stuck["seconds"] = time.monotonic() - started

            waiting = threading.Thread(target=publish_stuck, daemon=True)
            waiting.start()
            eventually(lambda: proxy.links[0].bytes_up > sent_before, timeout=10, interval=0.05,
                       message="the second copy sent on the stalled connection")
            other_started = time.monotonic()
            done = threading.Event()
            other = threading.Thread(target=lambda: (republisher.publish(
                b"{}", exchange="", routing_key="copies", properties=copy_properties(2), headers={}), done.set()),
                daemon=True)
            other.start()
            # another copy goes out on another connection while the first still waits for its confirm
            assert done.wait(8), "a copy waited behind another copy's missing confirm"
            other_seconds = time.monotonic() - other_started
            assert waiting.is_alive()
            waiting.join(20)  # the stalled copy gives up at its confirm timeout (10 s)
            assert not waiting.is_alive(), "the republisher waited for a confirm with no timeout"
            proxy.resume(0)
            republisher.close()
        assert isinstance(stuck["outcome"], Exception), stuck
        assert "did not confirm" in str(stuck["outcome"])
        assert 9.5 <= stuck["seconds"] <= 15
        assert other_seconds < 8
        # the stalled copy did reach its queue (only its confirm was held back): 3 in all, the
        # caller kept the original, so at worst a harmless duplicate, never a loss
        assert tools.queue_depth(vhost.amqp_uri, "copies") == 3

    def test_a_copy_with_no_queue_to_go_to_is_a_failure_not_a_silent_drop(self, vhost):
        republisher = Republisher(vhost.amqp_uri)
        try:
            with pytest.raises(Exception) as failed:
                republisher.publish(b"{}", exchange="", routing_key="no-such-queue.dead",
                                    properties=copy_properties(0), headers={})
            assert "unroutable" in str(failed.value) or "NO_ROUTE" in str(failed.value)
            # the connection is still usable for the next copy
            declare_queue(vhost.amqp_uri, "copies")
            republisher.publish(b"{}", exchange="", routing_key="copies", properties=copy_properties(1), headers={})
        finally:
            republisher.close()
        assert tools.queue_depth(vhost.amqp_uri, "copies") == 1
