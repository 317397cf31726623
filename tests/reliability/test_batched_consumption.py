"""Batched consumption (`shared.batch_consumer.consumes_batch`) on the real broker and real databases.

A real nameko service (`tests/reliability/batch_sink`, run by `nameko run` in its own process,
like the partnership's services) consumes a quorum queue provisioned as a deployment's is. The
tests fill the queue first, so the broker hands the handler a full batch, then count exactly
what was applied, acked, retried and dead-lettered. SQLite and PostgreSQL each."""
from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pika
import pytest
import sqlalchemy as sa
import yaml

from shared.envelope import amqp_properties
from shared.topology import dead_letter_queue_name, handler_queue_name
from tests.conftest import eventually
from tests.reliability import tools

ROOT = Path(__file__).resolve().parents[2]
SERVICE, EVENT_TYPE, METHOD = "batchsink", "thing_noted", "on_noted"
BATCH = 10
RETRY_DELAYS_MS = [100, 200]


# -- the broker side ------------------------------------------------------------------------------
def provision(vhost, source: str) -> str:
    """The sink's queue, policies, retry and dead-letter path and the source's exchange, as
    `partnership-ops topology apply` provisions them; returns the handler's queue."""
    from partnership_ops import topology

    queue = handler_queue_name(source, EVENT_TYPE, SERVICE, METHOD)
    sink = topology.ServiceTopology(SERVICE, (topology.Handler(source, EVENT_TYPE, METHOD, queue),))
    document = topology.definitions([sink, topology.ServiceTopology(source, ())], delivery_limit=20,
                                    retry_delays_ms=RETRY_DELAYS_MS)
    document["permissions"] = []  # the tests run as the broker's administrator
    management = topology.Management.for_amqp_uri(vhost.amqp_uri, url=vhost.management_url, timeout=60)
    topology.apply(management, document, vhost=vhost.name)
    return queue


def event(source: str, aggregate: str, sequence: int, value: str, *, poison: bool = False,
          event_id: str | None = None) -> dict:
    event_id = event_id or str(uuid.uuid4())
    return {"event_id": event_id, "type": EVENT_TYPE, "version": 1,
            "occurred_at": dt.datetime.now(dt.timezone.utc).isoformat().replace("+00:00", "Z"),
            "producer": source, "operator": "test", "correlation_id": event_id, "causation_id": None,
            "payload": {"value": value, "poison": poison}, "aggregate": aggregate, "sequence": sequence}


def publish(amqp_uri: str, queue: str, events: list[dict]) -> None:
    """Straight into the handler's queue (default exchange), persistent and confirmed, in this order."""
    connection = pika.BlockingConnection(pika.URLParameters(amqp_uri))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        for body in events:
            props = amqp_properties(body)
            headers = props.pop("application_headers", None)
            channel.basic_publish("", queue, json.dumps(body).encode(),
                                  pika.BasicProperties(headers=headers, **props), mandatory=True)
    finally:
        connection.close()


# -- the service ---------------------------------------------------------------------------------
class Sink:
    """`python -m nameko run tests.reliability.batch_sink.service:BatchSink` in its own process."""

    def __init__(self, tmp_path: Path, amqp_uri: str, database_url: str, source: str, *, max_workers: int = 20,
                 batch: int = BATCH, linger_ms: float = 2000, delay_before_commit: float = 0.0):
        self.tmp_path = tmp_path
        self.database_url = database_url
        self.marks = tmp_path / f"marks-{uuid.uuid4().hex[:6]}"
        self.marks.mkdir()
        config = {
            "AMQP_URI": amqp_uri, "DATABASE_URL": database_url, "max_workers": max_workers, "HEARTBEAT": 10,
            "OPERATOR": {"name": "test"},
            "EVENTS": {"batch_max_events": batch, "batch_linger_ms": linger_ms, "retry_delays_ms": RETRY_DELAYS_MS,
                       "delivery_limit": 20, "transient_backoff_initial_seconds": 0.2,
                       "transient_backoff_max_seconds": 1.0},
            "FAULTS": {"delay_before_commit_seconds": delay_before_commit},
            "LOGGING": {"version": 1, "disable_existing_loggers": False,
                        "handlers": {"console": {"class": "logging.StreamHandler"}},
                        "root": {"level": "INFO", "handlers": ["console"]}},
        }
        self.config_path = tmp_path / f"sink-{uuid.uuid4().hex[:6]}.yml"
        self.config_path.write_text(yaml.safe_dump(config))
        self.log_path = tmp_path / f"{self.config_path.stem}.log"
        self.source = source
        self.proc = None

    def start(self) -> "Sink":
        env = {**os.environ, "BATCH_SOURCE": self.source, "BATCH_MARKS": str(self.marks),
               "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1",
               "PYTHONWARNINGS": "ignore::Warning:nameko.cli.commands"}
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "nameko", "run", "--config", str(self.config_path),
                                      "tests.reliability.batch_sink.service:BatchSink"], cwd=ROOT, env=env,
                                     stdout=self.log, stderr=self.log, start_new_session=True)
        return self

    def wait_consuming(self, amqp_uri: str, queue: str) -> "Sink":
        eventually(lambda: self.proc.poll() is None and tools.queue_consumers(amqp_uri, queue) >= 1, timeout=60,
                   message=f"the sink consuming {queue} (log: {self.log_path})")
        return self

    def batches_at_commit(self) -> list[int]:
        """Sizes of the batches whose worker reached its commit (the service marks each)."""
        return [int(p.read_text()) for p in self.marks.iterdir()]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture
