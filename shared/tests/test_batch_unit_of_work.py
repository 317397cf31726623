"""A batch's unit of work against real SQLite and PostgreSQL: one transaction, one inbox row per new event,
duplicates skipped, each event's own unit of work inside it."""
import dataclasses
import json
import os
import uuid

import pytest
import sqlalchemy as sa
from marshmallow import RAISE, Schema, fields

from shared.batch_unit_of_work import BatchUnitOfWork, EventBatch
from shared.db import Database, drop_postgres_database, ensure_postgres_database
from shared.envelope import Envelope, PayloadSchemas, ReceivedEvent
from shared.messaging_tables import define_messaging_tables
from shared.unit_of_work import Origin, Producer, UnitOfWork

PG_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")

metadata = sa.MetaData()
outbox, inbox = define_messaging_tables(metadata)
notes = sa.Table("notes", metadata, sa.Column("event_id", sa.String(36), primary_key=True),
                 sa.Column("n", sa.Integer))


class EchoedV1(Schema):
    class Meta:
        unknown = RAISE

    n = fields.Integer(required=True, strict=True)


PRODUCER = Producer(service="echo", operator="Test Trust", schemas=PayloadSchemas({("echoed", 1): EchoedV1()}))


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, tmp_path):
    if request.param == "sqlite":
        db = Database(f"sqlite:///{tmp_path / 'batch.db'}")
        url = None
    else:
        url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/t_batch_{uuid.uuid4().hex[:10]}"
        ensure_postgres_database(url)
        db = Database(url)
    metadata.create_all(db.engine)
    yield db
    db.dispose()
    if url:
        drop_postgres_database(url)


def received(n: int, event_id: str | None = None) -> ReceivedEvent:
    envelope = Envelope.new(type="noted", payload={"n": n}, producer="upstream", operator="Up",
                            aggregate=f"note:{n}", sequence=1)
    if event_id:
        envelope = dataclasses.replace(envelope, event_id=event_id)
    return ReceivedEvent(envelope=envelope, payload={"n": n})


def apply(database, batch: EventBatch, *, fail_on: int | None = None) -> list[int]:
    """Apply each new event (a note row and an `echoed` event) in one batch; returns the fresh ns."""
    with BatchUnitOfWork(database, PRODUCER, outbox, inbox, batch) as uow:
        fresh = [e.payload["n"] for e in uow.fresh]
        for event in uow.fresh:
            unit = uow.unit_for(event)
            with unit:
                if event.payload["n"] == fail_on:
                    raise ValueError("poison")
                unit.session.execute(sa.insert(notes), {"event_id": event.event_id, "n": event.payload["n"]})
                unit.publish("echoed", {"n": event.payload["n"]}, aggregate="echo")
                unit.commit()
        uow.commit()
    return fresh


def count(database, table) -> int:
    with database.reader() as session:
        return session.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()


def test_a_batch_commits_one_inbox_row_and_effect_per_event_and_each_event_causes_its_own(database):
    batch = EventBatch(received(n) for n in range(5))
    assert apply(database, batch) == [0, 1, 2, 3, 4]
    assert count(database, inbox) == 5 and count(database, notes) == 5
    with database.reader() as session:
        bodies = [json.loads(b) for b in session.execute(sa.select(outbox.c.body).order_by(outbox.c.id)).scalars()]
    # each echo caused by its own event, numbered in order in its aggregate
    assert [b["causation_id"] for b in bodies] == [e.event_id for e in batch]
    assert [b["correlation_id"] for b in bodies] == [e.envelope.correlation_id for e in batch]
    assert [b["sequence"] for b in bodies] == [1, 2, 3, 4, 5]
    assert batch.already_handled == []


def test_events_already_in_the_inbox_or_twice_in_the_batch_are_skipped_without_failing_it(database):
    old = [received(n) for n in range(3)]
    apply(database, EventBatch(old))
    new = [received(n) for n in range(3, 6)]
    batch = EventBatch([old[0], new[0], old[1], new[1], new[1], new[2], old[2]])
    assert apply(database, batch) == [3, 4, 5]
    assert sorted(batch.already_handled) == sorted([old[0].event_id, old[1].event_id, new[1].event_id,
                                                    old[2].event_id])
    assert count(database, inbox) == 6 and count(database, notes) == 6


def test_a_failure_anywhere_in_the_batch_writes_nothing_of_it(database):
    with pytest.raises(ValueError):
        apply(database, EventBatch(received(n) for n in range(4)), fail_on=2)
    assert count(database, inbox) == 0 and count(database, notes) == 0 and count(database, outbox) == 0


def test_the_single_event_unit_of_work_still_refuses_an_event_a_batch_applied(database):
    from shared.unit_of_work import EventAlreadyHandled

    event = received(7)
    apply(database, EventBatch([event]))
    with pytest.raises(EventAlreadyHandled):
        with UnitOfWork(database, PRODUCER, outbox, inbox, Origin(event=event)):
            pass


def test_a_batch_holds_its_fresh_events_aggregate_locks_until_it_ends_on_postgresql(tmp_path):
    """Replicas: what a single event's unit of work guarantees (its aggregate locked), a batch guarantees for
    each new event, so another replica's unit of work on one of those aggregates waits for the batch."""
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/t_batch_{uuid.uuid4().hex[:10]}"
    ensure_postgres_database(url)
    database = Database(url)
    metadata.create_all(database.engine)
    other = sa.create_engine(url)
    try_lock = sa.text("SELECT pg_try_advisory_xact_lock(hashtextextended(:key, 0))")

    def free(aggregate: str) -> bool:
        with other.connect() as connection:  # its own transaction: the try-lock ends with it
            return connection.execute(try_lock, {"key": f"{PRODUCER.service}:{aggregate}"}).scalar()

    try:
        with BatchUnitOfWork(database, PRODUCER, outbox, inbox, EventBatch([received(1), received(2)])) as uow:
            assert [e.payload["n"] for e in uow.fresh] == [1, 2]
            assert not free("note:1") and not free("note:2")
            assert free("note:3")  # only the batch's own aggregates
            uow.commit()
        assert free("note:1") and free("note:2")  # released by the commit

        again = EventBatch([received(4, event_id=str(uuid.uuid4()))])
        with BatchUnitOfWork(database, PRODUCER, outbox, inbox, again) as uow:
            assert not free("note:4")
        assert free("note:4")  # released by the rollback too
    finally:
        other.dispose()
        database.dispose()
        drop_postgres_database(url)
