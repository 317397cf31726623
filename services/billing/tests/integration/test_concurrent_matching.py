"""On real PostgreSQL: a school's joining and its first purchase handled at the same moment.

Two handler transactions under READ COMMITTED: `member_joined` inserts the school and
then looks for its unmatched charges; `subscription_started` looks for the school and,
not seeing it, keeps its charge as unmatched. Without a lock each misses the other's
uncommitted row and the charge stays unmatched for good (the handover drill caught it).
The joining transaction here holds its commit for a moment, the purchase runs in that
window; the charge must end up matched to its payer either way.
"""
from __future__ import annotations

import threading
import time
import uuid

import pytest
from sqlalchemy import select

from billing.adapters.tables import charges, inbox, outbox
from billing.messages.consumed import MemberJoined, SubscriptionStarted
from billing.messages.published import PUBLISHED
from billing.service_layer import handlers
from shared.db import scratch_database
from shared.unit_of_work import Origin, Producer, UnitOfWork

PRODUCER = Producer("billing", "bucks-learning-trust", PUBLISHED)


@pytest.fixture
def database(tmp_path):
    with scratch_database("postgresql", tmp_path, "billing_race", migrations="billing:migrations") as db:
        yield db


def _uow(database, delay_before_commit=0.0):
    return UnitOfWork(database, PRODUCER, outbox, inbox, Origin(correlation_id="race"),
                      delay_before_commit=delay_before_commit)


def test_purchase_handled_while_the_joining_commits_is_matched_to_its_payer(database):
    urn = "231043"
    joined = MemberJoined().load({"urn": urn, "name": "Waddesdon School", "is_academy": False, "mat": None,
                                  "joined_on": "2026-01-05"})
    bought = SubscriptionStarted().load({
        "subscription_id": str(uuid.uuid4()), "urn": urn, "school_name": "Waddesdon School", "is_academy": False,
        "mat": None, "offering_code": "SI-CORE", "offering_name": "School improvement",
        "service_area": "school_improvement", "vat_treatment": "standard", "period_start": "2026-04-01",
        "period_end": "2027-03-31", "quantity": 1, "annual_price_pence": 291900,
        "census": {"date": "2025-10-02", "number_on_roll": 172}})
    errors = []

    def join():
        try:
            # the joining transaction holds its commit for 1 s after its work
            handlers.record_member_joined(_uow(database, delay_before_commit=1.0), joined)
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    joiner = threading.Thread(target=join)
    joiner.start()
    time.sleep(0.4)  # the school row is written, not yet committed
    handlers.record_subscription_charge(_uow(database), bought)
    joiner.join(10)
    assert not joiner.is_alive() and errors == []
    with database.reader() as session:
        rows = session.execute(select(charges.c.status, charges.c.payer_id).where(charges.c.urn == urn)).all()
    assert [(r.status, r.payer_id) for r in rows] != [] and all(r.status != "unmatched" for r in rows), rows
    assert {r.payer_id for r in rows} == {urn}
