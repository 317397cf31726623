"""billing.domain.money and periods: one rounding half up, pro-rating by days, agreement years, billing periods."""
import datetime as dt
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing.domain.money import prorate, ratio_half_up, round_half_up, vat_pence
from billing.domain.periods import (academic_year_of, agreement_year_containing, billing_period, days_between,
                                    shift_years)


class TestRoundHalfUp:
    @pytest.mark.parametrize(("value", "pence"), [
        (Fraction(5, 2), 3), (Fraction(7, 2), 4), (Fraction(249, 100), 2), (Fraction(251, 100), 3),
        (Fraction(-5, 2), -3), (0, 0), (Fraction(1, 2), 1), (Fraction(1, 3), 0)])
    def test_half_a_penny_goes_up_and_less_goes_down(self, value, pence):
        assert round_half_up(value) == pence

    @given(st.integers(-10**9, 10**9), st.integers(1, 1000))
    def test_result_is_within_half_a_penny_and_an_int(self, numerator, denominator):
        value = Fraction(numerator, denominator)
        result = round_half_up(value)
        assert type(result) is int and abs(value - result) <= Fraction(1, 2)


    @given(st.integers(-10**12, 10**12), st.integers(1, 10**6))
    def test_whole_number_path_agrees_with_the_exact_one(self, numerator, denominator):
        assert ratio_half_up(numerator, denominator) == round_half_up(Fraction(numerator, denominator))


class TestProrate:
    def test_whole_period_is_the_whole_amount(self):
        assert prorate(291900, 365, 365) == 291900

    def test_late_start_pays_the_days_it_covers(self):
        # 1 June to 31 March is 304 of 365 days: 291900 x 304 / 365 = 243116.71 -> 243117
        assert prorate(291900, days_between(dt.date(2026, 6, 1), dt.date(2027, 3, 31)), 365) == 243117

    def test_exactly_half_a_penny_rounds_up(self):
        assert prorate(1, 1, 2) == 1 and prorate(3, 1, 2) == 2

    @given(amount=st.integers(0, 10**8), whole=st.integers(1, 366), data=st.data())
    def test_never_more_than_the_whole_nor_negative(self, amount, whole, data):
        covered = data.draw(st.integers(-5, whole + 5))
        result = prorate(amount, covered, whole)
        assert 0 <= result <= amount and type(result) is int


class TestVat:
    def test_standard_rate_is_twenty_percent_rounded_half_up(self):
        assert vat_pence(291900, "standard") == 58380
        assert vat_pence(1, "standard") == 0 and vat_pence(3, "standard") == 1  # 0.2 -> 0, 0.6 -> 1
        assert vat_pence(5, "standard") == 1  # exactly 1.0

    def test_zero_and_exempt_carry_no_vat(self):
        assert vat_pence(291900, "zero") == 0 and vat_pence(291900, "exempt") == 0

    def test_unknown_treatment_is_refused(self):
        with pytest.raises(ValueError):
            vat_pence(100, "reduced")


class TestAgreementYears:
    def test_shift_years_turns_29_february_into_28(self):
        assert shift_years(dt.date(2028, 2, 29), 1) == dt.date(2029, 2, 28)

    @pytest.mark.parametrize(("day", "end", "year"), [
        (dt.date(2027, 1, 1), dt.date(2029, 3, 31), (dt.date(2026, 4, 1), dt.date(2027, 3, 31))),
        (dt.date(2027, 4, 1), dt.date(2029, 3, 31), (dt.date(2027, 4, 1), dt.date(2028, 3, 31))),
        (dt.date(2029, 3, 31), dt.date(2029, 3, 31), (dt.date(2028, 4, 1), dt.date(2029, 3, 31))),
    ])
    def test_a_day_falls_in_one_agreement_year_counted_back_from_the_end(self, day, end, year):
        assert agreement_year_containing(day, end) == year

    @given(day=st.dates(dt.date(2001, 1, 1), dt.date(2090, 1, 1)), extra=st.integers(0, 3 * 366))
    def test_the_year_contains_the_day(self, day, extra):
        start, end = agreement_year_containing(day, day + dt.timedelta(days=extra))
        assert start <= day <= end and days_between(start, end) in (365, 366)

    def test_academic_year_starts_in_september(self):
        assert academic_year_of(dt.date(2026, 8, 31)) == 2025 and academic_year_of(dt.date(2026, 9, 1)) == 2026


class TestBillingPeriod:
    def test_annual_period_is_september_to_august(self):
        period = billing_period("2026/27", "annual")
        assert (period.start, period.end) == (dt.date(2026, 9, 1), dt.date(2027, 8, 31))

    @pytest.mark.parametrize(("term", "start", "end"), [
        ("autumn", dt.date(2026, 9, 1), dt.date(2026, 12, 31)),
        ("spring", dt.date(2027, 1, 1), dt.date(2027, 3, 31)),
        ("summer", dt.date(2027, 4, 1), dt.date(2027, 8, 31))])
    def test_terms(self, term, start, end):
        period = billing_period(f"2026/27 {term}", "termly")
        assert (period.start, period.end) == (start, end)

    @pytest.mark.parametrize(("label", "frequency"), [
        ("2026/27 autumn", "annual"), ("2026/27", "termly"), ("2026/28", "annual"), ("2026", "annual"),
        ("2026/27 winter", "termly")])
    def test_a_period_of_the_wrong_shape_is_refused(self, label, frequency):
        with pytest.raises(ValueError):
            billing_period(label, frequency)
