"""Timers that run once per period across replicas.

Every replica of a service runs its nameko timers, so an hourly job would run once per replica.
`claim_period` makes it once per period: the job's transaction first inserts a row
`(timer, period start)` into `timer_periods`; the replica whose insert wins runs the job, the
others find the row and skip. The claim is part of the job's own transaction, so a job that
fails or a process that dies mid-run leaves no claim behind and the next firing in that period
(on any replica) runs it. On PostgreSQL a second claimant of the same period waits for the first
transaction to end (the row's unique key) and then skips, or claims if the first rolled back.
"""
from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Session

from shared.messaging_tables import utcnow


def define_timer_periods_table(metadata: sa.MetaData) -> sa.Table:
    """`timer_periods`: one row per timer and period that some replica has run."""
    return sa.Table("timer_periods", metadata, *_columns())


def _columns() -> list[sa.Column]:
    return [
        sa.Column("timer", sa.String(100), primary_key=True),
        sa.Column("period_start", sa.DateTime, primary_key=True),
        sa.Column("claimed_at", sa.DateTime, nullable=False),
    ]


def create_timer_periods(op) -> None:
    """For a service's Alembic migration: create `timer_periods`."""
    op.create_table("timer_periods", *_columns())


def period_start(now: dt.datetime, interval_seconds: int) -> dt.datetime:
    """The start of the period of `interval_seconds` (counted from the Unix epoch, UTC) holding `now`."""
    epoch = dt.datetime(1970, 1, 1)
    elapsed = int((now - epoch).total_seconds())
    return epoch + dt.timedelta(seconds=elapsed - elapsed % interval_seconds)


_CLAIM = sa.text("INSERT INTO timer_periods (timer, period_start, claimed_at) VALUES (:timer, :start, :now) "
                 "ON CONFLICT (timer, period_start) DO NOTHING RETURNING timer")


def claim_period(session: Session, timer: str, interval_seconds: int, now: dt.datetime | None = None) -> bool:
    """Claim the current period of `timer` in `session`'s transaction; True if this caller is the one
    to run it (the claim holds only if that transaction commits)."""
    now = now or utcnow()
    claimed = session.execute(_CLAIM, {"timer": timer, "start": period_start(now, interval_seconds), "now": now})
    return claimed.first() is not None
