"""Rule 17's pure parts: the booking cut-off, spending authority for a paid place, and the one diary."""
import datetime as dt

import pytest

from scheduling.domain import courses, diary as di

DAY = dt.date(2026, 11, 5)


class TestBookingCutOff:
    def test_a_place_is_bookable_until_the_booking_cut_off(self):
        courses.may_book(DAY, 3, dt.date(2026, 11, 2))
        with pytest.raises(courses.BookingRefused, match="booking cut-off.*until 2026-11-02"):
            courses.may_book(DAY, 3, dt.date(2026, 11, 3))

    def test_zero_days_means_up_to_the_day_itself_but_never_after(self):
        courses.may_book(DAY, 0, DAY)
        with pytest.raises(courses.BookingRefused, match="already taken place"):
            courses.may_book(DAY, 0, DAY + dt.timedelta(days=1))


class TestSpendingAuthority:
    @pytest.mark.parametrize("basis,price", [("subscriber", 9500), ("non_subscriber", 15000)])
    def test_a_paid_place_needs_someone_who_may_commit_spending(self, basis, price):
        decision = courses.PriceDecision(basis, price, None)
        with pytest.raises(courses.BookingRefused, match="may not commit school 100001's spending"):
            courses.must_have_spending_authority(decision, False, "c-senco", "100001")
        courses.must_have_spending_authority(decision, True, "c-head", "100001")

    @pytest.mark.parametrize("basis", ["included_place", "free"])
    def test_an_included_or_free_place_needs_no_authority(self, basis):
        courses.must_have_spending_authority(courses.PriceDecision(basis, 0, None), False, "c-senco", "100001")


class TestOneDiary:
    ENTRIES = [di.Entry("p1", DAY, di.NETWORK_MEETING, "m1", "network meeting of Aylesbury heads"),
               di.Entry("p2", DAY, di.PEER_REVIEW, "r1", "peer review of school 100002")]

    def test_a_clash_names_what_the_person_is_already_doing(self):
        with pytest.raises(di.DoubleBooked) as caught:
            di.must_be_free(self.ENTRIES, ["p3", "p1"], [DAY])
        assert "person p1 is already booked on 2026-11-05: network meeting of Aylesbury heads" in str(caught.value)

    def test_another_day_or_the_same_thing_is_no_clash(self):
        di.must_be_free(self.ENTRIES, ["p1", "p2"], [DAY + dt.timedelta(days=1)])
        di.must_be_free(self.ENTRIES, ["p2"], [DAY], ignoring="r1")
