"""Unit of work: one transaction in a service's own database, with the events it causes.

Guarantees:
- `publish()` writes the event to the outbox *in the same transaction* as the
  state change; nothing reaches the broker before `commit()` succeeds, and a
  rolled-back unit of work publishes nothing.
- A unit of work opened while handling an upstream event records that event's
  id in the inbox first; if the id is already there it raises
  `EventAlreadyHandled` and nothing else happens, so an event's effect is
  applied at most once, and (because the message is acked only after the
  handler returns) at least once.
- Events published while handling an event carry its correlation id, and its
  event id as their causation id.
- Every event carries its aggregate and that aggregate's next sequence number,
  taken from `event_sequences` in the same transaction (the row stays locked
  until commit), so one aggregate's numbers are strictly increasing, gap-free
  and in commit order, and its outbox rows are in the same order.
- Replicas on one PostgreSQL database: `lock(aggregate)` holds a lock on an
  aggregate until the unit of work ends. A use case that reads an aggregate
  and writes it back (or checks that something does not exist and then
  inserts it) takes the lock before reading, so two replicas doing it at once
  go one after the other and the second reads what the first committed: no
  lost update, no duplicate. A unit of work handling an upstream event takes
  the lock of that event's aggregate by itself, so two replicas never apply
  two events of one upstream aggregate at once. Locks are PostgreSQL
  transaction advisory locks (released by commit, rollback, or the
  connection's end); on SQLite, which serves one process and whose writers
  are serialised by `BEGIN IMMEDIATE`, they are no-ops.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import threading
import time
from typing import Any, Callable, Mapping

import sqlalchemy as sa
from sqlalchemy import insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shared.db import Database
from shared.envelope import Envelope, PayloadSchemas, ReceivedEvent
from shared.messaging_tables import define_event_sequences, utcnow
from shared import bulk


_INSERTS: dict = {}


def _insert_into(table):
    """One INSERT statement per table, values passed as parameters: SQLAlchemy then reuses
    its compiled form instead of building and cache-keying a new statement per row (that
    was a third of a commit's CPU)."""
    statement = _INSERTS.get(table)
    if statement is None:
        statement = _INSERTS[table] = insert(table)
    return statement


def outbox_row(envelope: Envelope, now: dt.datetime) -> dict[str, Any]:
    """The outbox row of one event, due at once: the one shape every writer of the outbox uses."""
    return {"event_id": envelope.event_id, "event_type": envelope.type, "version": envelope.version,
            "aggregate": envelope.aggregate, "sequence": envelope.sequence, "body": envelope.to_json(),
            "created_at": now, "next_attempt_at": now, "attempts": 0}


_SEQUENCES = define_event_sequences(sa.MetaData())
SEQUENCE_CHUNK = 1000
_LOCK = sa.text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))")
_LOCK_SHARED = sa.text("SELECT pg_advisory_xact_lock_shared(hashtextextended(:key, 0))")


# Plain SQL, the same on SQLite (3.35+) and PostgreSQL: SQLAlchemy compiled the dialects' upsert
# construct afresh for every event (it is not cached), which cost more than the statement itself.
_NEXT_SEQUENCE = sa.text(
    "INSERT INTO event_sequences (aggregate, last_sequence) VALUES (:a, :n) "
    "ON CONFLICT (aggregate) DO UPDATE SET last_sequence = event_sequences.last_sequence + :n "
    "RETURNING last_sequence")


