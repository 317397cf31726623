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
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import threading
import time
from typing import Any, Callable, Mapping

from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shared.db import Database
from shared.envelope import Envelope, PayloadSchemas, ReceivedEvent
from shared.messaging_tables import utcnow


_INSERTS: dict = {}


def _insert_into(table):
    """One INSERT statement per table, values passed as parameters: SQLAlchemy then reuses
    its compiled form instead of building and cache-keying a new statement per row (that
    was a third of a commit's CPU)."""
    statement = _INSERTS.get(table)
    if statement is None:
        statement = _INSERTS[table] = insert(table)
    return statement


def outbox_row(envelope: Envelope, aggregate: str, now: dt.datetime) -> dict[str, Any]:
    """The outbox row of one event, due at once: the one shape every writer of the outbox uses
    (`publish`, `publish_many`, and bulk writers that build their envelopes themselves)."""
    return {"event_id": envelope.event_id, "event_type": envelope.type, "version": envelope.version,
            "aggregate": aggregate, "body": envelope.to_json(), "created_at": now, "next_attempt_at": now,
            "attempts": 0}


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
        except BaseException as exc:
            self._transaction.__exit__(type(exc), exc, exc.__traceback__)
            raise
        return self

    def __exit__(self, *exc_info) -> bool:
        transaction, self._transaction = self._transaction, None
        self.session = None
        transaction.__exit__(*exc_info)
        return False

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

    def _envelope(self, event_type: str, version: int, payload: Mapping[str, Any],
                  occurred_at: dt.datetime | None = None) -> Envelope:
        """The event in its envelope, its payload validated against the service's published schema."""
        body = self._producer.schemas.build(event_type, version, payload)
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
        )

    def publish(self, event_type: str, payload: Mapping[str, Any], *, aggregate: str, version: int = 1,
                occurred_at: dt.datetime | None = None) -> Envelope:
        """Add an event to the outbox; it is validated against the service's published schema."""
        envelope = self._envelope(event_type, version, payload, occurred_at)
        self.session.execute(_insert_into(self._outbox), outbox_row(envelope, aggregate, utcnow()))
        self.published.append(envelope)
        return envelope

    def publish_many(self, events, *, version: int = 1, chunk_size: int = 1000) -> int:
        """Add many events to the outbox in bulk: `events` yields (event_type, payload, aggregate).

        The same guarantees as `publish()` (each payload validated, same transaction,
        outbox order = iteration order), with one multi-row INSERT per chunk, so a
        bulk operation (an import, a renewal round, a billing run) does not pay a
        statement per event. Envelopes are not kept in `published`; returns the count."""
        statement = _insert_into(self._outbox)
        count, rows = 0, []
        now = utcnow()
        for event_type, payload, aggregate in events:
            rows.append(outbox_row(self._envelope(event_type, version, payload), aggregate, now))
            if len(rows) >= chunk_size:
                self.session.execute(statement, rows)
                count += len(rows)
                rows = []
        if rows:
            self.session.execute(statement, rows)
            count += len(rows)
        self._published_in_bulk += count
        return count

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
