"""Network meetings (rotation, open days, clashes, capacity), waiting lists and prices, coaching pairs."""
import datetime as dt

import pytest

from scheduling.adapters.repository import default_la_term_dates
from scheduling.domain import calendar as cal
from scheduling.domain import coaching, courses, networks

LA = default_la_term_dates()[("buckinghamshire", 2026)]


def cals(*urns, insets=None):
    return {u: cal.SchoolCalendar(u, LA, frozenset((insets or {}).get(u, ()))) for u in urns}


NET = networks.Network("n1", "Primary heads", ("100001", "100002", "100003"), ("p1", "p2", "p3"))


class TestRotation:
    def test_fewest_hostings_first_then_longest_ago_then_urn(self):
        history = [("A", dt.date(2025, 1, 1)), ("B", dt.date(2025, 3, 1)), ("A", dt.date(2025, 6, 1))]
        assert networks.rotation_order(["A", "B", "C", "D"], history) == ["C", "D", "B", "A"]

    def test_a_year_rotates_through_three_different_hosts(self):
        meetings = networks.plan_year(NET, 2026, cals(*NET.member_urns), {u: 30 for u in NET.member_urns}, [],
                                      networks.Diary())
        assert [m.term for m in meetings] == ["autumn", "spring", "summer"]
        assert len({m.host_urn for m in meetings}) == 3

    def test_over_years_every_member_hosts_equally(self):
        history, diary = [], networks.Diary()
        for year in (2025, 2026):
            la = default_la_term_dates()[("buckinghamshire", year)]
            cs = {u: cal.SchoolCalendar(u, la) for u in ("A", "B", "C", "D")}
            net = networks.Network("n", "SENCOs", ("A", "B", "C", "D"), ("p",))
            for m in networks.plan_year(net, year, cs, {u: 10 for u in cs}, history, diary):
                history.append((m.host_urn, m.date))
        counts = [sum(1 for h, _ in history if h == u) for u in "ABCD"]
        assert max(counts) - min(counts) <= 1


class TestMeetingDates:
    def test_meeting_is_on_a_day_open_for_the_host_and_the_members(self):
        calendars = cals(*NET.member_urns)
        for m in networks.plan_year(NET, 2026, calendars, {u: 30 for u in NET.member_urns}, [], networks.Diary()):
            assert all(cal.is_open(calendars[u], m.date) for u in NET.member_urns)

    def test_avoids_a_members_inset_day_when_it_can(self):
        plain = networks.plan_year(NET, 2026, cals(*NET.member_urns), {u: 30 for u in NET.member_urns}, [],
                                   networks.Diary())
        insets = {"100002": [plain[0].date]}
        again = networks.plan_year(NET, 2026, cals(*NET.member_urns, insets=insets), {u: 30 for u in NET.member_urns},
                                   [], networks.Diary())
        assert again[0].date != plain[0].date

    def test_never_double_books_a_person(self):
        diary = networks.Diary()
        other = networks.Network("n2", "DSLs", ("100004", "100005"), ("p1", "p9"))
        calendars = cals(*NET.member_urns, "100004", "100005")
        a = networks.plan_year(NET, 2026, calendars, {u: 30 for u in calendars}, [], diary)
        b = networks.plan_year(other, 2026, calendars, {u: 30 for u in calendars}, [], diary)
        assert not {m.date for m in a} & {m.date for m in b}  # p1 is in both networks

    def test_host_must_hold_everyone(self):
        meetings = networks.plan_year(NET, 2026, cals(*NET.member_urns), {"100001": 2, "100002": 3, "100003": 2}, [],
                                      networks.Diary())
        assert {m.host_urn for m in meetings} == {"100002"}

    def test_no_venue_large_enough_says_so(self):
        with pytest.raises(networks.NoMeetingPossible, match="venue capacity"):
            networks.plan_year(NET, 2026, cals(*NET.member_urns), {u: 2 for u in NET.member_urns}, [], networks.Diary())


ENT = courses.Entitlement("s1", dt.date(2026, 9, 1), dt.date(2027, 8, 31), included_places=1)
PRICE = courses.Price(subscriber_pence=9500, non_subscriber_pence=15000)


