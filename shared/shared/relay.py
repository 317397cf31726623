"""Outbox relay: publishes committed events to the service's exchange, with confirms.

Guarantees:
- A row is marked sent only after the broker confirmed it (publisher confirms,
  persistent messages). A row the broker returns as unroutable (`mandatory`)
  or nacks stays in the outbox and is retried with backoff. With the provisioned
  topology every event is routable (the producer's archive takes all), so a
  return means a broken topology: logged as an error, counted in
  `<service>_events_unroutable_total`, alerted on.
- Rows leave in outbox order (commit order), so the events of one aggregate are
  published in the order they happened. A returned row does not hold back the
  rows behind it: "unroutable" means no queue is bound for its type, so no
  consumer can observe its position relative to them.
- Broker down: nothing is marked, the relay retries with exponential backoff
  (capped) and reconnects by itself; the rows wait. With a cluster (`AMQP_URI`
  listing several nodes, `shared.broker_addresses`) it reconnects to the first
  node that answers, so one node down costs one failed round. A round the broker
  nacked also ends its connection: the next opens a new one. A confirm lost with the
  connection leaves its row unsent, so it may be published twice; consumers'
  inboxes make that harmless.
- One round publishes up to `relay_batch_size` rows and waits for their
  confirms together, which is what makes the outbox path fast. Woken by a
  commit, the relay first lingers `relay_linger_ms` (5 ms by default), so a
  round carries what several commits added instead of one row: that bounds
  the added latency and cuts the relay's reads, publishes' round trips and
  `sent_at` updates per event several-fold under load.

Replicas (several processes of one service on one PostgreSQL database):
- One relay publishes at a time. A round is one database transaction that
  first takes `pg_try_advisory_xact_lock` on `outbox-relay:<service>`, then
  reads the due rows, publishes them, waits for their confirms and records the
  outcomes, and commits, which releases the lock. A relay that finds the lock
  taken publishes nothing that round and tries again shortly. So no row is
  published by two relays, rounds happen one after another in id order (one
  aggregate's events keep their sequence across replicas), and the outcome
  updates of two relays never interleave (no deadlock).
- Fail-over is PostgreSQL's: the lock belongs to the round's transaction, so
  a relay whose process dies, or whose connection drops, loses it at once and
  the next relay to try takes over; what the dead relay had published but
  not yet recorded is published again (consumers' inboxes absorb it).
- Why one active relay rather than leasing rows with `FOR UPDATE SKIP
  LOCKED`: leased rows let two relays publish at once, but relay B would then
  take the rows behind relay A's lease, including later events of the same
  aggregates, and could publish them first; keeping per-aggregate order would
  need leases per aggregate. One relay per round keeps order by construction,
  and a single relay is not the bottleneck (it batches and pipelines its
  confirms; the consumers are slower).
- The lock is taken per round, not held by an elected leader between rounds:
  whichever replica committed the events is woken by its own commit and
  publishes them at once, rather than waiting for a leader's next poll.
- SQLite serves one process only (see the README's "Scaling out"), so there
  the round reads, publishes and records in separate short transactions, as
  a long one would hold SQLite's single write lock while the broker confirms.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import socket
import time
from typing import Callable

import amqp
from kombu import Connection
from sqlalchemy import delete, func, select, text, update

from shared.broker_addresses import connect_any
from shared.db import Database
from shared.envelope import amqp_properties, routing_key
from shared.messaging_tables import utcnow
from shared.metrics import ServiceMetrics

log = logging.getLogger(__name__)

CONFIRM_TIMEOUT_SECONDS = 10.0
# How soon a relay that found another replica's round in progress tries again.
CONTENDED_RETRY_SECONDS = 0.05

_TRY_ROUND_LOCK = text("SELECT pg_try_advisory_xact_lock(hashtextextended(:key, 0))")


def event_exchange(service: str) -> str:
    """nameko's own naming: a topic exchange `<service>.events`, routing key `<type>.v<version>`."""
    return f"{service}.events"


class RelayRoundFailed(Exception):
    pass


