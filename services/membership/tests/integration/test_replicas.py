"""Two replicas of membership on one PostgreSQL database change one school at the same moment: both
changes take effect (before the fix, the second `save` wrote back the row it had read before the first
committed, and the first change was silently lost). SQLite does not apply: it serves one process, and
its writers are serialised by `BEGIN IMMEDIATE`.

Each "replica" has its own engine. The first change is held just before its commit until the second
is seen waiting on a lock in PostgreSQL (pg_stat_activity), so the race is forced, not hoped for.
"""
from __future__ import annotations

import datetime as dt
import threading
import time
import uuid

import pytest
from sqlalchemy import text

from membership.adapters import repository
from membership.adapters.tables import inbox, outbox
from membership.domain import model
from membership.messages.published import PUBLISHED
from membership.service_layer import commands, handlers
from shared.db import Database, scratch_database
from shared.unit_of_work import Origin, Producer, UnitOfWork

PRODUCER = Producer(service="membership", operator="test-operator", schemas=PUBLISHED)
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


def uow(database) -> UnitOfWork:
    return UnitOfWork(database, PRODUCER, outbox, inbox, Origin(correlation_id=str(uuid.uuid4())))


def wait_until_someone_waits_on_a_lock(database, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with database.reader() as session:
            waiting = session.execute(text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock'")).scalar_one()
        if waiting:
            return
        time.sleep(0.02)
    raise AssertionError("the second change never waited on the first")


@pytest.fixture
def replicas(tmp_path):
    with scratch_database("postgresql", tmp_path, "membership_replicas", migrations="membership:migrations") as db:
        other = Database(db.url.render_as_string(hide_password=False))
        try:
            yield db, other
        finally:
            other.dispose()


def school(**overrides):
    data = dict(urn=URN, dfe_number="825/2001", name="Haddenham Community Infant School",
                establishment_type="community", phase="primary", local_authority="Buckinghamshire",
                postcode="HP17 8DS", number_on_roll=172, census_date=D(2025, 10, 2), joined_on=D(2026, 4, 1), mat=None)
    data.update(overrides)
    return commands.JoinSchool(**data)


def race(first_database, first, second_database, second):
    """Run `first(uow)` until just before its commit, then `second(uow)` on the other replica; release the
    first once the second waits on it. Returns the errors of each (None when it succeeded)."""
    ready, release = threading.Event(), threading.Event()
    errors = {}

    def run(key, work, unit):
        try:
            work(unit)
            errors[key] = None
        except Exception as exc:  # noqa: BLE001 - reported by the caller's assertion
            errors[key] = exc

    one = threading.Thread(target=run, args=("first", first, HeldBeforeCommit(first_database, ready, release)))
    one.start()
    assert ready.wait(30)
    two = threading.Thread(target=run, args=("second", second, uow(second_database)))
    two.start()
    try:
        wait_until_someone_waits_on_a_lock(first_database)
    finally:
        release.set()
    one.join(30)
    two.join(30)
    assert not one.is_alive() and not two.is_alive()
    return errors


class TestTwoReplicasChangeOneSchool:
    def test_two_changes_of_details_at_once_both_take_effect(self, replicas):
        first, second = replicas
        handlers.join_school(uow(first), school())
        errors = race(first, lambda u: handlers.change_details(u, URN, D(2026, 9, 1), {"name": "Haddenham Infant"}),
                      second, lambda u: handlers.change_details(u, URN, D(2026, 9, 1), {"postcode": "HP17 8DT"}))
        assert errors == {"first": None, "second": None}
        with first.reader() as session:
            member = repository.open_member(session, URN)
        assert (member.name, member.postcode) == ("Haddenham Infant", "HP17 8DT")

    def test_a_census_and_a_change_of_details_at_once_both_take_effect(self, replicas):
        first, second = replicas
        handlers.join_school(uow(first), school())
        errors = race(first, lambda u: handlers.record_census(u, URN, D(2026, 10, 1), 190),
                      second, lambda u: handlers.change_details(u, URN, D(2026, 9, 1), {"name": "Haddenham Infant"}))
        assert errors == {"first": None, "second": None}
        with first.reader() as session:
            member = repository.open_member(session, URN)
        assert (member.name, member.number_on_roll) == ("Haddenham Infant", 190)

    def test_the_same_school_joining_twice_at_once_joins_once(self, replicas):
        first, second = replicas
        errors = race(first, lambda u: handlers.join_school(u, school()),
                      second, lambda u: handlers.join_school(u, school()))
        # refused by the rule (a 409 naming `urn`), not by the database's unique index (a 500)
        assert errors["first"] is None and isinstance(errors["second"], model.AlreadyMember), errors
        with first.reader() as session:
            assert len(repository.records_of(session, URN)) == 1
