"""partnership_ops.handover: building `function_handed_over` (shared.handover's schema) and writing it
to the new outbox in the importing transaction. The cut-over itself runs on the real broker in
tests/handover/."""
from __future__ import annotations

import datetime as dt
import json

import pytest
import sqlalchemy as sa
from marshmallow import ValidationError

from partnership_ops import handover
from shared.messaging_tables import define_messaging_tables


class TestEvent:
    def test_payload_is_the_agreed_four_fields(self):
        envelope = handover.handed_over_envelope("scheduling", "bucks-learning-trust", "great-learners-trust",
                                                 dt.date(2027, 9, 1))
        assert envelope.payload == {"function": "scheduling", "from_operator": "bucks-learning-trust",
                                    "to_operator": "great-learners-trust", "effective_date": "2027-09-01"}
        assert (envelope.type, envelope.version, envelope.producer, envelope.operator, envelope.aggregate) == (
            "function_handed_over", 1, "scheduling", "great-learners-trust", "function:scheduling")

    def test_a_bad_function_name_is_refused(self):
        with pytest.raises(ValidationError):
            handover.handed_over_envelope("Scheduling!", "a", "b", dt.date(2027, 9, 1))

    def test_the_outbox_writer_puts_it_in_the_outbox_with_the_next_sequence_number(self, tmp_path):
        metadata = sa.MetaData()
        outbox, _ = define_messaging_tables(metadata)
        engine = sa.create_engine(f"sqlite:///{tmp_path / 'new.db'}")
        metadata.create_all(engine)
        envelope = handover.handed_over_envelope("billing", "bucks-learning-trust", "buckinghamshire-council",
                                                 dt.date(2027, 4, 1))
        with engine.begin() as connection:
            report = handover.outbox_writer(envelope)(connection, {"outbox": outbox})
        assert report == {"handover_event": {"event_id": envelope.event_id, **envelope.payload}}
        with engine.connect() as connection:
            [row] = connection.execute(sa.select(outbox)).mappings().all()
        engine.dispose()
        body = json.loads(row["body"])
        assert (row["event_id"], row["event_type"], row["sent_at"]) == (envelope.event_id, "function_handed_over",
                                                                        None)
        assert (body["aggregate"], body["sequence"]) == ("function:billing", 1)


class TestStoppingTheOldInstance:
    def test_a_process_already_gone_is_reported_as_such(self):
        import subprocess
        import sys

        child = subprocess.Popen([sys.executable, "-c", "pass"])
        child.wait()
        assert handover.stop_process(child.pid) == {"pid": child.pid, "stopped": "already"}

    def test_a_running_process_is_stopped_with_sigterm(self):
        import subprocess
        import sys

        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        try:
            report = handover.stop_process(child.pid, timeout=10)
        finally:
            child.kill()
            child.wait()
        assert report["stopped"] == "sigterm"
