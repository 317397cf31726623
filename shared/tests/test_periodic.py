"""A timer that every replica runs does its work once per period (`shared.periodic`), on real SQLite and
PostgreSQL, each "replica" with its own engine and connections."""
from __future__ import annotations

import datetime as dt
import threading

import pytest
import sqlalchemy as sa

from shared.db import Database, scratch_database
from shared.periodic import claim_period, define_timer_periods_table, period_start

metadata = sa.MetaData()
define_timer_periods_table(metadata)
HOUR = 3600
NOW = dt.datetime(2026, 11, 29, 17, 42, 5)


@pytest.fixture(params=["sqlite", "postgresql"])
def replicas(request, tmp_path):
    with scratch_database(request.param, tmp_path, "periods") as first:
        metadata.create_all(first.engine)
        second = Database(first.url.render_as_string(hide_password=False))
        try:
            yield first, second
        finally:
            second.dispose()


def claim(database: Database, now: dt.datetime, *, commit: bool = True) -> bool:
    with database.transaction() as session:
        claimed = claim_period(session, "overdue_check", HOUR, now)
        if commit:
            session.commit()
        return claimed


class TestOncePerPeriod:
    def test_periods_are_clock_aligned(self):
        assert period_start(NOW, HOUR) == dt.datetime(2026, 11, 29, 17, 0)
        assert period_start(NOW, 86400) == dt.datetime(2026, 11, 29)

    def test_of_two_replicas_firing_in_one_hour_only_the_first_runs(self, replicas):
        first, second = replicas
        assert claim(first, NOW) is True
        assert claim(second, NOW + dt.timedelta(minutes=17)) is False  # same hour, another replica
        assert claim(second, NOW + dt.timedelta(minutes=18)) is True  # the next hour
        assert claim(first, NOW + dt.timedelta(minutes=19)) is False

    def test_a_failed_run_leaves_no_claim_so_the_next_firing_runs(self, replicas):
        first, second = replicas
        assert claim(first, NOW, commit=False) is True  # its transaction rolled back (the job failed)
        assert claim(second, NOW) is True

    def test_two_replicas_claiming_at_the_same_moment_give_one_winner(self, replicas):
        first, second = replicas
        if first.is_sqlite:
            pytest.skip("SQLite serves one process: its writers never overlap (BEGIN IMMEDIATE)")
        results = {}
        with first.transaction() as session:
            results["first"] = claim_period(session, "overdue_check", HOUR, NOW)
            # The second replica's claim waits on the first's uncommitted row (or comes after the commit).
            racer = threading.Thread(target=lambda: results.setdefault("second", claim(second, NOW)))
            racer.start()
            session.commit()
        racer.join(30)
        assert not racer.is_alive()
        assert results == {"first": True, "second": False}
