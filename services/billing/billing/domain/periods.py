"""Dates of agreements, academic years and billing periods. Pure Python, no I/O.

Periods include both ends. An agreement of several years is counted back from
its end date in whole years, so a conversion or a late start falls in exactly
one agreement year, whose length (365 or 366 days) is the pro-rating base.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import re

DAY = dt.timedelta(days=1)


def shift_years(day: dt.date, years: int) -> dt.date:
    """The same day `years` later (or earlier); 29 February becomes 28 February."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return dt.date(day.year + years, 2, 28)


def days_between(start: dt.date, end: dt.date) -> int:
    """Days from start to end, both included (0 when end is before start)."""
    return max(0, (end - start).days + 1)


def year_ending(year_end: dt.date) -> tuple[dt.date, dt.date]:
    """The whole year that ends on `year_end`."""
    return shift_years(year_end, -1) + DAY, year_end


def agreement_year_containing(day: dt.date, agreement_end: dt.date) -> tuple[dt.date, dt.date]:
    """The agreement year (counted back from the agreement's end) in which `day` falls."""
    year_end = agreement_end
    k = 0
    while True:
        earlier = shift_years(agreement_end, -(k + 1))
        if earlier < day:
            break
        k += 1
        year_end = earlier
    return year_ending(year_end)


def academic_year_of(day: dt.date) -> int:
    """The academic year (1 September to 31 August) a day falls in, named by its first calendar year."""
    return day.year if day.month >= 9 else day.year - 1


def month_ends_of_academic_year(year: int, up_to: dt.date) -> list[dt.date]:
    """The last day of each month of academic year `year` (30 September ... 31 August), up to `up_to`."""
    ends = []
    for i in range(12):
        month, calendar_year = (9 + i - 1) % 12 + 1, year + (9 + i - 1) // 12
        first_of_next = dt.date(calendar_year + month // 12, month % 12 + 1, 1)
        end = first_of_next - DAY
        if end > up_to:
            break
        ends.append(end)
    return ends


def academic_year_label(year: int) -> str:
    return f"{year}/{(year + 1) % 100:02d}"


@dataclasses.dataclass(frozen=True)
class BillingPeriod:
    label: str
    start: dt.date
    end: dt.date


TERMS = {"autumn": ((9, 1), (12, 31), 0), "spring": ((1, 1), (3, 31), 1), "summer": ((4, 1), (8, 31), 1)}
_LABEL = re.compile(r"^(\d{4})/(\d{2})(?: (autumn|spring|summer))?$")


def billing_period(label: str, frequency: str) -> BillingPeriod:
    """`2026/27` (annual: 1 September to 31 August) or `2026/27 autumn` (termly); refuses the other kind.

    Terms for billing: autumn September-December, spring January-March, summer April-August.
    """
    match = _LABEL.match(label or "")
    if not match or (int(match.group(1)) + 1) % 100 != int(match.group(2)):
        raise ValueError("a period is an academic year like 2026/27, or a term like 2026/27 autumn")
    year, term = int(match.group(1)), match.group(3)
    if frequency == "annual" and term:
        raise ValueError("this operator bills annually: give an academic year like 2026/27")
    if frequency == "termly" and not term:
        raise ValueError("this operator bills termly: give a term like 2026/27 autumn")
    if not term:
        return BillingPeriod(label, dt.date(year, 9, 1), dt.date(year + 1, 8, 31))
    (m1, d1), (m2, d2), offset = TERMS[term]
    return BillingPeriod(label, dt.date(year + offset, m1, d1), dt.date(year + offset, m2, d2))