class OutboxRelay:
    """Moves rows from one service's outbox to its exchange; `run()` loops until told to stop."""

    def __init__(self, *, service: str, database: Database, outbox, amqp_uri: str, metrics: ServiceMetrics,
                 settings: dict, signal=None, heartbeat: int = 20, ssl: dict | None = None):
        self.service = service
        self.exchange = event_exchange(service)
        self.database = database
        self.outbox = outbox
        self.amqp_uri = amqp_uri
        self.ssl = ssl  # TLS options for an amqps:// broker (shared.tls); None for amqp://
        self.metrics = metrics
        self.batch_size = settings["relay_batch_size"]
        self.poll_seconds = settings["relay_poll_seconds"]
        self.linger_seconds = settings["relay_linger_ms"] / 1000.0
        self.max_backoff = settings["relay_max_backoff_seconds"]
        self.retention = dt.timedelta(hours=settings["outbox_retention_hours"])
        self.signal = signal
        self.heartbeat = heartbeat
        self._connection: Connection | None = None
        self._channel = None
        self._next_tag = 1
        self._acked: set[int] = set()
        self._nacked: set[int] = set()
        self._outstanding: set[int] = set()
        self._returned: dict[str, str] = {}
        self._last_prune = 0.0
        self.stopping = False
        # True when the last `publish_due` found another relay's round in progress (replicas, PostgreSQL).
        self.contended = False
        self._shared = database is not None and database.url.get_backend_name() == "postgresql"

    # -- broker -----------------------------------------------------------------------------
    def _connect(self) -> None:
        # `amqp_uri` may list a cluster's nodes (`;`): the first that answers takes the connection.
        connection = Connection(self.amqp_uri, heartbeat=self.heartbeat, connect_timeout=5, ssl=self.ssl or False)
        connect_any(connection)
        channel = connection.connection.channel()
        # The exchange is provisioned (partnership-ops topology apply); declaring it would need configure permission.
        channel.confirm_select()
        channel.events["basic_ack"].add(self._on_ack)
        channel.events["basic_nack"].add(self._on_nack)
        channel.events["basic_return"].add(self._on_return)
        self._connection, self._channel = connection, channel
        self._next_tag = 1
        self._acked.clear()
        self._nacked.clear()
        self._outstanding.clear()
        self._returned.clear()

    def _disconnect(self, *, polite: bool = True) -> None:
        """Drop the connection. After a failure it is dropped without a word (`polite=False`): a
        polite close waits, with no timeout, for the Close-Ok of a broker that may have stopped
        answering, which would stall the relay for good."""
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None:
            try:
                connection.release() if polite else connection.collect()
            except Exception:  # noqa: BLE001 - the connection is being abandoned anyway
                pass

    def _on_ack(self, delivery_tag: int, multiple: bool) -> None:
        self._settle(self._acked, delivery_tag, multiple)

    def _on_nack(self, delivery_tag: int, multiple: bool) -> None:
        self._settle(self._nacked, delivery_tag, multiple)

    def _settle(self, into: set[int], delivery_tag: int, multiple: bool) -> None:
        # Only tags still awaiting a confirm: scanning from tag 1 would re-add the
        # tags of earlier batches and grow these sets for the connection's lifetime.
        tags = [t for t in self._outstanding if t <= delivery_tag] if multiple else [delivery_tag]
        for tag in tags:
            self._outstanding.discard(tag)
            into.add(tag)

    def _on_return(self, exc, exchange, routing_key, message) -> None:
        # Every exchange routes every event to its archive, so a return means a broken topology
        # (the archive or the exchange's bindings gone): kept and retried, and loud.
        message_id = message.properties.get("message_id")
        self._returned[message_id] = f"unroutable: {getattr(exc, 'reply_text', exc)}"
        log.error("%s returned %s (%s) as unroutable: is the topology applied? "
                  "(partnership-ops topology check)", exchange, routing_key, message_id)

    # -- one round ---------------------------------------------------------------------------
    def _due_rows(self, session):
        o = self.outbox
        return session.execute(
            select(o.c.id, o.c.event_id, o.c.event_type, o.c.body, o.c.attempts)
            .where(o.c.sent_at.is_(None), o.c.next_attempt_at <= utcnow())
            .order_by(o.c.id)
            .limit(self.batch_size)
        ).all()

    def publish_due(self) -> int:
        """Publish one batch of due rows; returns how many the broker confirmed. On PostgreSQL the whole
        round holds the relay's advisory lock: if another replica's relay holds it, nothing is
        published and `contended` is set."""
        if not self._shared:
            self.contended = False
            with self.database.reader() as session:
                rows = self._due_rows(session)
            return self._publish(rows, None)
        with self.database.transaction() as session:
            self.contended = not session.execute(_TRY_ROUND_LOCK, {"key": f"outbox-relay:{self.service}"}).scalar()
            if self.contended:
                return 0
            return self._publish(self._due_rows(session), session)

    def _publish(self, rows, session) -> int:
        """Publish `rows`, await their confirms and record the outcomes (in `session` when given, which is
        then committed; else in a transaction of its own)."""
        if not rows:
            return 0
        if self._channel is None:
            self._connect()
        channel = self._channel
        by_tag: dict[int, object] = {}
        first_tag = self._next_tag
        error: Exception | None = None
        try:
            for row in rows:
                envelope = json.loads(row.body)
                properties = amqp_properties(envelope)
                message = amqp.Message(row.body.encode("utf-8"), **properties)
                channel.basic_publish(message, exchange=self.exchange,
                                      routing_key=routing_key(row.event_type, envelope["version"]), mandatory=True)
                by_tag[self._next_tag] = row
                self._outstanding.add(self._next_tag)
                self._next_tag += 1
            self._await_confirms(first_tag, self._next_tag - 1)
        except Exception as exc:  # noqa: BLE001 - any broker failure ends the round the same way
            error = exc
        nacked = any(tag in self._nacked for tag in by_tag)
        confirmed = self._record_outcomes(by_tag, session)
        if error is not None:
            self._disconnect(polite=False)
            raise RelayRoundFailed(str(error)) from error
        if nacked:
            # A channel opened while a cluster node died went on nacking every publish while a new channel's
            # were confirmed (RabbitMQ 3.10.8, observed): the next round starts on a new connection, to the
            # first node that answers.
            self._disconnect(polite=False)
        return confirmed

    def _await_confirms(self, first: int, last: int) -> None:
        """Wait until every tag of this round is settled, up to CONFIRM_TIMEOUT_SECONDS in all.

        Each drain is bounded (1 s) so the deadline is checked, and a quiet second is not
        a failure: confirms that take longer (a loaded broker, a slow link) are still
        awaited, instead of the round failing and its rows being published again."""
        deadline = time.monotonic() + CONFIRM_TIMEOUT_SECONDS
        while True:
            if not self._outstanding:  # every tag of this round (the only one in flight) is settled
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"broker did not confirm {last - first + 1} messages in "
                                   f"{CONFIRM_TIMEOUT_SECONDS:.0f} s")
            try:
                self._connection.drain_events(timeout=min(remaining, 1.0))
            except socket.timeout:
                continue  # nothing arrived in this slice; the deadline decides

    def _record_outcomes(self, by_tag: dict, session=None) -> int:
        now = utcnow()
        sent_ids, failed = [], []
        for tag, row in by_tag.items():
            returned = self._returned.pop(row.event_id, None)
            if returned is not None:
                failed.append((row, returned))
                self.metrics.events_unroutable.labels(row.event_type).inc()
            elif tag in self._nacked:
                failed.append((row, "nacked by the broker"))
            elif tag in self._acked:
                sent_ids.append(row.id)
                self.metrics.events_published.labels(row.event_type).inc()
            self._acked.discard(tag)
            self._nacked.discard(tag)
        if sent_ids or failed:
            if session is not None:
                self._write_outcomes(session, sent_ids, failed, now)
            else:
                with self.database.transaction() as own:
                    self._write_outcomes(own, sent_ids, failed, now)
        return len(sent_ids)

    def _write_outcomes(self, session, sent_ids: list, failed: list, now: dt.datetime) -> None:
        o = self.outbox
        for chunk in _chunks(sorted(sent_ids), 500):
            session.execute(update(o).where(o.c.id.in_(chunk)).values(sent_at=now, attempts=o.c.attempts + 1))
        for row, reason in sorted(failed, key=lambda item: item[0].id):
            delay = min(self.max_backoff, 0.5 * (2 ** min(row.attempts, 10)))
            session.execute(
                update(o).where(o.c.id == row.id).values(
                    attempts=o.c.attempts + 1,
                    last_error=reason,
                    next_attempt_at=now + dt.timedelta(seconds=delay),
                )
            )
        session.commit()

    # -- draining and closing (the handover uses these on a stopped instance's outbox) -------------
    def make_all_due(self) -> int:
        """Make every unsent row due now (rows waiting on a backoff included); returns how many."""
        o = self.outbox
        with self.database.transaction() as session:
            count = session.execute(update(o).where(o.c.sent_at.is_(None)).values(next_attempt_at=utcnow())).rowcount
            session.commit()
        return int(count)

    def unsent_by_type(self) -> dict[str, int]:
        o = self.outbox
        with self.database.reader() as session:
            return {t: int(n) for t, n in session.execute(
                select(o.c.event_type, func.count()).where(o.c.sent_at.is_(None)).group_by(o.c.event_type)).all()}

    def drain(self, timeout: float = 30.0, *, retry_pause: float = 0.2) -> dict:
        """Publish every unsent row, backoffs ignored, until none is left or `timeout` passed.

        Rows the broker keeps returning (no queue bound for their type) stay unsent
        and are reported by type. Not for use while `run()` is running.
        """
        before = self.make_all_due()
        published = errors = 0
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                confirmed = self.publish_due()
            except RelayRoundFailed:
                errors += 1
                confirmed = 0
                time.sleep(max(retry_pause, 0.5))
            published += confirmed
            if self.backlog()[0] == 0:
                break
            if confirmed == 0:
                time.sleep(retry_pause)
        left = self.unsent_by_type()
        return {"unsent_before": before, "published": published, "relay_errors": errors,
                "left_unsent": sum(left.values()), "left_unsent_by_type": left}

    def close(self) -> None:
        """Release the broker connection (idempotent); `run()` does this itself when it stops."""
        self._disconnect()

    # -- housekeeping --------------------------------------------------------------------------
    def backlog(self) -> tuple[int, float]:
        """(unsent rows, age in seconds of the oldest unsent row)."""
        o = self.outbox
        with self.database.reader() as session:
            count, oldest = session.execute(
                select(func.count(), func.min(o.c.created_at)).where(o.c.sent_at.is_(None))
            ).one()
        age = (utcnow() - oldest).total_seconds() if oldest is not None else 0.0
        return int(count), max(age, 0.0)

    def _housekeeping(self) -> None:
        now = time.monotonic()
        if now - self._last_prune >= 60.0:
            self._last_prune = now
            o = self.outbox
            with self.database.transaction() as session:
                # Replicas: one prunes at a time (two deleting the same rows could deadlock); the others skip.
                if not self._shared or session.execute(_TRY_ROUND_LOCK, {"key": f"outbox-prune:{self.service}"}).scalar():
                    session.execute(delete(o).where(o.c.sent_at.is_not(None), o.c.sent_at < utcnow() - self.retention))
                    session.commit()
        if self._connection is not None:
            self._connection.heartbeat_check()

    def run(self, should_stop: Callable[[], bool] = lambda: False) -> None:
        """Publish until `should_stop()`; survives broker and database outages."""
        backoff = 0.0
        while not (self.stopping or should_stop()):
            try:
                self._housekeeping()
                confirmed = self.publish_due()
                backoff = 0.0
                if confirmed >= self.batch_size:
                    continue  # more rows are due at once
                if self.contended:
                    # Another replica's round is publishing; what woke us (our own commit) may not be in it.
                    time.sleep(CONTENDED_RETRY_SECONDS)
                    continue
                if self.signal is not None:
                    woken = self.signal.wait(self.poll_seconds)
                else:
                    woken = False
                    time.sleep(self.poll_seconds)
                if woken and self.linger_seconds:
                    time.sleep(self.linger_seconds)
            except Exception as exc:  # noqa: BLE001 - the relay must outlive any single failure
                self.metrics.relay_errors.inc()
                self._disconnect(polite=False)
                backoff = min(self.max_backoff, max(0.2, backoff * 2))
                log.warning("outbox relay of %s: %s; retrying in %.1fs", self.service, exc, backoff)
                time.sleep(backoff)
        self._disconnect()


def _chunks(items: list, size: int):
    for start in range(0, len(items), size):
        yield items[start:start + size]
