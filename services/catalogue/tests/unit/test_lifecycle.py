"""An SLA after purchase: notice dates, cancellation, endings, conversion, renewal windows, buy-back."""
import dataclasses
import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from decimal import Decimal

from catalogue.domain import model
from catalogue.domain.pricing import PriceTerms

D = dt.date
MAINTAINED = model.KnownMember(urn="110394", name="Haddenham Community Infant School",
                               establishment_type="community", phase="primary", is_academy=False, mat_id=None,
                               mat_name=None, number_on_roll=172, census_date=D(2025, 10, 2), status="active")
ACADEMY = dataclasses.replace(MAINTAINED, urn="145678", name="Aylesbury Vale Academy",
                              establishment_type="academy_converter", is_academy=True, mat_id="TR01234",
                              mat_name="Chiltern Learning Trust")
OFFERING = model.Offering(code="SI-CORE", name="School improvement core offer", service_area="school_improvement",
                          provider="Bucks Learning Trust", vat_treatment="standard", eligible_phases=("primary",))
EDITION = model.Edition(offering_code="SI-CORE", year=2026, terms=PriceTerms(
    model="per_pupil", base_fee_pence=150000, rate_by_phase={"primary": Decimal("825")}))
HEAD = model.Contact(contact_id="c-head", urn=MAINTAINED.urn, display_name="Sam Head", role="head_teacher",
                     may_commit_spending=True, active=True)


def purchase(years=1) -> model.Subscription:
    return model.buy(member=MAINTAINED, urn=MAINTAINED.urn, offering=OFFERING, edition=EDITION, years=years,
                     buyer=HEAD, contact_id=HEAD.contact_id, po_number=None, today=D(2026, 3, 2), live_periods=[])


class TestNoticeDate:
    def test_maintained_april_to_march_gives_notice_by_31_december(self):
        assert model.notice_date(D(2027, 3, 31)) == D(2026, 12, 31)

    def test_academy_september_to_august_gives_notice_by_31_may(self):
        assert model.notice_date(D(2027, 8, 31)) == D(2027, 5, 31)

    @given(year=st.integers(min_value=2000, max_value=2100), is_academy=st.booleans(),
           years=st.sampled_from([1, 2, 3]))
    def test_notice_date_falls_inside_the_period_three_months_before_its_end(self, year, is_academy, years):
        _, start, end = model.sla_period(year, is_academy=is_academy, years=years)
        notice = model.notice_date(end)
        assert start < notice < end
        assert 89 <= (end - notice).days <= 92


class TestRenewsOnlyAfterTheNoticeDate:
    """Issue 14, rule 1: the renewal round renewed an SLA whatever the date; it renews only once the
    SLA's notice date has passed (until then, and on it, the school may still cancel)."""

    @pytest.mark.parametrize("period_end,notice", [(D(2027, 3, 31), D(2026, 12, 31)), (D(2027, 8, 31), D(2027, 5, 31))],
                             ids=["maintained", "academy"])
    def test_renews_the_day_after_the_notice_date_not_before_nor_on_it(self, period_end, notice):
        assert not model.renews_on(period_end, notice - dt.timedelta(days=1))
        assert not model.renews_on(period_end, notice)
        assert model.renews_on(period_end, notice + dt.timedelta(days=1))

    def test_an_academy_sla_does_not_renew_in_the_maintained_schools_january_round(self):
        assert not model.renews_on(D(2027, 8, 31), D(2027, 1, 11))

    @given(day=st.dates(min_value=D(2026, 1, 1), max_value=D(2028, 1, 1)), is_academy=st.booleans())
    def test_a_renewal_and_a_cancellation_of_the_renewal_are_never_both_allowed(self, day, is_academy):
        _, _, end = model.sla_period(2026, is_academy=is_academy, years=1)
        assert model.renews_on(end, day) != (day <= model.notice_date(end))


class TestCancel:
    def test_cancelling_the_renewal_by_the_notice_date_lets_it_run_to_its_end(self):
        sub = purchase()
        ending = model.cancel(sub, effective_date=None, today=D(2026, 12, 31), reason="budget")
        assert (ending.effective_date, ending.covered_until) == (D(2027, 4, 1), D(2027, 3, 31))

    def test_cancelling_the_renewal_after_the_notice_date_is_refused(self):
        with pytest.raises(model.NotAllowed) as refused:
            model.cancel(purchase(), effective_date=None, today=D(2027, 1, 1), reason="budget")
        assert refused.value.field == "effective_date" and "notice date 2026-12-31 has passed" in refused.value.message

    def test_cancelling_from_a_date_ends_it_the_day_before(self):
        ending = model.cancel(purchase(), effective_date=D(2026, 9, 1), today=D(2026, 8, 1), reason="closing")
        assert (ending.effective_date, ending.covered_until) == (D(2026, 9, 1), D(2026, 8, 31))

    @pytest.mark.parametrize("day", [D(2026, 3, 31), D(2027, 4, 1)])
    def test_effective_date_outside_the_period_is_refused(self, day):
        with pytest.raises(model.NotAllowed) as refused:
            model.cancel(purchase(), effective_date=day, today=D(2026, 3, 1), reason="x")
        assert refused.value.field == "effective_date"

    def test_an_ended_sla_cannot_be_cancelled(self):
        sub = dataclasses.replace(purchase(), status="ended", covered_until=D(2026, 9, 30))
        with pytest.raises(model.Conflicting):
            model.cancel(sub, effective_date=D(2026, 10, 1), today=D(2026, 8, 1), reason="x")

    def test_renewal_already_cancelled_is_a_conflict(self):
        with pytest.raises(model.Conflicting):
            model.cancel(dataclasses.replace(purchase(), auto_renew=False), effective_date=None,
                         today=D(2026, 5, 1), reason="x")


