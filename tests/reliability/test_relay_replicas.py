"""Two outbox relays over one PostgreSQL outbox (two replicas of a service), on the real broker.

- Every row is published exactly once and each aggregate's events arrive in sequence, even when
  the second relay runs a round while the first is between publishing a batch and recording its
  confirms (before the fix both read the same unsent rows and published them twice).
- When the relay in the middle of a round dies (a real process, SIGKILLed), the other one takes
  over: PostgreSQL releases the dead relay's lock with its connection.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

import pytest
import sqlalchemy as sa
from kombu import Connection
from marshmallow import RAISE, Schema, fields

from shared.db import Database, scratch_database
from shared.envelope import PayloadSchemas
from shared.messaging_tables import define_messaging_tables
from shared.metrics import metrics_for
from shared.relay import OutboxRelay, event_exchange
from shared.unit_of_work import Origin, Producer, UnitOfWork

SERVICE = "relaytest"
metadata = sa.MetaData()
outbox, inbox = define_messaging_tables(metadata)
SETTINGS = {"relay_batch_size": 40, "relay_poll_seconds": 0.05, "relay_linger_ms": 0,
            "relay_max_backoff_seconds": 1.0, "outbox_retention_hours": 1}
AGGREGATES = [f"school:{n}" for n in range(6)]
EVENTS = 180


class NotedV1(Schema):
    class Meta:
        unknown = RAISE

    n = fields.Integer(required=True, strict=True)


PRODUCER = Producer(service=SERVICE, operator="Test Trust", schemas=PayloadSchemas({("noted", 1): NotedV1()}))


@pytest.fixture
def database(tmp_path):
    with scratch_database("postgresql", tmp_path, "relays") as db:
        metadata.create_all(db.engine)
        for n in range(EVENTS):  # interleaved aggregates, one unit of work each, as the services write them
            with UnitOfWork(db, PRODUCER, outbox, inbox, Origin(correlation_id="c")) as work:
                work.publish("noted", {"n": n}, aggregate=AGGREGATES[n % len(AGGREGATES)])
                work.commit()
        yield db


@pytest.fixture
def archive(amqp_uri):
    """A queue bound to the test service's one event type (`noted.v1`); yields a function that drains it."""
    queue = "relaytest.archive"
    with Connection(amqp_uri) as conn:
        channel = conn.channel()
        channel.exchange_declare(event_exchange(SERVICE), "topic", durable=True)
        channel.queue_declare(queue, durable=True)
        channel.queue_bind(queue, event_exchange(SERVICE), "noted.v1")  # the one type these relays publish

    def drain(expected: int, timeout: float = 30.0) -> list[dict]:
        got: list[dict] = []
        deadline = time.monotonic() + timeout
        with Connection(amqp_uri) as conn:
            channel = conn.channel()
            while time.monotonic() < deadline:
                message = channel.basic_get(queue, no_ack=True)
                if message is None:
                    if len(got) >= expected:
                        break
                    time.sleep(0.05)
                    continue
                got.append(json.loads(message.body))
        return got

    return drain


def relay(database: Database, amqp_uri: str, cls=OutboxRelay) -> OutboxRelay:
    return cls(service=SERVICE, database=database, outbox=outbox, amqp_uri=amqp_uri, metrics=metrics_for(SERVICE),
               settings=SETTINGS)


def unsent(database: Database) -> int:
    with database.reader() as session:
        return session.execute(sa.select(sa.func.count()).where(outbox.c.sent_at.is_(None))).scalar_one()


def assert_in_sequence_per_aggregate(events: list[dict]) -> None:
    sequences = defaultdict(list)
    for event in events:
        sequences[event["aggregate"]].append(event["sequence"])
    for aggregate, numbers in sequences.items():
        assert numbers == list(range(1, len(numbers) + 1)), (aggregate, numbers)


