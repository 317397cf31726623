"""One unit of work for a batch of upstream events: one transaction, one inbox row per event.

What a worker of a batched handler (`shared.batch_consumer.consumes_batch`) sees as
`self.uow()`. Guarantees, besides those of `shared.unit_of_work.UnitOfWork`:

- On entry, the batch's event ids are written to the inbox in one statement
  (`INSERT ... ON CONFLICT DO NOTHING RETURNING`, the same SQL on SQLite 3.35+ and
  PostgreSQL); `fresh` is the events whose row this transaction wrote, in delivery
  order. An event already in the inbox (a redelivery), or a second copy of one event
  inside the batch, is left out of `fresh` and recorded in `EventBatch.already_handled`:
  it is skipped without failing the batch. On PostgreSQL an id another transaction is
  inserting at that moment waits for it: skipped if it commits, fresh if it rolls back.
- Replicas on one PostgreSQL database: right after the inbox rows, the batch takes the
  lock of every fresh event's aggregate (`UnitOfWork.lock`), all in one call, so in one
  sorted order, and holds them until it ends. A single event's unit of work takes its
  aggregate's lock the same way, so a batch, a single event and the service's own use
  cases on one school (`school:<urn>`) never apply at once on two replicas, and since
  every unit of work takes its aggregates' locks first and in sorted order, two batches
  never wait on each other in a circle.
- `unit_for(event)` is a unit of work of that one event inside the batch's
  transaction: the same session, its own causation and correlation ids on what it
  publishes, its `with` and `commit()` doing nothing (the batch commits), so a use
  case written for one event (`with uow: ...; uow.commit()`) runs unchanged. Its
  queries see the effects of the events before it in the batch, so a use case that
  compares an aggregate's sequence numbers keeps telling older from newer inside a
  batch.
- `commit()` commits the whole batch (every inbox row, every effect, every outbox
  row) at once; if anything raises before, nothing of the batch is written.
"""
from __future__ import annotations

from typing import Callable, Iterable

import sqlalchemy as sa

from shared.db import Database
from shared.envelope import ReceivedEvent
from shared.messaging_tables import utcnow
from shared.unit_of_work import Origin, Producer, UnitOfWork


class EventBatch(list):
    """The events a batched handler receives: a plain list of `ReceivedEvent`, in delivery order.

    `already_handled` is filled by the batch's unit of work with the ids it found in the
    inbox (or twice in the batch), for the entrypoint's metrics."""

    def __init__(self, events: Iterable[ReceivedEvent] = ()):
        super().__init__(events)
        self.already_handled: list[str] = []


_INBOX_INSERTS: dict = {}


def _inbox_insert(inbox: sa.Table, rows: int) -> sa.TextClause:
    """`INSERT ... VALUES (..), (..) ON CONFLICT DO NOTHING RETURNING event_id` for `rows` rows,
    built once per (table, size): plain SQL the two databases share (see `_NEXT_SEQUENCE`)."""
    key = (inbox.name, rows)
    statement = _INBOX_INSERTS.get(key)
    if statement is None:
        values = ", ".join(f"(:e{i}, :t{i}, :p{i}, :h)" for i in range(rows))
        statement = _INBOX_INSERTS[key] = sa.text(
            f"INSERT INTO {inbox.name} (event_id, event_type, producer, handled_at) VALUES {values} "
            "ON CONFLICT (event_id) DO NOTHING RETURNING event_id")
    return statement


class _EventInBatch(UnitOfWork):
    """One event's unit of work inside a batch's transaction (see the module docstring)."""

    def __init__(self, batch: "BatchUnitOfWork", event: ReceivedEvent):
        super().__init__(batch._database, batch._producer, batch._outbox, batch._inbox, Origin(event=event))
        self.session = batch.session
        self.published = batch.published  # one list: the batch's commit wakes the relay

    def __enter__(self) -> "_EventInBatch":
        return self

    def __exit__(self, *exc_info) -> bool:
        return False  # an exception goes on to the batch, which rolls everything back

    def publish_many(self, events, **kwargs) -> int:
        added = super().publish_many(events, **kwargs)
        self._batch_published_in_bulk(added)
        return added

    def commit(self) -> None:
        """Nothing yet: the batch commits every event's work at once."""


class BatchUnitOfWork(UnitOfWork):
    """Use as `with uow: for event in uow.fresh: use_case(uow.unit_for(event), ...); uow.commit()`."""

    def __init__(self, database: Database, producer: Producer, outbox, inbox, batch: EventBatch,
                 on_commit: Callable[[], None] = lambda: None, delay_before_commit: float = 0.0):
        super().__init__(database, producer, outbox, inbox, Origin(), on_commit, delay_before_commit)
        self.batch = batch
        self.fresh: list[ReceivedEvent] = []

    def __enter__(self) -> "BatchUnitOfWork":
        super().__enter__()  # Origin() has no event: no single inbox row
        try:
            self.fresh = self._record_batch_in_inbox()
            self.lock(*(event.envelope.aggregate for event in self.fresh if event.envelope.aggregate))
        except BaseException as exc:
            self.__exit__(type(exc), exc, exc.__traceback__)
            raise
        return self

    def _record_batch_in_inbox(self) -> list[ReceivedEvent]:
        first: dict[str, ReceivedEvent] = {}
        for event in self.batch:
            first.setdefault(event.event_id, event)
        if not first:
            return []
        params = {"h": utcnow()}
        for i, event in enumerate(first.values()):
            params.update({f"e{i}": event.event_id, f"t{i}": event.type, f"p{i}": event.envelope.producer})
        written = set(self.session.execute(_inbox_insert(self._inbox, len(first)), params).scalars())
        fresh, seen = [], set()
        self.batch.already_handled = []
        for event in self.batch:
            if event.event_id in written and event.event_id not in seen:
                seen.add(event.event_id)
                fresh.append(event)
            else:
                self.batch.already_handled.append(event.event_id)
        return fresh

    def apply_each(self, use_case: Callable[[UnitOfWork, ReceivedEvent], object], *,
                   key: Callable[[ReceivedEvent], object] | None = None) -> None:
        """`use_case(unit, event)` for each fresh event, each with its own unit of work (`unit_for`) inside
        this transaction; in delivery order, or stably sorted by `key` (e.g. the row each locks, so two
        batches lock in one order: only for use cases whose outcome does not depend on the order of
        events, such as those ordered by sequence number). The caller commits."""
        for event in (self.fresh if key is None else sorted(self.fresh, key=key)):
            use_case(self.unit_for(event), event)

    def unit_for(self, event: ReceivedEvent) -> UnitOfWork:
        """The unit of work of one event of this batch, inside the batch's transaction."""
        unit = _EventInBatch(self, event)
        unit._batch_published_in_bulk = self._count_bulk
        return unit

    def _count_bulk(self, added: int) -> None:
        self._published_in_bulk += added


class BatchUnitsOfWork:
    """What a batched handler's worker sees as `self.uow`: call it for the batch's unit of work."""

    def __init__(self, database: Database, producer: Producer, outbox, inbox, batch: EventBatch,
                 on_commit: Callable[[], None], delay_before_commit: float = 0.0):
        self.database = database
        self._make = lambda: BatchUnitOfWork(database, producer, outbox, inbox, batch, on_commit,
                                             delay_before_commit)

    def __call__(self) -> BatchUnitOfWork:
        return self._make()

    def read(self):
        return self.database.reader()