class TestEndFrom:
    def test_leaving_mid_period_ends_it_from_the_leaving_date(self):
        ending = model.end_from(purchase(), D(2026, 11, 1), "left")
        assert (ending.effective_date, ending.covered_until, ending.reason) == (D(2026, 11, 1), D(2026, 10, 31),
                                                                                 "left")

    def test_an_sla_not_yet_begun_ends_from_its_own_first_day_and_covers_nothing(self):
        ending = model.end_from(purchase(), D(2026, 1, 1), "left")
        assert ending.effective_date == D(2026, 4, 1) and ending.covered_until < D(2026, 4, 1)

    def test_an_sla_already_over_is_not_ended_again(self):
        assert model.end_from(purchase(), D(2027, 4, 1), "left") is None


class TestConversionMove:
    SUCCESSOR = dataclasses.replace(ACADEMY, urn="149001", name="Haddenham Academy")

    def test_successor_sla_runs_from_the_conversion_date_to_the_old_end_at_the_frozen_price(self):
        old = purchase(years=2)
        moved = model.moved_to_successor(old, successor=self.SUCCESSOR, conversion_date=D(2027, 1, 1))
        assert (moved.urn, moved.payer_type, moved.period_start, moved.period_end) == (
            "149001", "academy", D(2027, 1, 1), D(2028, 3, 31))
        assert moved.annual_price_pence == old.annual_price_pence and moved.quote == old.quote
        assert (moved.offering_code, moved.edition_year, moved.census_date) == (
            old.offering_code, old.edition_year, old.census_date)
        assert moved.continues_subscription_id == old.id and moved.id != old.id and moved.origin == "conversion"

    def test_with_the_ending_the_two_cover_the_whole_period_exactly_once(self):
        old = purchase()
        day = D(2026, 10, 1)
        ending = model.end_from(old, day, "converted")
        moved = model.moved_to_successor(old, successor=self.SUCCESSOR, conversion_date=day)
        assert ending.covered_until + dt.timedelta(days=1) == moved.period_start == ending.effective_date
        assert moved.covered_until == old.period_end

    def test_an_sla_starting_after_conversion_moves_whole(self):
        moved = model.moved_to_successor(purchase(), successor=self.SUCCESSOR, conversion_date=D(2026, 1, 1))
        assert moved.period_start == D(2026, 4, 1)


class TestRenewalWindows:
    def test_maintained_slas_due_into_2027_end_in_the_year_to_31_march_2027(self):
        assert model.due_window(2027, "maintained") == (D(2026, 4, 1), D(2027, 3, 31))

    def test_academy_slas_due_into_2027_end_in_the_year_to_31_august_2027(self):
        assert model.due_window(2027, "academy") == (D(2026, 9, 1), D(2027, 8, 31))

    def test_a_one_year_sla_is_due_the_next_year_and_a_three_year_one_three_years_on(self):
        one, three = purchase(years=1), purchase(years=3)
        low, high = model.due_window(2027, "maintained")
        assert low <= one.period_end <= high and not low <= three.period_end <= high
        low, high = model.due_window(2029, "maintained")
        assert low <= three.period_end <= high


class TestBuyBack:
    def test_rate_is_renewing_over_those_who_held_it_the_year_before(self):
        facts = {("A", "governance", 2026), ("B", "governance", 2026), ("C", "governance", 2026),
                 ("D", "governance", 2026), ("A", "governance", 2027), ("B", "governance", 2027),
                 ("C", "governance", 2027), ("E", "governance", 2027), ("A", "school_improvement", 2027)}
        report = model.buy_back(facts)
        assert [(r.service_area, r.year, r.eligible, r.renewing, r.rate) for r in report] == [
            ("governance", 2027, 4, 3, "0.7500")]

    def test_a_year_with_nobody_eligible_is_left_out(self):
        assert model.buy_back({("A", "governance", 2026)}) == []

    def test_years_held_counts_the_payers_year_start_inside_the_cover(self):
        assert model.years_held(D(2026, 4, 1), D(2029, 3, 31), "maintained") == [2026, 2027, 2028]
        assert model.years_held(D(2026, 9, 1), D(2027, 8, 31), "academy") == [2026]
        assert model.years_held(D(2026, 4, 1), D(2026, 3, 31), "maintained") == []  # never began
        assert model.years_held(D(2027, 1, 1), D(2027, 3, 31), "academy") == []

    @given(st.sets(st.tuples(st.sampled_from("ABCDEFG"), st.sampled_from(["governance", "school_improvement"]),
                             st.integers(min_value=2024, max_value=2028))))
    def test_renewing_never_exceeds_eligible(self, facts):
        for row in model.buy_back(facts):
            assert 0 <= row.renewing <= row.eligible and 0 <= float(row.rate) <= 1


def test_members_fixture_is_maintained():
    assert not MAINTAINED.is_academy
