"""scheduling.domain.calendar: is a school open on a day."""
import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scheduling.adapters.repository import default_la_term_dates
from scheduling.domain import calendar as cal

LA = default_la_term_dates()[("buckinghamshire", 2025)]
OWN = cal.term_dates_from_dict(2025, [{"term": "autumn", "start": "2025-09-01", "end": "2025-12-12"},
                                      {"term": "spring", "start": "2026-01-05", "end": "2026-03-27"},
                                      {"term": "summer", "start": "2026-04-13", "end": "2026-07-17"}])
SCHOOL = cal.SchoolCalendar("110394", LA, frozenset({dt.date(2025, 9, 3)}))


class TestIsOpen:
    def test_open_on_a_term_weekday(self):
        assert cal.is_open(SCHOOL, dt.date(2025, 9, 10))

    def test_closed_at_weekends(self):
        assert not cal.is_open(SCHOOL, dt.date(2025, 9, 13)) and not cal.is_open(SCHOOL, dt.date(2025, 9, 14))

    def test_closed_in_half_term_and_holidays(self):
        assert not cal.is_open(SCHOOL, dt.date(2025, 10, 29))  # autumn half term
        assert not cal.is_open(SCHOOL, dt.date(2025, 12, 24))
        assert not cal.is_open(SCHOOL, dt.date(2026, 8, 3))

    def test_closed_on_its_own_inset_day(self):
        assert not cal.is_open(SCHOOL, dt.date(2025, 9, 3))
        assert cal.is_open(cal.SchoolCalendar("x", LA), dt.date(2025, 9, 3))

    def test_closed_on_bank_holidays_from_the_holidays_package(self):
        # early May bank holiday 2026 is Monday 4 May, inside the summer term
        assert cal.is_bank_holiday(dt.date(2026, 5, 4))
        assert not cal.is_open(SCHOOL, dt.date(2026, 5, 4))
        assert cal.is_open(SCHOOL, dt.date(2026, 5, 5))

    def test_at_most_five_inset_days(self):
        days = frozenset(dt.date(2025, 9, d) for d in (8, 9, 10, 11, 12, 15))
        with pytest.raises(ValueError, match="five INSET"):
            cal.SchoolCalendar("x", LA, days)

    @given(st.dates(min_value=dt.date(2025, 9, 1), max_value=dt.date(2026, 8, 31)))
    def test_open_only_on_term_weekdays_that_are_not_holidays(self, day):
        expected = (day.weekday() < 5 and LA.term_of(day) is not None and not cal.is_bank_holiday(day)
                    and day != dt.date(2025, 9, 3))
        assert cal.is_open(SCHOOL, day) == expected


class TestWhoseTermDates:
    def test_community_school_follows_the_la_even_with_own_dates(self):
        c = cal.calendar_for("1", "community", LA, OWN)
        assert c.term_dates is LA and not cal.is_open(c, dt.date(2025, 9, 1))

    def test_academy_follows_its_own_dates(self):
        c = cal.calendar_for("1", "academy", LA, OWN)
        assert cal.is_open(c, dt.date(2025, 9, 1))  # its own term starts on the Monday
        assert not cal.is_open(c, dt.date(2025, 12, 15))  # the LA's term still runs, not its own

    def test_academy_without_own_dates_follows_the_la(self):
        assert cal.calendar_for("1", "academy", LA, None).term_dates is LA

    def test_inset_days_of_another_year_are_ignored(self):
        c = cal.calendar_for("1", "community", LA, None, [dt.date(2024, 9, 4), dt.date(2025, 9, 4)])
        assert c.inset_days == frozenset({dt.date(2025, 9, 4)})


class TestTermDates:
    def test_overlapping_periods_are_refused(self):
        with pytest.raises(ValueError, match="overlap"):
            cal.term_dates_from_dict(2025, [{"term": "autumn", "start": "2025-09-03", "end": "2025-10-24"},
                                            {"term": "autumn", "start": "2025-10-20", "end": "2025-12-19"}])

    def test_periods_outside_the_academic_year_are_refused(self):
        with pytest.raises(ValueError, match="outside academic year"):
            cal.term_dates_from_dict(2025, [{"term": "summer", "start": "2026-07-01", "end": "2026-09-02"}])

    def test_period_ending_before_it_starts_is_refused(self):
        with pytest.raises(ValueError, match="before it starts"):
            cal.term_dates_from_dict(2025, [{"term": "spring", "start": "2026-02-01", "end": "2026-01-05"}])

    @pytest.mark.parametrize("year", [2025, 2026])
    def test_bucks_defaults_have_about_190_open_days(self, year):
        days = list(cal.open_days(cal.SchoolCalendar("x", default_la_term_dates()[("buckinghamshire", year)])))
        assert 185 <= len(days) <= 195

    def test_academic_year_of(self):
        assert cal.academic_year_of(dt.date(2026, 8, 31)) == 2025 and cal.academic_year_of(dt.date(2026, 9, 1)) == 2026
