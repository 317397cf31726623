"""Per-aggregate sequence numbers, on real SQLite and PostgreSQL: strictly increasing and gap-free per
aggregate, taken in the same transaction as the change, and in commit order when two transactions
write events of one aggregate at once."""
from __future__ import annotations

import json
import threading

import pytest
import sqlalchemy as sa
from marshmallow import RAISE, Schema, fields

from shared.db import scratch_database
from shared.envelope import Envelope, PayloadSchemas
from shared.messaging_tables import define_messaging_tables
from shared.unit_of_work import Origin, Producer, UnitOfWork, take_sequences

metadata = sa.MetaData()
outbox, inbox = define_messaging_tables(metadata)


class NotedV1(Schema):
    class Meta:
        unknown = RAISE

    n = fields.Integer(required=True, strict=True)


PRODUCER = Producer(service="notes", operator="Test Trust", schemas=PayloadSchemas({("noted", 1): NotedV1()}))


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, tmp_path):
    with scratch_database(request.param, tmp_path, "seq") as db:
        metadata.create_all(db.engine)
        yield db


def uow(database) -> UnitOfWork:
    return UnitOfWork(database, PRODUCER, outbox, inbox, Origin(correlation_id="c"))


def outbox_events(database) -> list[Envelope]:
    with database.reader() as session:
        bodies = session.execute(sa.select(outbox.c.body, outbox.c.aggregate, outbox.c.sequence)
                                 .order_by(outbox.c.id)).all()
    envelopes = [Envelope.from_dict(body) for body, _, _ in bodies]
    # the row's columns and the envelope it carries agree
    assert [(e.aggregate, e.sequence) for e in envelopes] == [(a, s) for _, a, s in bodies]
    return envelopes


class TestSequences:
    def test_each_aggregate_counts_from_one_without_gaps_across_units_of_work(self, database):
        for aggregate in ("school:1", "school:2", "school:1", "school:1", "school:2"):
            with uow(database) as work:
                work.publish("noted", {"n": 1}, aggregate=aggregate)
                work.commit()
        assert [(e.aggregate, e.sequence) for e in outbox_events(database)] == [
            ("school:1", 1), ("school:2", 1), ("school:1", 2), ("school:1", 3), ("school:2", 2)]

    def test_a_rolled_back_unit_of_work_gives_its_numbers_back(self, database):
        with uow(database) as work:
            work.publish("noted", {"n": 1}, aggregate="school:1")
            # not committed: rolled back on exit
        with uow(database) as work:
            work.publish("noted", {"n": 2}, aggregate="school:1")
            work.commit()
        assert [(e.payload["n"], e.sequence) for e in outbox_events(database)] == [(2, 1)]

    def test_publish_many_numbers_in_iteration_order_after_what_was_published_singly(self, database):
        with uow(database) as work:
            work.publish("noted", {"n": 0}, aggregate="school:1")
            work.commit()
        events = [("noted", {"n": n}, f"school:{n % 3}") for n in range(1, 3001)]
        with uow(database) as work:
            assert work.publish_many(events) == 3000
            work.commit()
        found = outbox_events(database)
        by_aggregate: dict[str, list[int]] = {}
        for envelope in found:
            by_aggregate.setdefault(envelope.aggregate, []).append(envelope.sequence)
        assert by_aggregate == {"school:1": list(range(1, 1002)), "school:2": list(range(1, 1001)),
                                "school:0": list(range(1, 1001))}
        assert [e.payload["n"] for e in found] == list(range(0, 3001))

    def test_the_envelope_carries_aggregate_and_sequence_on_the_wire(self, database):
        with uow(database) as work:
            envelope = work.publish("noted", {"n": 1}, aggregate="school:9")
            work.commit()
        wire = json.loads(envelope.to_json())
        assert (wire["aggregate"], wire["sequence"]) == ("school:9", 1)
        headers = envelope.amqp_properties()["application_headers"]
        assert (headers["x-aggregate"], headers["x-sequence"]) == ("school:9", 1)


def test_an_envelope_without_sequence_still_loads():
    legacy = {"event_id": "1b4e28ba-2fa1-11d2-883f-0016d3cca427", "type": "noted", "version": 1,
              "occurred_at": "2026-01-01T00:00:00Z", "producer": "notes", "operator": "t", "correlation_id": "c",
              "causation_id": None, "payload": {"n": 1}}
    loaded = Envelope.from_dict(legacy)
    assert (loaded.aggregate, loaded.sequence) == (None, None)
    assert "aggregate" not in loaded.to_dict()


def test_concurrent_writers_of_one_aggregate_get_numbers_in_commit_order(tmp_path):
    """Two PostgreSQL transactions take numbers for one aggregate: the second waits on the first's row
    lock, so its number, and its outbox id, come after the first's commit."""
    with scratch_database("postgresql", tmp_path, "seqpg") as database:
        metadata.create_all(database.engine)
        first_has_number = threading.Event()
        second_has_number = threading.Event()
        results: dict[str, object] = {}

        def first():
            with uow(database) as work:
                results["first"] = work.publish("noted", {"n": 1}, aggregate="school:1").sequence
                first_has_number.set()
                # while this transaction is open the second writer cannot get a number
                results["second_waited"] = not second_has_number.wait(1.0)
                work.commit()

        def second():
            first_has_number.wait(10)
            with uow(database) as work:  # blocks on the aggregate's row until `first` commits
                results["second"] = work.publish("noted", {"n": 2}, aggregate="school:1").sequence
                second_has_number.set()
                work.commit()

        threads = [threading.Thread(target=first), threading.Thread(target=second)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert results == {"first": 1, "second_waited": True, "second": 2}
        assert [(e.payload["n"], e.sequence) for e in outbox_events(database)] == [(1, 1), (2, 2)]


def test_take_sequences_reserves_consecutive_blocks(tmp_path):
    with scratch_database("sqlite", tmp_path, "blocks") as database:
        metadata.create_all(database.engine)
        with database.transaction() as session:
            assert take_sequences(session, {"a": 3, "b": 1}) == {"a": 1, "b": 1}
            assert take_sequences(session, {"a": 2}) == {"a": 4}
            session.commit()
