"""The partnership's business date: the calendar date in the United Kingdom.

Every "today" in a rule (notice dates, booking and cancellation cut-offs, overdue invoices,
joining dates) is the date in Europe/London, never the server's clock: containers run in UTC,
so between 00:00 and 01:00 British Summer Time the UTC date is still yesterday's.
"""
from __future__ import annotations

import datetime as dt
from typing import Callable
from zoneinfo import ZoneInfo

#: The time zone the partnership's business days are counted in.
UK = ZoneInfo("Europe/London")


def _now_utc() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def today(now: Callable[[], dt.datetime] = _now_utc) -> dt.date:
    """The date in Europe/London at the instant `now()` returns (an aware datetime).

    Guarantees: the same instant always gives the same date, whatever the process's TZ;
    a naive `now()` is refused rather than guessed at.
    """
    instant = now()
    if instant.tzinfo is None:
        raise ValueError("business_date.today needs an aware datetime, not a naive one")
    return instant.astimezone(UK).date()
