"""The unit of work against a real SQLite database: outbox rows commit with the state change, or not at all."""
import datetime as dt
import json

import pytest
import sqlalchemy as sa
from marshmallow import RAISE, Schema, ValidationError, fields, validate

from shared.db import Database
from shared.envelope import PayloadSchemas
from shared.messaging_tables import define_messaging_tables
from shared.unit_of_work import Origin, Producer, UnitOfWork

metadata = sa.MetaData()
outbox, inbox = define_messaging_tables(metadata)
notes = sa.Table("notes", metadata, sa.Column("id", sa.Integer, primary_key=True), sa.Column("text", sa.String(20)))


class NotedV1(Schema):
    class Meta:
        unknown = RAISE

    n = fields.Integer(required=True, strict=True)


class GradedV1(Schema):
    class Meta:
        unknown = RAISE

    n = fields.Integer(required=True, strict=True)
    grade = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=4))
    on = fields.Date(required=True, allow_none=True)


PRODUCER = Producer(service="notes", operator="Test Trust", schemas=PayloadSchemas({("noted", 1): NotedV1()}))


def _producer() -> Producer:
    """A producer of its own: what PayloadSchemas learnt about shapes starts empty."""
    return Producer(service="notes", operator="Test Trust",
                    schemas=PayloadSchemas({("noted", 1): NotedV1(), ("graded", 1): GradedV1()}))


@pytest.fixture
def database(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'uow.db'}")
    metadata.create_all(db.engine)
    yield db
    db.dispose()


def _outbox_rows(db):
    with db.reader() as session:
        return session.execute(sa.select(outbox.c.event_type, outbox.c.aggregate, outbox.c.sequence, outbox.c.body)
                               .order_by(outbox.c.id)).all()


def test_publish_many_writes_every_event_in_order_and_wakes_the_relay_once(database):
    woken = []
    with UnitOfWork(database, PRODUCER, outbox, inbox, Origin(correlation_id="corr-1"),
                    on_commit=lambda: woken.append(1)) as uow:
        uow.session.execute(sa.insert(notes), {"text": "bulk"})
        count = uow.publish_many((("noted", {"n": n}, f"note-{n}") for n in range(2500)), chunk_size=1000)
        uow.commit()
    rows = _outbox_rows(database)
    assert count == 2500 and len(rows) == 2500
    bodies = [json.loads(r.body) for r in rows]
    assert [b["payload"]["n"] for b in bodies] == list(range(2500))
    assert {b["correlation_id"] for b in bodies} == {"corr-1"}
    assert len({b["event_id"] for b in bodies}) == 2500
    assert rows[7].aggregate == "note-7"
    assert woken == [1]


def test_publish_many_with_one_invalid_payload_writes_nothing(database):
    with pytest.raises(ValidationError):
        with UnitOfWork(database, PRODUCER, outbox, inbox, Origin()) as uow:
            uow.session.execute(sa.insert(notes), {"text": "half"})
            uow.publish_many([("noted", {"n": 1}, "a"), ("noted", {}, "b")])
            uow.commit()
    assert _outbox_rows(database) == []
    with database.reader() as session:
        assert session.execute(sa.select(sa.func.count()).select_from(notes)).scalar() == 0


def _sequences(db) -> dict:
    with db.reader() as session:
        return dict(session.execute(sa.text("SELECT aggregate, last_sequence FROM event_sequences")).all())


