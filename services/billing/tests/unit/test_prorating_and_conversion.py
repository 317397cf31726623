"""billing.domain.model: pro-rated charges, credits for the unexpired part, conversion, payer on a date."""
import dataclasses
import datetime as dt

from hypothesis import assume, given
from hypothesis import strategies as st

from billing.domain.model import (Affiliation, Payer, attendance_charge, charge_for_subscription, conversion_split,
                                  credit_for, later_agreement_years, payer_on, recredit, unexpired_credit)
from billing.domain.periods import days_between, shift_years
from billing.domain.upstream import Attendance, Subscription
from billing.messages.consumed import SubscriptionStarted

SCHOOL = Payer("school", "110394", "Haddenham Community Infant School")
MAT = Payer("mat", "TR01234", "Chiltern Learning Trust")


def subscription(**overrides) -> Subscription:
    payload = {
        "subscription_id": "sub-1", "urn": "110394", "school_name": "Haddenham Community Infant School",
        "is_academy": False, "mat": None, "offering_code": "SI-CORE", "offering_name": "School improvement",
        "service_area": "school_improvement", "vat_treatment": "standard", "period_start": "2026-04-01",
        "period_end": "2027-03-31", "quantity": 1, "annual_price_pence": 365000,
        "census": {"date": "2025-10-02", "number_on_roll": 172},
    }
    payload.update(overrides)
    return SubscriptionStarted().load(payload)


class TestLateStartAndEarlyEnd:
    def test_a_late_start_is_charged_its_days_of_the_year(self):
        # 1 October to 31 March: 182 of 365 days of 365000 = 182000 exactly
        charge = charge_for_subscription(subscription(period_start="2026-10-01"), SCHOOL)
        assert (charge.period_start, charge.period_end, charge.amount_pence) == (
            dt.date(2026, 10, 1), dt.date(2027, 3, 31), 182000)
        assert (charge.basis_pence, charge.basis_days) == (365000, 365)

    def test_an_early_end_is_credited_the_unexpired_days(self):
        charge = charge_for_subscription(subscription(), SCHOOL)
        credit = credit_for(charge, dt.date(2027, 1, 1), "cancelled")  # 90 days unexpired
        assert credit.kind == "credit" and credit.amount_pence == 90000 and credit.payer == SCHOOL
        assert credit.credits_charge_id == charge.id and credit.period_start == dt.date(2027, 1, 1)

    def test_cancelled_before_the_start_gives_everything_back(self):
        charge = charge_for_subscription(subscription(), SCHOOL)
        assert unexpired_credit(charge, dt.date(2026, 4, 1)) == 365000

    def test_ended_after_the_charge_gives_nothing_back(self):
        charge = charge_for_subscription(subscription(), SCHOOL)
        assert credit_for(charge, dt.date(2027, 4, 1), "expired") is None

    def test_later_years_of_a_multi_year_agreement_fall_due_one_by_one(self):
        start, end = dt.date(2026, 4, 1), dt.date(2029, 3, 31)
        assert later_agreement_years(start, end, up_to=dt.date(2027, 8, 31)) == [
            (dt.date(2027, 4, 1), dt.date(2028, 3, 31))]
        assert len(later_agreement_years(start, end, up_to=dt.date(2030, 1, 1))) == 2
        assert later_agreement_years(start, end, up_to=dt.date(2030, 1, 1), ends_from=dt.date(2027, 4, 1)) == []


