"""The cut-over on the real broker, one service at a time: refused while the old instance
still consumes; rows the broker would not route travel in the archive and are published by
the new instance, before its `function_handed_over`."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import sqlalchemy as sa

from deploy.local import ROOT
from partnership_ops import handover
from deploy.local import provision_broker
from partnership_ops import links
from partnership_ops.topology import Management
from tests.archive_tap import ArchiveTap
from tests.conftest import (TEST_BROKER_PASSWORDS, TEST_EVENT_SETTINGS, TEST_TOPOLOGY_SETTINGS, TEST_USER_PREFIX,
                            Databases, eventually)
from tests.integration.billing_upstream import Upstream
from tests.handover.test_drill import OPS_TOKEN, start_instance
from tests.reliability import tools
from tests.reliability.test_event_delivery import subscription_payload


def run_ops(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "partnership_ops", *args], capture_output=True, text=True, timeout=300,
                          cwd=ROOT, env={**os.environ, **TEST_EVENT_SETTINGS, **OPS_TOKEN})


def table_names(url: str) -> list[str]:
    engine = sa.create_engine(url)
    try:
        return sa.inspect(engine).get_table_names()
    finally:
        engine.dispose()


class TestRefusals:
    def test_handover_is_refused_while_the_old_instance_still_consumes(self, stack_factory, sqlite_databases, tmp_path):
        stack = stack_factory(sqlite_databases).start("billing")
        target = sqlite_databases.url("billing-new")
        result = run_ops("handover", "--service", "billing", "--from-database", stack.database_urls["billing"],
                         "--from-amqp", stack.amqp_uri, "--from-operator", "bucks-learning-trust",
                         "--to-database", target, "--to-operator", "buckinghamshire-council",
                         "--archive", str(tmp_path / "a.tar.gz"))
        assert result.returncode == 2, result.stdout + result.stderr
        refusal = json.loads(result.stderr)["refused"]
        assert refusal.startswith("StillConsuming") and "evt-catalogue-subscription_started--billing" in refusal
        assert table_names(target) == [] and not (tmp_path / "a.tar.gz").exists()
        assert stack.processes["billing"].alive()

    def test_handover_to_the_same_operator_is_refused(self, tmp_path):
        result = run_ops("handover", "--service", "billing", "--from-database", "sqlite:///x.db", "--from-amqp",
                         "amqp://", "--from-operator", "trust", "--to-database", "sqlite:///y.db", "--to-operator",
                         "trust", "--archive", str(tmp_path / "a.tar.gz"))
        assert result.returncode == 2 and "must differ" in result.stderr


class TestCarriedOutbox:
    def test_unroutable_rows_travel_and_the_new_instance_publishes_them_before_the_handover(
            self, stack_factory, tmp_path):
        sqlite, postgresql = Databases("sqlite", tmp_path), Databases("postgresql", tmp_path)
        try:
            stack = stack_factory(sqlite).start("billing")
            # A broken topology on the old broker (billing's archive gone, nothing else bound to
            # billing.events): its charge_recorded rows are returned as unroutable and stay unsent.
            Management.for_amqp_uri(stack.amqp_uri).request(
                "DELETE", f"/api/queues/{links.vhost_of(stack.amqp_uri)}/billing.events.archive")
            upstream = Upstream(stack.amqp_uri)
            for index in range(3):  # known schools: their charges are matched and announced
                upstream.member_joined(f"31000{index}", f"School 31000{index}")
            eventually(lambda: tools.count(stack.database_urls["billing"], "inbox") == 3, message="3 schools")
            for index in range(3):
                event = tools.envelope("subscription_started", subscription_payload(
                    f"31000{index}", f"c0000000-0000-4000-8000-00000000000{index}"), producer="catalogue")
                tools.publish_raw(stack.amqp_uri, "catalogue.events", "subscription_started", event)
            old_db = stack.database_urls["billing"]
            eventually(lambda: tools.count(old_db, "outbox", "WHERE sent_at IS NULL") == 3, message="3 charges")
            new_db = postgresql.url("billing")
            result = run_ops("handover", "--service", "billing", "--from-database", old_db, "--from-amqp",
                             stack.amqp_uri, "--from-operator", "bucks-learning-trust", "--to-database", new_db,
                             "--to-operator", "buckinghamshire-council", "--archive", str(tmp_path / "b.tar.gz"),
                             "--effective-date", "2027-04-01", "--drain-timeout", "2",
                             "--stop-pid", str(stack.processes["billing"].process.pid))
            assert result.returncode == 0, result.stderr
            report = json.loads(result.stdout)
            assert report["drain"]["left_unsent_by_type"] == {"charge_recorded": 3}
            assert report["import"]["outbox_unsent_events"] == 3
            old_ids = [r[0] for r in _rows(old_db, "SELECT event_id FROM outbox ORDER BY id")]

            # The topology repaired (provisioned again: the archive is back) before the new instance starts.
            provision_broker(stack.amqp_uri, TEST_BROKER_PASSWORDS, user_prefix=TEST_USER_PREFIX,
                             settings=TEST_TOPOLOGY_SETTINGS)
            start_instance(stack, "billing", amqp_uri=stack.service_amqp_uri("billing"), database_url=new_db,
                           operator="buckinghamshire-council", logs=tmp_path / "logs")
            archive = ArchiveTap(stack.amqp_uri, ["billing"])
            eventually(lambda: len(archive.drain()) == 4, timeout=60,
                       message="carried rows and the handover published")
            received = archive.drain()
            assert [e["event_id"] for e in received[:3]] == old_ids
            assert {e["operator"] for e in received[:3]} == {"bucks-learning-trust"}
            last = received[3]
            assert (last["type"], last["operator"], last["payload"]["effective_date"]) == (
                "function_handed_over", "buckinghamshire-council", "2027-04-01")
        finally:
            postgresql.drop_all()


def _rows(url, query):
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            return list(connection.execute(sa.text(query)))
    finally:
        engine.dispose()


class TestQuiesce:
    def test_a_running_instance_stops_consuming_drains_its_outbox_and_still_stops_cleanly(
            self, stack_factory, sqlite_databases, tmp_path):
        from partnership_ops import links
        from tests.conftest import http_json

        stack = stack_factory(sqlite_databases).start("billing")
        billing, amqp = stack.url("billing"), stack.amqp_uri
        db = stack.database_urls["billing"]
        upstream = Upstream(amqp)
        for index in range(3):
            upstream.member_joined(f"32000{index}", f"School 32000{index}")
        eventually(lambda: tools.count(db, "inbox") == 3, message="3 schools known")
        for index in range(3):
            event = tools.envelope("subscription_started", subscription_payload(
                f"32000{index}", f"d0000000-0000-4000-8000-00000000000{index}"), producer="catalogue")
            tools.publish_raw(amqp, "catalogue.events", "subscription_started", event)
        eventually(lambda: tools.count(db, "inbox") == 6, message="3 SLAs charged")
        queues = [h.queue for h in links.handlers_of("billing")]
        assert all(s["consumers"] == 1 for s in handover.queue_consumers(amqp, queues).values())

        status, body = http_json("POST", f"{billing}/ops/quiesce")
        assert status == 200 and body["quiesced"] is True and sorted(body["quiesced_now"]) == queues
        assert set(body["handlers"].values()) == {"quiesced"}
        assert handover.assert_not_consuming(amqp, queues, wait=5)  # the broker agrees: 0 consumers
        status, again = http_json("POST", f"{billing}/ops/quiesce")
        assert status == 200 and again["quiesced_now"] == []  # idempotent
        # Events keep arriving and wait in the queue; nothing is applied any more.
        event = tools.envelope("subscription_started", subscription_payload(
            "320009", "d0000000-0000-4000-8000-000000000009"), producer="catalogue")
        tools.publish_raw(amqp, "catalogue.events", "subscription_started", event)
        waiting = "evt-catalogue-subscription_started--billing.on_subscription_started"
        eventually(lambda: tools.queue_depth(amqp, waiting) == 1, message="the event waits in its queue")
        time.sleep(1.0)
        assert tools.count(db, "inbox") == 6
        # The relay still runs: the outbox drains; HTTP still serves.
        outbox = eventually(lambda: (lambda b: b if b["drained"] else None)(http_json("GET", f"{billing}/ops/outbox")[1]),
                            message="drained")
        assert (outbox["unsent"], outbox["handler_workers_running"]) == (0, 0)
        archived = ArchiveTap(amqp, ["billing"])
        archived.drain_sent(db)
        assert archived.count("charge_recorded") == 3
        assert http_json("GET", f"{billing}/health")[0] == 200
        # And SIGTERM still stops it cleanly (a quiesced handler is not unregistered twice).
        process = stack.processes["billing"].process
        process.terminate()
        assert process.wait(20) == 0
        log = stack.processes["billing"].log_path.read_text(errors="replace")
        assert "Traceback" not in log, log[-3000:]
        assert tools.queue_depth(amqp, waiting) == 1

    def test_the_quiesce_command_reports_a_drained_instance(self, stack_factory, sqlite_databases):
        stack = stack_factory(sqlite_databases).start("billing")
        result = run_ops("quiesce", "--url", stack.url("billing"), "--timeout", "10")
        assert result.returncode == 0, result.stderr
        report = json.loads(result.stdout)
        assert report["drained"] is True and len(report["quiesced"]) == 12 and report["unsent"] == 0
