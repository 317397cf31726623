"""The unit of work against a real SQLite database: outbox rows commit with the state change, or not at all."""
import json

import pytest
import sqlalchemy as sa
from marshmallow import RAISE, Schema, ValidationError, fields

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


PRODUCER = Producer(service="notes", operator="Test Trust", schemas=PayloadSchemas({("noted", 1): NotedV1()}))


@pytest.fixture
def database(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'uow.db'}")
    metadata.create_all(db.engine)
    yield db
    db.dispose()


def _outbox_rows(db):
    with db.reader() as session:
        return session.execute(sa.select(outbox.c.event_type, outbox.c.aggregate, outbox.c.body)
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


def test_a_payload_that_cannot_be_serialised_is_a_validation_error(database):
    with pytest.raises(ValidationError, match="cannot be serialised"):
        with UnitOfWork(database, PRODUCER, outbox, inbox, Origin()) as uow:
            uow.publish("noted", {"n": "two"}, aggregate="a")


def test_uncommitted_publish_leaves_no_outbox_row(database):
    with UnitOfWork(database, PRODUCER, outbox, inbox, Origin()) as uow:
        uow.publish("noted", {"n": 1}, aggregate="a")
    assert _outbox_rows(database) == []