class TestConversion:
    def test_conversion_credits_the_old_payer_and_charges_the_mat_the_same_unexpired_part(self):
        old = charge_for_subscription(subscription(), SCHOOL)
        successor = subscription(subscription_id="sub-2", urn="149999", period_start="2027-01-01",
                                 continues_subscription_id="sub-1", mat={"id": "TR01234", "name": "Chiltern"})
        credit, new = conversion_split(old, successor, MAT)
        assert credit.payer == SCHOOL and new.payer == MAT
        assert credit.amount_pence == new.amount_pence == 90000
        assert (new.period_start, new.period_end) == (dt.date(2027, 1, 1), dt.date(2027, 3, 31))

    def test_a_multi_year_sla_moved_at_conversion_is_charged_to_the_end_of_the_current_year(self):
        successor = subscription(period_start="2027-01-01", period_end="2029-03-31",
                                 continues_subscription_id="sub-1")
        new = charge_for_subscription(successor, MAT)
        assert (new.period_end, new.amount_pence) == (dt.date(2027, 3, 31), 90000)

    def test_a_late_joiners_multi_year_sla_is_charged_to_the_end_of_its_agreement_year_then_yearly(self):
        late = subscription(period_start="2026-10-01", period_end="2028-03-31")  # joined 1 October 2026
        charge = charge_for_subscription(late, SCHOOL)
        # 1 October 2026 - 31 March 2027: 182 of 365 days of 365,000 = 182,000
        assert (charge.period_start, charge.period_end, charge.amount_pence) == (
            dt.date(2026, 10, 1), dt.date(2027, 3, 31), 182000)
        assert later_agreement_years(dt.date(2026, 10, 1), dt.date(2028, 3, 31), up_to=dt.date(2030, 1, 1)) == [
            (dt.date(2027, 4, 1), dt.date(2028, 3, 31))]

    def test_the_later_years_of_a_multi_year_sla_moved_at_conversion_follow_its_agreement_years(self):
        # found by tests/e2e/test_conversion.py: they were counted from the conversion date's anniversary
        # (2028-01-01), so 1 April - 31 December 2027 fell between two charges
        start, end = dt.date(2027, 1, 1), dt.date(2029, 3, 31)
        assert later_agreement_years(start, end, up_to=dt.date(2030, 1, 1)) == [
            (dt.date(2027, 4, 1), dt.date(2028, 3, 31)), (dt.date(2028, 4, 1), dt.date(2029, 3, 31))]
        assert later_agreement_years(start, end, up_to=dt.date(2027, 8, 31)) == [
            (dt.date(2027, 4, 1), dt.date(2028, 3, 31))]
        assert later_agreement_years(start, end, up_to=dt.date(2030, 1, 1), ends_from=dt.date(2027, 6, 1)) == [(dt.date(2027, 4, 1), dt.date(2028, 3, 31))]

    @given(annual=st.integers(0, 5_000_000), quantity=st.integers(1, 5),
           year_start=st.dates(dt.date(2001, 1, 1), dt.date(2090, 12, 31)),
           late=st.integers(0, 200), converts=st.integers(1, 366))
    def test_credit_and_new_charge_never_exceed_the_whole(self, annual, quantity, year_start, late, converts):
        year_end = shift_years(year_start, 1) - dt.timedelta(days=1)
        start = year_start + dt.timedelta(days=late)
        conversion = start + dt.timedelta(days=converts)
        assume(conversion <= year_end)
        old = charge_for_subscription(subscription(
            period_start=start.isoformat(), period_end=year_end.isoformat(), annual_price_pence=annual,
            quantity=quantity), SCHOOL)
        successor = subscription(period_start=conversion.isoformat(), period_end=year_end.isoformat(),
                                 annual_price_pence=annual, quantity=quantity, continues_subscription_id="sub-1")
        credit, new = conversion_split(old, successor, MAT)
        credited = credit.amount_pence if credit else 0
        kept = old.amount_pence - credited
        assert 0 <= credited <= old.amount_pence <= annual
        assert kept + new.amount_pence <= old.amount_pence  # never more than the whole
        assert new.amount_pence == credited  # and here exactly the whole: nothing lost either
        assert all(type(x) is int for x in (kept, credited, new.amount_pence))

    @given(amount=st.integers(0, 10**7), days=st.integers(1, 366), data=st.data())
    def test_a_credit_never_exceeds_its_charge(self, amount, days, data):
        charge = charge_for_subscription(subscription(annual_price_pence=amount), SCHOOL)
        charge = dataclasses.replace(charge, amount_pence=data.draw(st.integers(0, amount)))
        day = dt.date(2026, 4, 1) + dt.timedelta(days=data.draw(st.integers(-10, 400)))
        assert 0 <= unexpired_credit(charge, day) <= charge.amount_pence


