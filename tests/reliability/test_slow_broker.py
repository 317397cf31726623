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


def declare_queue(amqp_uri: str, queue: str, *, exchange: str | None = None, routing_key: str = "#") -> None:
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
        assert metrics.registry.get_sample_value(f"{service}_outbox_relay_errors_total") == 0
        assert metrics.registry.get_sample_value(f"{service}_events_published_total",
                                                 {"type": "thing_happened"}) == total
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
        assert metrics.registry.get_sample_value(f"{service}_outbox_relay_errors_total") == 1
        assert 9.5 <= elapsed < 25  # one round given up at the 10 s confirm timeout, then published again
        # the first round's messages were routed, only their confirms were lost: each event is
        # there twice (a duplicate the consumers' inboxes absorb), none is missing
        ids = [json.loads(body)["event_id"] for _, body in tools.queue_messages(vhost.amqp_uri, "tap")]
        assert len(ids) == 2 * total and len(set(ids)) == total
        database.dispose()
