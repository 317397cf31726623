"""A service with one batched handler, for the batched-consumption tests (run by `nameko run`).

`on_noted` applies `thing_noted` events (from the service named by `BATCH_SOURCE`) a batch at a
time through `shared.batch_consumer.consumes_batch`. Each event's effect row records the worker
(one per batch) that applied it, so a test can see which events committed together. The
`batch_latest` row of an aggregate keeps the value of its highest sequence number seen: the
order-tolerant use case, as billing's and scheduling's handlers do it. A payload with
`poison: true` fails permanently, every time. With `BATCH_MARKS` set, each batch's worker
leaves a file there (its size) once it applied its events, just before its commit.
"""
from __future__ import annotations

import os
import uuid

import sqlalchemy as sa
from marshmallow import EXCLUDE, Schema, fields

from shared.batch_consumer import consumes_batch
from shared.envelope import PayloadSchemas
from shared.messaging_tables import define_messaging_tables
from shared.storage import Storage

SOURCE = os.environ.get("BATCH_SOURCE", "batchsrc")
SERVICE = "batchsink"
EVENT_TYPE = "thing_noted"
METHOD = "on_noted"

metadata = sa.MetaData()
outbox, inbox = define_messaging_tables(metadata)
effects = sa.Table(
    "batch_effects", metadata,
    sa.Column("event_id", sa.String(36), primary_key=True),
    sa.Column("worker", sa.String(36), nullable=False),
    sa.Column("aggregate", sa.String(100), nullable=False),
    sa.Column("sequence", sa.Integer, nullable=False),
    sa.Column("value", sa.String(100), nullable=False),
)
latest = sa.Table(
    "batch_latest", metadata,
    sa.Column("aggregate", sa.String(100), primary_key=True),
    sa.Column("sequence", sa.Integer, nullable=False),
    sa.Column("value", sa.String(100), nullable=False),
)


class Noted(Schema):
    class Meta:
        unknown = EXCLUDE

    value = fields.String(required=True)
    poison = fields.Boolean(load_default=False)


class PoisonEvent(ValueError):
    """A permanent failure, every time."""


def note(uow, event, worker: str) -> None:
    """The use case for one event, written as for a single event's unit of work."""
    with uow:
        if event.payload["poison"]:
            raise PoisonEvent(f"event {event.event_id} is poison")
        uow.session.execute(sa.insert(effects), {"event_id": event.event_id, "worker": worker,
                                                 "aggregate": event.aggregate, "sequence": event.sequence,
                                                 "value": event.payload["value"]})
        held = uow.session.execute(sa.select(latest.c.sequence).where(latest.c.aggregate == event.aggregate)
                                   ).scalar_one_or_none()
        if held is None:
            uow.session.execute(sa.insert(latest), {"aggregate": event.aggregate, "sequence": event.sequence,
                                                    "value": event.payload["value"]})
        elif event.sequence > held:  # an older event, delivered late, changes nothing
            uow.session.execute(sa.update(latest).where(latest.c.aggregate == event.aggregate)
                                .values(sequence=event.sequence, value=event.payload["value"]))
        uow.commit()


class BatchSink:
    name = SERVICE
    uow = Storage(migrations="tests.reliability.batch_sink:migrations", published=PayloadSchemas({}),
                  outbox=outbox, inbox=inbox)

    @consumes_batch(SOURCE, EVENT_TYPE, Noted)
    def on_noted(self, events):
        worker = str(uuid.uuid4())
        with self.uow() as batch:
            for event in batch.fresh:
                note(batch.unit_for(event), event, worker)
            _mark(worker, len(events))
            batch.commit()


def _mark(worker: str, size: int) -> None:
    """Tell the test this worker applied its batch of `size` and is about to commit (a file per batch)."""
    marks = os.environ.get("BATCH_MARKS")
    if marks:
        with open(os.path.join(marks, worker), "w") as handle:
            handle.write(str(size))