class TestTwoRelaysShareOneOutbox:
    def test_every_row_is_published_once_and_in_order_per_aggregate(self, database, amqp_uri, archive):
        first_mid_round = threading.Event()
        second_tried = threading.Event()

        class PausedAfterPublishing(OutboxRelay):
            """Stops once, between publishing its first batch and awaiting its confirms, until the other
            relay has run a round: the window in which, before the fix, both read the same rows."""
            paused = False

            def _await_confirms(self, first, last):
                if not self.paused:
                    self.paused = True
                    first_mid_round.set()
                    assert second_tried.wait(30), "the second relay never ran its round"
                return super()._await_confirms(first, last)

        other_database = Database(database.url.render_as_string(hide_password=False))
        first, second = relay(database, amqp_uri, PausedAfterPublishing), relay(other_database, amqp_uri)
        try:
            outcome: dict = {}
            round_one = threading.Thread(target=lambda: outcome.setdefault("first", first.publish_due()))
            round_one.start()
            assert first_mid_round.wait(30)
            outcome["second"] = second.publish_due()
            second_tried.set()
            round_one.join(30)
            assert outcome == {"first": SETTINGS["relay_batch_size"], "second": 0}
            assert second.contended

            # Both relays then run side by side until the outbox is empty.
            stop = threading.Event()
            threads = [threading.Thread(target=r.run, args=(stop.is_set,)) for r in (first, second)]
            for thread in threads:
                thread.start()
            deadline = time.monotonic() + 60
            while unsent(database) and time.monotonic() < deadline:
                time.sleep(0.05)
            stop.set()
            for thread in threads:
                thread.join(30)
            assert unsent(database) == 0
        finally:
            first.close()
            second.close()
            other_database.dispose()

        events = archive(EVENTS)
        ids = [e["event_id"] for e in events]
        assert len(ids) == EVENTS and len(set(ids)) == EVENTS, f"{len(ids)} published, {len(set(ids))} distinct"
        assert_in_sequence_per_aggregate(events)

    def test_when_the_relay_in_a_round_dies_the_other_takes_over(self, database, amqp_uri, archive, tmp_path):
        script = tmp_path / "dying_relay.py"
        script.write_text(DYING_RELAY)
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
        url = database.url.render_as_string(hide_password=False)
        process = subprocess.Popen([sys.executable, str(script), url, amqp_uri], stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True, env=env)
        survivor = relay(Database(url), amqp_uri)
        try:
            line = process.stdout.readline()  # bounded: the script gives up after 120 s
            assert line.strip() == "mid-round", line + (process.stdout.read() if process.poll() is not None else "")
            assert survivor.publish_due() == 0 and survivor.contended, "a second relay published during the round"
            process.send_signal(signal.SIGKILL)
            process.wait(10)
            deadline = time.monotonic() + 60
            while unsent(database) and time.monotonic() < deadline:
                if survivor.publish_due() == 0:
                    time.sleep(0.05)
            assert unsent(database) == 0, "the surviving relay did not take over"
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(10)
            survivor.close()
            survivor.database.dispose()

        events = archive(EVENTS + SETTINGS["relay_batch_size"])
        # The dead relay's batch was published but never recorded, so it goes out again: consumers'
        # inboxes absorb that. Every event arrives, and in sequence by first arrival.
        first_arrivals = {}
        for event in events:
            first_arrivals.setdefault(event["event_id"], event)
        assert len(first_arrivals) == EVENTS
        assert_in_sequence_per_aggregate(list(first_arrivals.values()))


DYING_RELAY = '''
import sys, time
import sqlalchemy as sa
from shared.db import Database
from shared.messaging_tables import define_messaging_tables
from shared.metrics import metrics_for
from shared.relay import OutboxRelay

outbox, _ = define_messaging_tables(sa.MetaData())


class Hanging(OutboxRelay):
    def _await_confirms(self, first, last):
        print("mid-round", flush=True)
        time.sleep(120)  # until SIGKILLed


settings = {"relay_batch_size": 40, "relay_poll_seconds": 0.05, "relay_linger_ms": 0,
            "relay_max_backoff_seconds": 1.0, "outbox_retention_hours": 1}
Hanging(service="relaytest", database=Database(sys.argv[1]), outbox=outbox, amqp_uri=sys.argv[2],
        metrics=metrics_for("relaytest"), settings=settings).publish_due()
print("round ended without being killed", flush=True)
'''