class TestPrices:
    def test_included_place_while_the_allowance_lasts(self):
        d = courses.price_for(dt.date(2026, 10, 1), PRICE, [ENT], {})
        assert (d.basis, d.unit_price_pence, d.subscription_id) == ("included_place", 0, "s1")

    def test_subscriber_price_once_included_places_are_used(self):
        d = courses.price_for(dt.date(2026, 10, 1), PRICE, [ENT], {"s1": 1})
        assert (d.basis, d.unit_price_pence) == ("subscriber", 9500)

    def test_non_subscriber_price_outside_the_sla_period(self):
        d = courses.price_for(dt.date(2027, 9, 1), PRICE, [ENT], {})
        assert (d.basis, d.unit_price_pence) == ("non_subscriber", 15000)

    def test_free_when_the_course_has_no_price(self):
        assert courses.price_for(dt.date(2026, 10, 1), None, [], {}).basis == "free"

    def test_only_paid_places_are_chargeable(self):
        assert courses.chargeable("subscriber", 9500) and courses.chargeable("non_subscriber", 1)
        assert not courses.chargeable("included_place", 0) and not courses.chargeable("free", 0)


class TestWaitingList:
    def test_confirms_up_to_capacity_then_waitlists(self):
        assert courses.status_for_new_booking(2, 1) == courses.CONFIRMED
        assert courses.status_for_new_booking(2, 2) == courses.WAITLISTED
        assert courses.status_for_new_booking(0, 0) == courses.WAITLISTED

    def test_promotes_the_first_in_line(self):
        assert courses.next_in_line([(3, "c"), (1, "a"), (2, "b")]) == "a"
        assert courses.next_in_line([]) is None

    def test_cancellation_cut_off(self):
        courses.may_cancel(dt.date(2026, 10, 10), 7, dt.date(2026, 10, 3))
        with pytest.raises(courses.BookingRefused, match="cut-off"):
            courses.may_cancel(dt.date(2026, 10, 10), 7, dt.date(2026, 10, 4))


class TestCoaching:
    M = [coaching.Mentor("m1", "A", "primary", frozenset({"send", "curriculum"}), 1),
         coaching.Mentor("m2", "B", "primary", frozenset({"finance"}), 2),
         coaching.Mentor("m3", "C", "secondary", frozenset({"send"}), 1)]

    def test_matches_by_phase_and_need_never_own_school(self):
        pairs, unmatched = coaching.match(self.M, [coaching.Leader("l1", "B", "primary", frozenset({"send"}))])
        assert pairs == [coaching.Pair("m1", "l1", ("send",))] and unmatched == []

    def test_respects_load_limits_and_says_who_is_left(self):
        leaders = [coaching.Leader(f"l{i}", "Z", "primary", frozenset({"send"})) for i in range(4)]
        pairs, unmatched = coaching.match(self.M, leaders)
        assert len(pairs) == 3 and unmatched == ["l3: every suitable mentor is at capacity"]
        assert all(p.mentor_id != "m3" for p in pairs)

    def test_no_mentor_of_the_phase(self):
        _, unmatched = coaching.match(self.M, [coaching.Leader("l", "C", "secondary", frozenset())])
        assert unmatched == ["l: no mentor of that phase outside the leader's school"]


class TestReschedule:
    def test_a_meeting_whose_host_left_moves_to_the_next_host_in_the_same_term(self):
        diary = networks.Diary()
        calendars = cals(*NET.member_urns)
        caps = {u: 30 for u in NET.member_urns}
        year = networks.plan_year(NET, 2026, calendars, caps, [], diary)
        leaving = year[2].host_urn
        remaining = networks.Network(NET.network_id, NET.name, tuple(u for u in NET.member_urns if u != leaving),
                                     NET.people)
        history = [(m.host_urn, m.date) for m in year[:2]]
        moved = networks.reschedule(year[2], remaining, {u: calendars[u] for u in remaining.member_urns},
                                    {u: 30 for u in remaining.member_urns}, history, diary)
        assert moved.host_urn != leaving and moved.term == "summer"
        assert cal.is_open(calendars[moved.host_urn], moved.date)
