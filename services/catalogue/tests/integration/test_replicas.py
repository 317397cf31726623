"""Two replicas of the catalogue on one PostgreSQL database receive the same purchase at the same
moment: one SLA is sold and the other purchase is refused as overlapping (a 409 over HTTP), never two
SLAs (billing would charge twice). Before the fix both checked the school's SLAs, found none, and both
inserted. SQLite does not apply: it serves one process, whose writers `BEGIN IMMEDIATE` serialises.

The first purchase is held just before its commit until the second is seen waiting on a lock in
PostgreSQL (pg_stat_activity), or has finished: the race is forced, not hoped for.
"""
from __future__ import annotations

import datetime as dt
import json
import threading
import time
import uuid
from decimal import Decimal

import pytest
import sqlalchemy as sa

from catalogue.adapters.tables import inbox, outbox, subscriptions
from catalogue.domain import model
from catalogue.messages import consumed
from catalogue.messages.published import PUBLISHED
from catalogue.service_layer import commands, handlers
from shared.db import Database, scratch_database
from shared.unit_of_work import Origin, Producer, UnitOfWork


def offering_command(edition: dict | None = None, **fields) -> commands.PublishOffering:
    """A `PublishOffering` as its request schema loads it: the edition a `PriceEdition`."""
    return commands.PublishOffering(**fields, edition=commands.PriceEdition(**edition) if edition else None)


PRODUCER = Producer(service="catalogue", operator="test-operator", schemas=PUBLISHED)
D = dt.date
URN = "110394"


class HeldBeforeCommit(UnitOfWork):
    """Signals `ready` when its work is done and commits only once `release` is set."""

    def __init__(self, database, ready: threading.Event, release: threading.Event):
        super().__init__(database, PRODUCER, outbox, inbox, Origin(correlation_id=str(uuid.uuid4())))
        self.ready, self.release = ready, release

    def commit(self) -> None:
        self.ready.set()
        assert self.release.wait(30), "never released"
        super().commit()


def uow(database, event=None) -> UnitOfWork:
    return UnitOfWork(database, PRODUCER, outbox, inbox, Origin(correlation_id=str(uuid.uuid4()), event=event))


def typed(schema, payload: dict):
    return schema().load(json.loads(json.dumps(payload, default=str)))


@pytest.fixture
def replicas(tmp_path):
    with scratch_database("postgresql", tmp_path, "catalogue_replicas", migrations="catalogue:migrations") as db:
        other = Database(db.url.render_as_string(hide_password=False))
        try:
            yield db, other
        finally:
            other.dispose()


def a_member_with_a_head(database) -> str:
    handlers.record_member_joined(uow(database), typed(consumed.MemberJoined, {
        "urn": URN, "name": f"School {URN}", "establishment_type": "community", "phase": "primary",
        "is_academy": False, "mat": None, "number_on_roll": 210, "census_date": D(2025, 10, 2),
        "joined_on": D(2026, 1, 5)}))
    contact_id = str(uuid.uuid4())
    handlers.record_contact_role(uow(database), typed(consumed.ContactRoleChanged, {
        "contact_id": contact_id, "urn": URN, "display_name": f"Head of {URN}", "role": "head_teacher",
        "may_commit_spending": True, "active": True, "effective_date": D(2026, 1, 5)}))
    handlers.publish_offering(uow(database), offering_command(**{
        "code": "SI-CORE", "name": "School improvement core offer", "service_area": "school_improvement",
        "vat_treatment": "standard", "eligible_phases": ["primary", "secondary"], "edition": {
            "year": 2026, "terms": {"model": "per_pupil", "base_fee_pence": 150000,
                                    "rate_by_phase": {"primary": Decimal("825"), "secondary": Decimal("610")},
                                    "minimum_pence": 200000, "maximum_pence": 900000},
            "entitlements": [{"kind": "in_house_session", "quantity": 2}]}}), provider="test-operator")
    return contact_id


def second_waits_or_ends(database, second: threading.Thread, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and second.is_alive():
        with database.reader() as session:
            if session.execute(sa.text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                       "AND wait_event_type = 'Lock'")).scalar_one():
                return
        time.sleep(0.02)
    assert not second.is_alive(), "the second purchase neither waited nor finished"


class TestTheSamePurchaseOnTwoReplicasAtOnce:
    def test_one_sla_is_sold_and_the_other_purchase_is_refused_as_overlapping(self, replicas):
        first, second = replicas
        head = a_member_with_a_head(first)
        command = commands.BuySubscription(urn=URN, offering_code="SI-CORE", edition_year=2026, contact_id=head)
        ready, release = threading.Event(), threading.Event()
        outcomes = {}

        def buy(key, unit):
            try:
                outcomes[key] = handlers.buy_subscription(unit, command, today=D(2026, 3, 2))
            except Exception as exc:  # noqa: BLE001 - asserted below
                outcomes[key] = exc

        one = threading.Thread(target=buy, args=("first", HeldBeforeCommit(first, ready, release)))
        one.start()
        assert ready.wait(30)
        two = threading.Thread(target=buy, args=("second", uow(second)))
        two.start()
        try:
            second_waits_or_ends(first, two)
        finally:
            release.set()
        one.join(30)
        two.join(30)
        assert isinstance(outcomes["first"], model.Subscription), outcomes
        assert isinstance(outcomes["second"], model.Overlapping), outcomes  # the entrypoint answers 409
        with first.reader() as session:
            sold = session.execute(sa.select(subscriptions.c.id).where(subscriptions.c.urn == URN)).all()
            started = session.execute(sa.select(sa.func.count()).where(outbox.c.event_type == "subscription_started")
                                      ).scalar_one()
        assert len(sold) == 1 and started == 1