def take_sequences(session: Session, counts: Mapping[str, int]) -> dict[str, int]:
    """Reserve `counts[aggregate]` consecutive sequence numbers per aggregate in this transaction;
    returns each aggregate's first. The aggregates' rows stay locked until the transaction ends.

    One aggregate: one upsert that returns the new last number. Many (a bulk job): per chunk,
    create the missing rows, lock and read them, then update them, in aggregate order so two
    bulk jobs never lock in opposite orders."""
    if not counts:
        return {}
    t = _SEQUENCES
    # a Session or (the handover's import) a Connection
    dialect = (session.get_bind() if hasattr(session, "get_bind") else session).dialect.name
    make_insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    if len(counts) == 1:
        (aggregate, n), = counts.items()
        last = session.execute(_NEXT_SEQUENCE, {"a": aggregate, "n": n}).scalar_one()
        return {aggregate: last - n + 1}
    first: dict[str, int] = {}
    ordered = sorted(counts)
    for start in range(0, len(ordered), SEQUENCE_CHUNK):
        chunk = ordered[start:start + SEQUENCE_CHUNK]
        session.execute(make_insert(t).on_conflict_do_nothing(index_elements=[t.c.aggregate]),
                        [{"aggregate": a, "last_sequence": 0} for a in chunk])
        query = select(t.c.aggregate, t.c.last_sequence).where(t.c.aggregate.in_(chunk)).order_by(t.c.aggregate)
        if dialect == "postgresql":
            query = query.with_for_update()
        current = dict(session.execute(query).all())
        session.execute(update(t).where(t.c.aggregate == sa.bindparam("a")).values(
            last_sequence=sa.bindparam("last")),
            [{"a": a, "last": current[a] + counts[a]} for a in chunk])
        for a in chunk:
            first[a] = current[a] + 1
    return first


class EventAlreadyHandled(Exception):
    """The event's id is in the inbox: its effect was committed before."""


@dataclasses.dataclass(frozen=True)
class Origin:
    """What caused the current work: an HTTP request or an upstream event."""

    correlation_id: str | None = None
    event: ReceivedEvent | None = None


@dataclasses.dataclass(frozen=True)
class Producer:
    """Who publishes: the service and the operator that runs it."""

    service: str
    operator: str
    schemas: PayloadSchemas


