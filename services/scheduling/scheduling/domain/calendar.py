"""School calendars: is a school open on a given day? Pure Python, no I/O.

A school is open on a weekday inside one of its term periods (half terms are gaps
between periods), unless it is a bank holiday of England and Wales or one of that
school's own INSET days. Community and voluntary-controlled schools follow their
LA's term dates; academies, free, foundation and voluntary-aided schools may set their
own and follow the LA's until they do.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from typing import Iterable, Iterator

import holidays

LA_TERM_TYPES = frozenset({"community", "voluntary_controlled", "community_special"})
TERMS = ("autumn", "spring", "summer")


@dataclasses.dataclass(frozen=True)
class TermPeriod:
    """Consecutive days of teaching, both ends included (a half term)."""

    term: str
    start: dt.date
    end: dt.date

    def __post_init__(self):
        if self.term not in TERMS:
            raise ValueError(f"term must be one of {', '.join(TERMS)}")
        if self.end < self.start:
            raise ValueError(f"term period {self.term} ends ({self.end}) before it starts ({self.start})")


@dataclasses.dataclass(frozen=True)
class TermDates:
    """One academic year's term periods, e.g. six half terms."""

    academic_year: int  # the year it starts in: 2025 for 2025/26
    periods: tuple[TermPeriod, ...]

    def __post_init__(self):
        first, last = dt.date(self.academic_year, 9, 1), dt.date(self.academic_year + 1, 8, 31)
        ordered = sorted(self.periods, key=lambda p: p.start)
        for period in ordered:
            if period.start < first or period.end > last:
                raise ValueError(f"term period {period.start}..{period.end} lies outside academic year "
                                 f"{self.academic_year}/{(self.academic_year + 1) % 100:02d}")
        for before, after in zip(ordered, ordered[1:]):
            if after.start <= before.end:
                raise ValueError(f"term periods overlap: {before.start}..{before.end} and {after.start}..{after.end}")
        object.__setattr__(self, "periods", tuple(ordered))

    def term_of(self, day: dt.date) -> str | None:
        for period in self.periods:
            if period.start <= day <= period.end:
                return period.term
        return None


def academic_year_of(day: dt.date) -> int:
    return day.year if day.month >= 9 else day.year - 1


@functools.lru_cache(maxsize=64)
def bank_holidays(year: int) -> frozenset[dt.date]:
    """England and Wales bank holidays in a calendar year (from the maintained `holidays` package)."""
    return frozenset(holidays.country_holidays("GB", subdiv="ENG", years=year).keys())


def is_bank_holiday(day: dt.date) -> bool:
    return day in bank_holidays(day.year)


@dataclasses.dataclass(frozen=True)
class SchoolCalendar:
    """Everything that says when one school is open in one academic year."""

    urn: str
    term_dates: TermDates
    inset_days: frozenset[dt.date] = frozenset()

    def __post_init__(self):
        if len(self.inset_days) > 5:
            raise ValueError(f"a school has at most five INSET days a year, not {len(self.inset_days)}")


def is_open(calendar: SchoolCalendar, day: dt.date) -> bool:
    """Is the school of `calendar` open on `day`? The one rule every placement uses."""
    return (day.weekday() < 5
            and calendar.term_dates.term_of(day) is not None
            and not is_bank_holiday(day)
            and day not in calendar.inset_days)


def open_days(calendar: SchoolCalendar) -> Iterator[dt.date]:
    for period in calendar.term_dates.periods:
        day = period.start
        while day <= period.end:
            if is_open(calendar, day):
                yield day
            day += dt.timedelta(days=1)


def follows_la_dates(establishment_type: str | None) -> bool:
    return (establishment_type or "community") in LA_TERM_TYPES


def calendar_for(urn: str, establishment_type: str | None, la_dates: TermDates, own_dates: TermDates | None,
                 inset_days: Iterable[dt.date] = ()) -> SchoolCalendar:
    """The calendar a school keeps: its own term dates when it may set them and has, else the LA's."""
    term_dates = own_dates if (own_dates is not None and not follows_la_dates(establishment_type)) else la_dates
    year = term_dates.academic_year
    insets = frozenset(d for d in inset_days if academic_year_of(d) == year)
    return SchoolCalendar(urn=urn, term_dates=term_dates, inset_days=insets)


def defaults_from_data(data: dict) -> dict[tuple[str, int], TermDates]:
    """The shipped defaults (`scheduling/data/la_term_dates.json`, read by the adapters) as term dates."""
    return {(la.lower(), int(year)): term_dates_from_dict(int(year), periods)
            for la, years in data.items() if not la.startswith("_") for year, periods in years.items()}


def term_dates_from_dict(academic_year: int, periods: Iterable[dict]) -> TermDates:
    return TermDates(academic_year, tuple(
        TermPeriod(p["term"], _date(p["start"]), _date(p["end"])) for p in periods))


def _date(value) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(value)


def la_key(local_authority: str | None) -> str:
    return (local_authority or "buckinghamshire").strip().lower()