def setup(vhost, databases, tmp_path):
    source = f"batchsrc{uuid.uuid4().hex[:6]}"
    queue = provision(vhost, source)
    database_url = databases.url(SERVICE)
    sinks: list[Sink] = []

    def sink(**kwargs) -> Sink:
        made = Sink(tmp_path, vhost.amqp_uri, database_url, source, **kwargs)
        sinks.append(made)
        return made

    yield {"source": source, "queue": queue, "db": database_url, "sink": sink, "amqp": vhost.amqp_uri}
    for made in sinks:
        if made.proc is not None:
            made.stop()
            print(f"==== {made.log_path}\n{made.log_text()[-4000:]}")


def rows(database_url: str, query: str) -> list[tuple]:
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as connection:
            return [tuple(r) for r in connection.execute(sa.text(query)).all()]
    finally:
        engine.dispose()


def effects(database_url: str) -> dict[str, str]:
    """event id -> the worker (batch) that applied it."""
    return dict(rows(database_url, "SELECT event_id, worker FROM batch_effects"))


# -- the tests -----------------------------------------------------------------------------------
class TestBatchedConsumption:
    def test_a_full_batch_is_applied_in_one_transaction_with_one_inbox_row_each_and_acked_after_commit(
            self, setup):
        events = [event(setup["source"], f"thing:{i}", 1, f"v{i}") for i in range(BATCH)]
        publish(setup["amqp"], setup["queue"], events)
        # The batch's transaction is held open before its commit: nothing is visible, nothing acked.
        sink = setup["sink"](delay_before_commit=5.0).start().wait_consuming(setup["amqp"], setup["queue"])
        eventually(lambda: sink.batches_at_commit() == [BATCH], timeout=30, interval=0.05,
                   message="the batch at its commit")
        assert tools.count(setup["db"], "batch_effects") == 0
        assert tools.count(setup["db"], "inbox") == 0
        assert tools.queue_depth(setup["amqp"], setup["queue"]) == 0  # all delivered to the batch
        eventually(lambda: tools.count(setup["db"], "batch_effects") == BATCH, timeout=60, message="the batch applied")
        applied = effects(setup["db"])
        assert set(applied) == {e["event_id"] for e in events}
        assert len(set(applied.values())) == 1, "one worker, one transaction, applied the whole batch"
        assert sink.batches_at_commit() == [BATCH]
        assert {r[0] for r in rows(setup["db"], "SELECT event_id FROM inbox")} == set(applied)
        # Acked after the commit: a stopped consumer's unacked messages would be back in the queue.
        sink.stop()
        assert tools.queue_depth(setup["amqp"], setup["queue"]) == 0
        assert tools.count(setup["db"], "inbox") == BATCH

    def test_a_poison_message_goes_alone_to_retry_and_dead_letter_while_the_others_are_applied_once(self, setup):
        events = [event(setup["source"], f"thing:{i}", 1, f"v{i}", poison=(i == 3)) for i in range(BATCH)]
        poison = events[3]["event_id"]
        publish(setup["amqp"], setup["queue"], events)
        sink = setup["sink"]().start().wait_consuming(setup["amqp"], setup["queue"])
        dead_letters = dead_letter_queue_name(setup["queue"])
        eventually(lambda: tools.queue_depth(setup["amqp"], dead_letters) == 1, timeout=60,
                   message="the poison message dead-lettered")
        eventually(lambda: tools.count(setup["db"], "batch_effects") == BATCH - 1, timeout=30,
                   message="the others applied")
        sink.stop()
        applied = effects(setup["db"])
        assert set(applied) == {e["event_id"] for e in events} - {poison}
        assert tools.count(setup["db"], "batch_effects") == BATCH - 1  # each once
        assert tools.count(setup["db"], "inbox") == BATCH - 1  # the poison left no inbox row
        assert tools.queue_depth(setup["amqp"], setup["queue"]) == 0
        (headers, body), = tools.queue_messages(setup["amqp"], dead_letters)
        assert json.loads(body)["event_id"] == poison
        assert headers["x-dead-letter-reason"] == "exhausted"
        assert headers["x-attempts"] == len(RETRY_DELAYS_MS) + 1  # its own failures only
        assert "PoisonEvent" in headers["x-error"]
        # The whole batch was tried once, then each event alone: the first batch never committed.
        assert BATCH not in sink.batches_at_commit()

    def test_a_redelivered_batch_applies_nothing_twice_and_its_new_events_once(self, setup):
        first = [event(setup["source"], f"thing:{i}", 1, f"v{i}") for i in range(6)]
        publish(setup["amqp"], setup["queue"], first)
        sink = setup["sink"](linger_ms=300).start().wait_consuming(setup["amqp"], setup["queue"])
        eventually(lambda: tools.count(setup["db"], "batch_effects") == 6, timeout=60, message="first batch applied")
        sink.stop()
        # The same six again (a redelivery, or the relay publishing twice) with three new ones, in one
        # batch; one of the new ones twice in that batch.
        new = [event(setup["source"], f"thing:{i}", 1, f"v{i}") for i in range(6, 9)]
        again = first + new + [dict(new[0])]
        assert len(again) == BATCH
        publish(setup["amqp"], setup["queue"], again)
        sink = setup["sink"]().start().wait_consuming(setup["amqp"], setup["queue"])
        eventually(lambda: tools.count(setup["db"], "batch_effects") == 9, timeout=60, message="new events applied")
        eventually(lambda: tools.queue_depth(setup["amqp"], setup["queue"]) == 0, timeout=30,
                   message="the redelivered batch acked")
        sink.stop()
        applied = effects(setup["db"])
        assert set(applied) == {e["event_id"] for e in first + new}
        assert tools.count(setup["db"], "inbox") == 9
        assert len({applied[e["event_id"]] for e in new}) == 1  # the new ones in one batch
        assert sorted(sink.batches_at_commit()) == [BATCH]  # the batch did not fail: it committed, whole
        assert tools.queue_depth(setup["amqp"], setup["queue"]) == 0
        assert tools.queue_depth(setup["amqp"], dead_letter_queue_name(setup["queue"])) == 0

    def test_a_kill_mid_batch_before_commit_leaves_every_message_to_be_redelivered_and_applied_once(self, setup):
        events = [event(setup["source"], f"thing:{i % 3}", i // 3 + 1, f"v{i}") for i in range(BATCH)]
        publish(setup["amqp"], setup["queue"], events)
        sink = setup["sink"](delay_before_commit=60.0).start().wait_consuming(setup["amqp"], setup["queue"])
        eventually(lambda: sink.batches_at_commit() == [BATCH], timeout=60, message="the batch at its commit")
        assert tools.queue_depth(setup["amqp"], setup["queue"]) == 0  # all delivered, none acked yet
        sink.kill()
        assert tools.count(setup["db"], "batch_effects") == 0
        assert tools.count(setup["db"], "inbox") == 0
        eventually(lambda: tools.queue_depth(setup["amqp"], setup["queue"]) == BATCH, timeout=30,
                   message="every message of the batch back in the queue")
        sink = setup["sink"]().start().wait_consuming(setup["amqp"], setup["queue"])
        eventually(lambda: tools.count(setup["db"], "batch_effects") == BATCH, timeout=60, message="applied")
        eventually(lambda: tools.queue_depth(setup["amqp"], setup["queue"]) == 0, timeout=30, message="acked")
        sink.stop()
        assert set(effects(setup["db"])) == {e["event_id"] for e in events}
        assert tools.count(setup["db"], "batch_effects") == BATCH
        assert tools.count(setup["db"], "inbox") == BATCH
        assert tools.queue_depth(setup["amqp"], setup["queue"]) == 0

    def test_order_tolerance_holds_within_a_batch(self, setup):
        # Delivered out of order, all in one batch: thing:a's 3 before its 1 and 2; thing:b's 2 before its 1.
        plan = [("thing:a", 2), ("thing:b", 2), ("thing:a", 3), ("thing:a", 1), ("thing:b", 1),
                ("thing:c", 1), ("thing:c", 2), ("thing:c", 4), ("thing:c", 3), ("thing:a", 4)]
        events = [event(setup["source"], aggregate, sequence, f"{aggregate}@{sequence}")
                  for aggregate, sequence in plan]
        publish(setup["amqp"], setup["queue"], events)
        sink = setup["sink"]().start().wait_consuming(setup["amqp"], setup["queue"])
        eventually(lambda: tools.count(setup["db"], "batch_effects") == BATCH, timeout=60, message="applied")
        sink.stop()
        assert len(set(effects(setup["db"]).values())) == 1, "all in one batch"
        assert dict((a, (s, v)) for a, s, v in rows(setup["db"], "SELECT aggregate, sequence, value FROM batch_latest")) == {
            "thing:a": (4, "thing:a@4"), "thing:b": (2, "thing:b@2"), "thing:c": (4, "thing:c@4")}

    def test_a_batch_larger_than_the_prefetch_is_refused_at_start_saying_so(self, setup):
        sink = setup["sink"](max_workers=5, batch=BATCH).start()
        assert sink.proc.wait(60) != 0
        assert "needs a prefetch of at least 10, but max_workers (the prefetch) is 5" in sink.log_text()