class UnitOfWork:
    """Use as `with uow: ...; uow.commit()`. Uncommitted work is rolled back on exit."""

    def __init__(self, database: Database, producer: Producer, outbox, inbox, origin: Origin,
                 on_commit: Callable[[], None] = lambda: None, delay_before_commit: float = 0.0):
        self._delay_before_commit = delay_before_commit
        self._database = database
        self._producer = producer
        self._outbox = outbox
        self._inbox = inbox
        self.origin = origin
        self._on_commit = on_commit
        self._transaction = None
        self.session: Session | None = None
        self.published: list[Envelope] = []
        self._published_in_bulk = 0

    def __enter__(self) -> "UnitOfWork":
        self._transaction = self._database.transaction()
        self.session = self._transaction.__enter__()
        try:
            if self.origin.event is not None:
                self._record_in_inbox(self.origin.event)
                aggregate = self.origin.event.envelope.aggregate
                if aggregate:
                    # The producer's aggregate name is the consumer's name for the same thing (`school:<urn>`):
                    # the event's effect and the service's own use cases on that school take one lock.
                    self.lock(aggregate)
        except BaseException as exc:
            self._transaction.__exit__(type(exc), exc, exc.__traceback__)
            raise
        return self

    def __exit__(self, *exc_info) -> bool:
        transaction, self._transaction = self._transaction, None
        self.session = None
        transaction.__exit__(*exc_info)
        return False

    def lock(self, *aggregates: str, shared: bool = False) -> None:
        """Hold a lock on each of `aggregates` (e.g. `school:100000`) until this unit of work ends; call it
        before reading them. `shared`: a lock many holders may share, against one exclusive holder (a
        use case over every aggregate of a kind takes `register` exclusively, single-aggregate ones take
        it shared first). Always take a unit of work's locks in one call, or coarse before fine, so two
        units of work never wait on each other in a circle. No-op on SQLite (see the module docstring)."""
        if self._database.is_sqlite:
            return
        statement = _LOCK_SHARED if shared else _LOCK
        for aggregate in sorted(set(aggregates)):
            self.session.execute(statement, {"key": f"{self._producer.service}:{aggregate}"})

    def _record_in_inbox(self, event: ReceivedEvent) -> None:
        try:
            self.session.execute(_insert_into(self._inbox), {
                "event_id": event.event_id,
                "event_type": event.type,
                "producer": event.envelope.producer,
                "handled_at": utcnow(),
            })
        except IntegrityError:
            raise EventAlreadyHandled(event.event_id) from None

    def _envelope(self, event_type: str, version: int, body: dict[str, Any], aggregate: str,
                  sequence: int, occurred_at: dt.datetime | None = None) -> Envelope:
        """The event in its envelope; `body` is the payload already built by the published schema."""
        cause = self.origin.event
        return Envelope.new(
            type=event_type,
            version=version,
            payload=body,
            producer=self._producer.service,
            operator=self._producer.operator,
            correlation_id=cause.envelope.correlation_id if cause else self.origin.correlation_id,
            causation_id=cause.event_id if cause else None,
            occurred_at=occurred_at,
            aggregate=aggregate,
            sequence=sequence,
        )

    def publish(self, event_type: str, payload: Mapping[str, Any], *, aggregate: str, version: int = 1,
                occurred_at: dt.datetime | None = None) -> Envelope:
        """Add an event about `aggregate` to the outbox, with that aggregate's next sequence number;
        the payload is validated against the service's published schema first (nothing is written
        if it is invalid)."""
        body = self._producer.schemas.build(event_type, version, payload)  # refused before a number is taken
        sequence = take_sequences(self.session, {aggregate: 1})[aggregate]
        envelope = self._envelope(event_type, version, body, aggregate, sequence, occurred_at)
        self.session.execute(_insert_into(self._outbox), outbox_row(envelope, utcnow()))
        self.published.append(envelope)
        return envelope

    def publish_many(self, events, *, version: int = 1, chunk_size: int = 5000) -> int:
        """Add many events to the outbox: the one way a bulk job (an import, a renewal round, a
        billing run) publishes. `events` yields (event_type, payload, aggregate) or (event_type,
        payload, aggregate, occurred_at), each payload from the same builder as the single-event path.

        The same guarantees as `publish()`: each payload built and validated as the published
        schema says (`PayloadSchemas.build_in_bulk`: the same output and the same refusals as
        `build`, with marshmallow once per shape of payload), and all of them before anything is
        written, so one invalid payload writes nothing; the same transaction; envelopes with
        their aggregate and its next sequence numbers, in iteration order; outbox order =
        iteration order; the relay woken by the commit. Sequence numbers are reserved set-based
        (`take_sequences`) and rows written with `shared.bulk` in chunks of `chunk_size`, so a
        bulk job pays no statement per event. Envelopes are not kept in `published` (a national
        run holds hundreds of thousands); returns how many were added."""
        build = self._producer.schemas.build_in_bulk
        staged = []
        counts: dict[str, int] = {}
        for item in events:
            event_type, payload, aggregate = item[0], item[1], item[2]
            staged.append((event_type, build(event_type, version, payload), aggregate,
                           item[3] if len(item) > 3 else None))
            counts[aggregate] = counts.get(aggregate, 0) + 1
        if not staged:
            return 0
        next_number = take_sequences(self.session, counts)
        now = utcnow()
        rows = []
        for event_type, body, aggregate, occurred_at in staged:
            sequence = next_number[aggregate]
            next_number[aggregate] = sequence + 1
            rows.append(outbox_row(self._envelope(event_type, version, body, aggregate, sequence, occurred_at), now))
            if len(rows) >= chunk_size:
                bulk.insert_dicts(self.session, self._outbox, rows)
                rows = []
        if rows:
            bulk.insert_dicts(self.session, self._outbox, rows)
        self._published_in_bulk += len(staged)
        return len(staged)

    def commit(self) -> None:
        if self._delay_before_commit:
            # Fault injection only (config FAULTS): hold the transaction open so a
            # test can kill the process in the middle of a handler.
            time.sleep(self._delay_before_commit)
        self.session.commit()
        if self.published or self._published_in_bulk:
            self._on_commit()


class UnitsOfWork:
    """What a service worker sees as `self.uow`: call it for a unit of work, `.read()` for queries."""

    def __init__(self, database: Database, producer: Producer, outbox, inbox, origin: Origin,
                 on_commit: Callable[[], None], delay_before_commit: float = 0.0):
        self.database = database
        self._make = lambda: UnitOfWork(database, producer, outbox, inbox, origin, on_commit, delay_before_commit)

    def __call__(self) -> UnitOfWork:
        return self._make()

    def read(self):
        return self.database.reader()


class OutboxSignal:
    """Wakes the relay as soon as a unit of work committed events."""

    def __init__(self):
        self._event = threading.Event()

    def notify(self) -> None:
        self._event.set()

    def wait(self, timeout: float) -> bool:
        woke = self._event.wait(timeout)
        self._event.clear()
        return woke
