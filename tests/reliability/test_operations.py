"""Operator commands on real dead letters and a real outbox: list, redeliver after a fix, backlog."""
from __future__ import annotations

import json
import sqlite3
import subprocess
import sys

from deploy.local import ROOT
from partnership_ops import ops
from tests.conftest import eventually
from tests.reliability import tools
from tests.reliability.test_event_delivery import BILLING_SUBSCRIPTION_QUEUE, join_many, subscription_payload


class TestDeadLetterCommands:
    def test_dead_lettered_event_is_listed_and_redelivered_after_the_fault_is_fixed(self, stack_factory,
                                                                                     sqlite_databases):
        # A permanent failure that an operator can fix: a rule in the database refuses every
        # charge (as a bug or a wrong rule would). One retry only, so it exhausts the attempts.
        # (A locked or unreachable database is transient: it is never dead-lettered.)
        stack = stack_factory(sqlite_databases, {"EVENT_RETRY_DELAYS_MS": "[100]"}).start("billing")
        billing_db = stack.database_urls["billing"]
        admin = sqlite3.connect(billing_db.removeprefix("sqlite:///"), timeout=30, isolation_level=None)
        admin.execute("CREATE TRIGGER refuse_charges BEFORE INSERT ON charges "
                      "BEGIN SELECT RAISE(ABORT, 'charges refused by the test'); END")
        event = tools.envelope("subscription_started",
                               subscription_payload("340001", "e0000000-0000-4000-8000-000000000001"),
                               producer="catalogue")
        try:
            tools.publish_raw(stack.amqp_uri, "catalogue.events", "subscription_started", event)
            letters = eventually(lambda: ops.list_dead_letters(stack.amqp_uri, [BILLING_SUBSCRIPTION_QUEUE]),
                                 timeout=40, message="the event dead-lettered")
        finally:
            admin.execute("DROP TRIGGER IF EXISTS refuse_charges")  # the fix
            admin.close()
        assert [(l["event_id"], l["reason"], l["attempts"]) for l in letters] == [(event["event_id"], "exhausted", 2)]
        assert "charges refused by the test" in letters[0]["error"]
        assert tools.count(billing_db, "charges") == 0

        moved = ops.redeliver(stack.amqp_uri, [BILLING_SUBSCRIPTION_QUEUE], {event["event_id"]})
        assert moved == 1
        eventually(lambda: tools.count(billing_db, "charges") == 1, message="charge after redelivery")
        assert ops.list_dead_letters(stack.amqp_uri, [BILLING_SUBSCRIPTION_QUEUE]) == []

    def test_handler_queues_are_found_from_the_service_class(self):
        assert ops.handler_queues("billing.entrypoints.service:BillingService") == [
            "evt-catalogue-subscription_cancelled--billing.on_subscription_cancelled",
            "evt-catalogue-subscription_ended--billing.on_subscription_ended",
            "evt-catalogue-subscription_renewed--billing.on_subscription_renewed",
            BILLING_SUBSCRIPTION_QUEUE,
            "evt-membership-contact_erased--billing.on_contact_erased",
            "evt-membership-contact_role_changed--billing.on_contact_role_changed",
            "evt-membership-member_details_changed--billing.on_member_details_changed",
            "evt-membership-member_joined--billing.on_member_joined",
            "evt-membership-member_left--billing.on_member_left",
            "evt-membership-organisation_contact_role_changed--billing.on_organisation_contact_role_changed",
            "evt-membership-school_converted_to_academy--billing.on_school_converted",
            "evt-scheduling-attendance_recorded--billing.on_attendance_recorded"]


class TestOutboxCommand:
    def test_outbox_backlog_is_reported_by_the_cli(self, stack_factory, sqlite_databases):
        stack = stack_factory(sqlite_databases, {"FAULT_RELAY_PAUSED": "true"}).start("membership")
        join_many(stack, 4)
        env = {"DATABASE_URL": stack.database_urls["membership"], "PATH": "/usr/bin:/bin"}
        result = subprocess.run([sys.executable, "-m", "partnership_ops", "outbox", "--config",
                                 str(ROOT / "services/membership/config.yml")],
                                capture_output=True, text=True, env=env, timeout=60)
        assert result.returncode == 0, result.stderr
        report = json.loads(result.stdout)
        assert report["unsent"] == 4
        assert report["oldest_unsent_age_seconds"] >= 0