def test_publish_many_numbers_each_aggregate_in_iteration_order_across_chunks(database):
    """Interleaved aggregates, outbox chunks of 3, numbers continuing from an earlier `publish`."""
    with UnitOfWork(database, PRODUCER, outbox, inbox, Origin(correlation_id="corr-2")) as uow:
        uow.publish("noted", {"n": -1}, aggregate="b")
        uow.commit()
    order = ["a", "b", "a", "c", "a", "b", "b", "a", "c", "a"]
    with UnitOfWork(database, PRODUCER, outbox, inbox, Origin(correlation_id="corr-3")) as uow:
        assert uow.publish_many([("noted", {"n": n}, aggregate) for n, aggregate in enumerate(order)],
                                chunk_size=3) == len(order)
        uow.commit()
    rows = _outbox_rows(database)[1:]
    bodies = [json.loads(r.body) for r in rows]
    assert [b["payload"]["n"] for b in bodies] == list(range(len(order)))
    expected, seen = [], {"b": 1}
    for aggregate in order:
        seen[aggregate] = seen.get(aggregate, 0) + 1
        expected.append((aggregate, seen[aggregate]))
    assert [(b["aggregate"], b["sequence"]) for b in bodies] == expected  # the envelope, as publish() writes it
    assert [(r.aggregate, r.sequence) for r in rows] == expected  # and the outbox columns the relay orders by
    assert {(b["producer"], b["operator"], b["correlation_id"]) for b in bodies} == {("notes", "Test Trust", "corr-3")}
    assert _sequences(database) == {"a": 5, "b": 4, "c": 2}


def test_publish_many_with_an_invalid_payload_in_a_later_chunk_writes_nothing(database):
    events = [("graded", {"n": n, "grade": 1 + n % 4, "on": None}, f"g-{n % 7}") for n in range(3000)]
    events[2500] = ("graded", {"n": 2500, "grade": 5, "on": None}, "g-1")  # the same shape, a value out of range
    with pytest.raises(ValidationError) as refused:
        with UnitOfWork(database, _producer(), outbox, inbox, Origin()) as uow:
            uow.publish_many(events, chunk_size=1000)
    assert refused.value.messages == {"payload": {"grade": ["Must be greater than or equal to 1 and less than or "
                                                            "equal to 4."]}}
    assert _outbox_rows(database) == [] and _sequences(database) == {}


def test_publish_many_fully_validates_each_shape_and_writes_what_build_would(database):
    producer = _producer()
    schemas = producer.schemas
    same_shape = [{"n": n, "grade": 1 + n % 4, "on": None} for n in range(1000)]
    dated = {"n": 1000, "grade": 2, "on": dt.date(2027, 4, 1)}  # a date where the first had None: a new shape
    with UnitOfWork(database, producer, outbox, inbox, Origin()) as uow:
        uow.publish_many([("graded", p, "g") for p in [*same_shape, dated]])
        uow.commit()
    assert schemas._bulk.full_builds == 2
    payloads = [json.loads(r.body)["payload"] for r in _outbox_rows(database)]
    assert payloads == [schemas.build("graded", 1, p) for p in [*same_shape, dated]]
    assert payloads[-1]["on"] == "2027-04-01"

    for differs in ({"n": "seven", "grade": 1, "on": None},  # text where the first had an integer
                    {"n": 7, "grade": 1}):  # a key missing
        with pytest.raises(ValidationError) as refused:
            with UnitOfWork(database, producer, outbox, inbox, Origin()) as uow:
                uow.publish_many([("graded", p, "g") for p in same_shape[:10]] + [("graded", differs, "g")])
        assert refused.value.messages == _refusal(schemas, differs)
    with UnitOfWork(database, producer, outbox, inbox, Origin()) as uow:  # a key the schema does not dump
        uow.publish_many([("graded", {"n": 7, "grade": 1, "on": None, "note": "x"}, "g")])
        uow.commit()
    assert schemas._bulk.full_builds == 5
    assert [json.loads(r.body)["payload"] for r in _outbox_rows(database)][1001:] == [{"n": 7, "grade": 1, "on": None}]


def _refusal(schemas, payload) -> dict:
    with pytest.raises(ValidationError) as refused:
        schemas.build("graded", 1, payload)
    return refused.value.messages


def test_a_payload_that_cannot_be_serialised_is_a_validation_error(database):
    with pytest.raises(ValidationError, match="cannot be serialised"):
        with UnitOfWork(database, PRODUCER, outbox, inbox, Origin()) as uow:
            uow.publish("noted", {"n": "two"}, aggregate="a")


def test_uncommitted_publish_leaves_no_outbox_row(database):
    with UnitOfWork(database, PRODUCER, outbox, inbox, Origin()) as uow:
        uow.publish("noted", {"n": 1}, aggregate="a")
    assert _outbox_rows(database) == []