class TestPayerOnADate:
    HISTORY = [
        Affiliation("110394", dt.date(2020, 1, 1), "Haddenham", False, None, None),
        Affiliation("110394", dt.date(2027, 1, 1), "Haddenham", True, "TR01234", "Chiltern Learning Trust"),
    ]

    def test_before_joining_the_mat_the_school_pays(self):
        assert payer_on(self.HISTORY, dt.date(2026, 12, 31), lambda mat: True).kind == "school"

    def test_from_the_day_it_joins_a_central_paying_mat_the_mat_pays(self):
        assert payer_on(self.HISTORY, dt.date(2027, 1, 1), lambda mat: True) == Payer(
            "mat", "TR01234", "Chiltern Learning Trust")

    def test_a_mat_that_does_not_pay_centrally_leaves_the_academy_paying(self):
        assert payer_on(self.HISTORY, dt.date(2027, 6, 1), lambda mat: False).kind == "school"

    def test_an_unknown_school_has_no_payer(self):
        assert payer_on([], dt.date(2027, 1, 1), lambda mat: True) is None

    def test_a_charge_dated_before_the_first_known_standing_uses_the_earliest(self):
        assert payer_on(self.HISTORY[1:], dt.date(2026, 1, 1), lambda mat: True).kind == "mat"


class TestAttendanceCharge:
    def test_a_chargeable_place_is_one_delegate_at_the_unit_price_on_the_session_date(self):
        charge = attendance_charge(Attendance(
            attendance_id="att-1", course_code="SENCO-NET", offering_code=None, service_area="inclusion",
            urn="110394", session_date=dt.date(2026, 11, 5), attended=True, chargeable=True,
            price_basis="non_subscriber", unit_price_pence=12500, vat_treatment="exempt"), SCHOOL)
        assert (charge.amount_pence, charge.quantity, charge.source, charge.attendance_id) == (
            12500, 1, "attendance", "att-1")
        assert charge.period_start == charge.period_end == dt.date(2026, 11, 5)
        assert days_between(charge.period_start, charge.period_end) == 1


class TestEndsMovingEarlier:
    """An SLA cancelled from one date and then ended from an earlier one (`model.recredit`)."""

    def test_an_earlier_end_replaces_a_credit_not_yet_invoiced_by_one_for_the_whole_unexpired_part(self):
        charge = charge_for_subscription(subscription(), SCHOOL)
        first = credit_for(charge, dt.date(2027, 3, 1), "cancelled")
        withdrawn, credit = recredit(charge, dt.date(2027, 1, 1), "left", [first], [])
        assert withdrawn == [first]
        assert (credit.period_start, credit.period_end, credit.amount_pence) == (
            dt.date(2027, 1, 1), dt.date(2027, 3, 31), 90000)

    def test_an_earlier_end_adds_the_days_before_a_credit_already_invoiced(self):
        charge = charge_for_subscription(subscription(), SCHOOL)
        invoiced = credit_for(charge, dt.date(2027, 3, 1), "cancelled")  # 31 days: 31,000
        withdrawn, credit = recredit(charge, dt.date(2027, 1, 1), "left", [], [invoiced])
        assert withdrawn == [] and credit.credits_charge_id == charge.id and credit.payer == SCHOOL
        assert (credit.period_start, credit.period_end, credit.amount_pence) == (
            dt.date(2027, 1, 1), dt.date(2027, 2, 28), 90000 - 31000)

    def test_an_end_that_owes_no_more_changes_nothing(self):
        charge = charge_for_subscription(subscription(), SCHOOL)
        given = credit_for(charge, dt.date(2027, 1, 1), "left")
        assert recredit(charge, dt.date(2027, 3, 1), "cancelled", [given], []) == ([], None)
        assert recredit(charge, dt.date(2027, 1, 1), "left", [], [given]) == ([], None)

    @given(ends=st.lists(st.integers(-30, 400), min_size=1, max_size=4), invoiced_after=st.integers(0, 4))
    def test_credits_never_exceed_the_charge_and_end_at_the_unexpired_part_from_the_earliest_end(
            self, ends, invoiced_after):
        charge = charge_for_subscription(subscription(), SCHOOL)
        days = sorted({dt.date(2026, 4, 1) + dt.timedelta(days=n) for n in ends}, reverse=True)
        open_credits, invoiced = [], []
        for i, day in enumerate(days):  # in the catalogue's order: each end earlier than the last
            if i == invoiced_after:
                invoiced, open_credits = invoiced + open_credits, []
            withdrawn, credit = recredit(charge, day, "ended", open_credits, invoiced)
            open_credits = [c for c in open_credits if c not in withdrawn] + ([credit] if credit else [])
        total = sum(c.amount_pence for c in open_credits + invoiced)
        assert total == unexpired_credit(charge, days[-1]) <= charge.amount_pence
