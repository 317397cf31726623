"""partnership_ops.ops: the `partnership-ops` command line without a broker: argument refusals, the
outbox report, `topology print`, and how a handler queue and a `--from` are read. The commands that
talk to RabbitMQ run on the real broker in tests/ (integration/test_topology.py,
reliability/test_operations.py, handover/)."""
from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys

import pytest
import sqlalchemy as sa

from partnership_ops import event_archive, ops
from shared.messaging_tables import define_messaging_tables

QUEUE = "evt-membership-member_joined--billing.on_member_joined"


def run(capsys, *argv: str) -> tuple[int, dict | None, str]:
    status = ops.main(list(argv))
    out, err = capsys.readouterr()
    return status, (json.loads(out) if out.strip() else None), err


class TestCommandLine:
    def test_it_runs_as_a_module_and_names_itself(self):
        result = subprocess.run([sys.executable, "-m", "partnership_ops", "--help"], capture_output=True, text=True,
                                timeout=60)
        assert result.returncode == 0 and result.stdout.startswith("usage: partnership-ops")
        for command in ("topology", "migrate", "dead-letters", "redeliver", "outbox", "handover", "replay"):
            assert command in result.stdout

    def test_migrate_without_a_database_is_refused_with_status_2(self, capsys, monkeypatch):
        monkeypatch.delenv("DATABASE_URL", raising=False)
        status, _, err = run(capsys, "migrate", "--service", "billing")
        assert status == 2 and "no database" in json.loads(err)["refused"]

    def test_topology_needs_services_or_a_definitions_file(self, capsys):
        with pytest.raises(SystemExit) as exit_:
            ops.main(["topology", "print"])
        assert exit_.value.code == 2 and "--service NAME" in capsys.readouterr().err

    def test_topology_print_shows_a_definitions_file_as_it_is(self, capsys, tmp_path):
        document = {"exchanges": [{"name": "billing.events", "type": "topic"}], "queues": [], "bindings": []}
        path = tmp_path / "definitions.json"
        path.write_text(json.dumps(document))
        assert run(capsys, "topology", "print", "--definitions", str(path))[:2] == (0, document)

    def test_topology_check_against_an_unreachable_broker_fails_naming_it(self, capsys, tmp_path):
        path = tmp_path / "definitions.json"
        path.write_text(json.dumps({"exchanges": []}))
        status, out, err = run(capsys, "topology", "check", "--definitions", str(path),
                               "--amqp", "amqp://guest:guest@127.0.0.1:9/", "--management-url", "http://127.0.0.1:9")
        # check() reports what it could not read as a difference: exit 1, the broker named
        assert status == 1 and not out["matches"] and "127.0.0.1:9" in out["problems"][0]

    def test_a_service_not_installed_here_is_refused_naming_it(self, capsys):
        status, _, err = run(capsys, "topology", "print", "--service", "no_such_service")
        assert status == 2 and "no installed service 'no_such_service'" in json.loads(err)["failed"]

    def test_redeliver_needs_event_ids_or_all(self, capsys, tmp_path):
        config = tmp_path / "config.yml"
        config.write_text("AMQP_URI: amqp://guest:guest@127.0.0.1:9/\nDATABASE_URL: sqlite://\n")
        with pytest.raises(SystemExit) as exit_:
            ops.main(["redeliver", "--config", str(config), "--service", "billing", "--queue", QUEUE])
        assert exit_.value.code == 2 and "--event-id" in capsys.readouterr().err

    def test_rewriting_or_purging_dead_letters_needs_the_person(self, capsys, tmp_path):
        config = tmp_path / "config.yml"
        config.write_text("AMQP_URI: amqp://guest:guest@127.0.0.1:9/\nDATABASE_URL: sqlite://\n")
        for flag in ("--rewrite", "--purge"):
            with pytest.raises(SystemExit) as exit_:
                ops.main(["dead-letters", "--config", str(config), "--service", "billing", "--queue", QUEUE, flag])
            assert exit_.value.code == 2 and "--mentions CONTACT_ID" in capsys.readouterr().err
        with pytest.raises(SystemExit):
            ops.main(["dead-letters", "--config", str(config), "--service", "billing", "--queue", QUEUE,
                      "--mentions", "c-1", "--rewrite", "--purge"])

    def test_handover_to_the_same_operator_is_refused(self, capsys, tmp_path):
        with pytest.raises(SystemExit) as exit_:
            ops.main(["handover", "--service", "billing", "--from-database", "sqlite://", "--from-amqp", "amqp://x",
                      "--from-operator", "same", "--to-database", "sqlite://", "--to-operator", "same",
                      "--archive", str(tmp_path / "a.tar.gz")])
        assert exit_.value.code == 2 and "--to-operator must differ" in capsys.readouterr().err

    def test_a_date_that_is_not_iso_is_refused(self, capsys):
        with pytest.raises(SystemExit):
            ops.main(["import", "--service", "billing", "--database", "sqlite://", "--archive", "a.tar.gz",
                      "--effective-date", "1 April"])
        assert "is not a date YYYY-MM-DD" in capsys.readouterr().err


class TestOutboxReport:
    def test_unsent_rows_their_age_and_the_failing_ones_are_reported(self, capsys, tmp_path):
        url = f"sqlite:///{tmp_path / 'billing.db'}"
        metadata = sa.MetaData()
        outbox, _ = define_messaging_tables(metadata)
        engine = sa.create_engine(url)
        metadata.create_all(engine)
        now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
        with engine.begin() as connection:
            for index, (sent, error) in enumerate([(True, None), (False, None), (False, "NO_ROUTE")]):
                connection.execute(outbox.insert().values(
                    event_id=f"e{index}", event_type="invoice_issued", version=1, aggregate="payer:1", sequence=index,
                    body="{}", created_at=now - dt.timedelta(seconds=60 * (3 - index)), next_attempt_at=now,
                    attempts=1 if error else 0, last_error=error, sent_at=now if sent else None))
        engine.dispose()
        config = tmp_path / "config.yml"
        config.write_text(f"AMQP_URI: amqp://guest:guest@127.0.0.1:9/\nDATABASE_URL: {url}\n")
        status, report, _ = run(capsys, "outbox", "--config", str(config))
        assert status == 0 and report["unsent"] == 2
        assert 110 <= report["oldest_unsent_age_seconds"] <= 180
        assert [(f["event_id"], f["last_error"]) for f in report["failing"]] == [("e2", "NO_ROUTE")]


class TestReading:
    def test_a_handler_queue_names_its_source_and_type(self):
        assert ops._queue_source(QUEUE) == ("membership", "member_joined")

    def test_a_queue_that_is_not_a_handlers_is_refused(self):
        with pytest.raises(LookupError, match="not a handler queue"):
            ops._queue_source("billing.retry.1000ms")

    @pytest.mark.parametrize("text,expected", [
        (None, "first"), ("first", "first"), ("last", "last"), ("next", "next"), ("42", 42),
        ("2027-04-01T09:00:00Z", dt.datetime(2027, 4, 1, 9, tzinfo=dt.timezone.utc)),
        ("2027-04-01T09:00:00", dt.datetime(2027, 4, 1, 9, tzinfo=dt.timezone.utc))])
    def test_from_is_a_position_or_a_time(self, text, expected):
        assert event_archive.parse_start(text) == expected

    def test_from_anything_else_is_refused(self):
        with pytest.raises(ValueError, match="--from 'yesterday'"):
            event_archive.parse_start("yesterday")
