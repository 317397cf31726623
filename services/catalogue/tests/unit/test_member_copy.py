"""The catalogue's copy of a member, facet by facet: each event sets only the facts it carries, and
only where it is newer than what set them; pure, no database."""
import dataclasses
import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from catalogue.domain import member_copy as mc

D = dt.date
MAT = mc.Mat("TR01234", "Great Learners Trust")
FIRST = mc.SchoolDetails("Haddenham Infant School", "community", "primary", False, None)
RENAMED = dataclasses.replace(FIRST, name="Haddenham St Mary's Infant School", establishment_type="voluntary_controlled")
ACADEMY = mc.SchoolDetails("Haddenham Academy", "academy_converter", "primary", True, MAT)
JOIN_ROLL = mc.Roll(200, D(2023, 10, 5))


def joined(copy=None, sequence=1):
    return mc.joined(copy or mc.MemberCopy("110394"), FIRST, JOIN_ROLL, D(2024, 1, 5), sequence)


class TestFacets:
    def test_a_joining_makes_a_complete_active_member(self):
        member = joined().known()
        assert (member.name, member.status, member.number_on_roll, member.joined_on) == (
            FIRST.name, "active", 200, D(2024, 1, 5))

    def test_an_older_details_change_never_overwrites_a_newer_one(self):
        newer = mc.details_changed(joined(), RENAMED, 3)
        assert mc.details_changed(newer, dataclasses.replace(FIRST, name="Older"), 2).details == RENAMED

    def test_details_first_then_the_older_joining_creates_the_member_with_the_newer_details(self):
        copy = mc.details_changed(mc.MemberCopy("110394"), RENAMED, 3)
        assert copy.status == mc.UNKNOWN and copy.known() is None
        member = joined(copy, sequence=1).known()
        assert (member.name, member.status, member.number_on_roll) == (RENAMED.name, "active", 200)

    def test_a_leaving_before_its_joining_stays_left_and_still_learns_the_joining_date(self):
        copy = joined(mc.left(mc.MemberCopy("110394"), D(2026, 8, 31), 5), sequence=1)
        assert (copy.status, copy.left_on, copy.joined_on, copy.details) == ("left", D(2026, 8, 31),
                                                                           D(2024, 1, 5), FIRST)
        assert not copy.known().is_member_on(D(2026, 8, 31))  # as if they had arrived in order

    def test_a_re_joining_newer_than_the_leaving_makes_it_a_member_again(self):
        copy = mc.joined(mc.left(joined(), D(2025, 8, 31), 2), FIRST, JOIN_ROLL, D(2025, 12, 1), 3)
        assert (copy.status, copy.left_on, copy.joined_on) == ("active", None, D(2025, 12, 1))

    def test_the_newest_census_wins_by_date_even_when_announced_later(self):
        copy = mc.census_recorded(joined(), mc.Roll(230, D(2025, 10, 2)), 2)
        assert mc.census_recorded(copy, mc.Roll(10, D(2024, 10, 3)), 3).roll == mc.Roll(230, D(2025, 10, 2))
        assert mc.census_recorded(copy, mc.Roll(231, D(2025, 10, 2)), 4).roll.number_on_roll == 231

    def test_unnumbered_events_apply_as_before_sequencing(self):
        copy = mc.details_changed(joined(sequence=None), RENAMED, None)
        assert (copy.details, copy.details_version) == (RENAMED, None)
        assert mc.details_changed(mc.details_changed(copy, FIRST, 7), RENAMED, None).details_version == 7

    def test_a_partial_copy_is_not_a_member(self):
        assert mc.census_recorded(mc.MemberCopy("110394"), JOIN_ROLL, 2).known() is None
        assert mc.left(mc.MemberCopy("110394"), D(2026, 8, 31), 2).known() is None


class TestConversion:
    def test_the_successors_own_events_win_over_the_conversion_in_either_order(self):
        own = mc.details_changed(mc.MemberCopy("149021"), dataclasses.replace(ACADEMY, name="Own name"), 1)
        first = mc.converted_successor(own, D(2026, 9, 1), ACADEMY, mc.Roll(216, D(2025, 10, 2)), "110394")
        later = mc.details_changed(mc.converted_successor(mc.MemberCopy("149021"), D(2026, 9, 1), ACADEMY,
                                                          mc.Roll(216, D(2025, 10, 2)), "110394"),
                                   dataclasses.replace(ACADEMY, name="Own name"), 1)
        assert first == later
        assert (first.details.name, first.status, first.joined_on, first.predecessor_urn) == (
            "Own name", "active", D(2026, 9, 1), "110394")

    def test_a_successor_that_already_left_stays_left(self):
        gone = mc.left(mc.MemberCopy("149021"), D(2027, 1, 1), 3)
        copy = mc.converted_successor(gone, D(2026, 9, 1), ACADEMY, mc.Roll(216, D(2025, 10, 2)), "110394")
        assert (copy.status, copy.left_on, copy.details) == ("left", D(2027, 1, 1), ACADEMY)

    def test_the_predecessor_closes_with_the_conversions_number(self):
        copy = mc.converted_predecessor(joined(), D(2026, 9, 1), "149021", 6)
        assert (copy.status, copy.left_on, copy.successor_urn, copy.standing_version) == (
            "converted", D(2026, 9, 1), "149021", 6)
        assert mc.joined(copy, FIRST, JOIN_ROLL, D(2024, 1, 5), 1).status == "converted"


class TestRoles:
    def test_nothing_after_an_erasure_whatever_its_number(self):
        assert not mc.role_change_applies(None, erased=True, effective_date=D(2026, 1, 1), sequence=99)

    def test_a_newer_change_of_a_role_applies_an_older_one_does_not(self):
        recorded = mc.RecordedRole(D(2026, 1, 5), 3)
        assert mc.role_change_applies(recorded, erased=False, effective_date=D(2025, 1, 1), sequence=4)
        assert not mc.role_change_applies(recorded, erased=False, effective_date=D(2027, 1, 1), sequence=2)

    def test_unnumbered_changes_keep_the_effective_date_rule(self):
        recorded = mc.RecordedRole(D(2026, 1, 5), None)
        assert mc.role_change_applies(recorded, erased=False, effective_date=D(2026, 1, 5), sequence=None)
        assert not mc.role_change_applies(recorded, erased=False, effective_date=D(2026, 1, 4), sequence=None)


EVENTS = [
    lambda c: mc.joined(c, FIRST, JOIN_ROLL, D(2024, 1, 5), 1),
    lambda c: mc.census_recorded(c, mc.Roll(210, D(2024, 10, 3)), 2),
    lambda c: mc.details_changed(c, RENAMED, 3),
    lambda c: mc.census_recorded(c, mc.Roll(215, D(2025, 10, 2)), 4),
    lambda c: mc.left(c, D(2026, 8, 31), 5),
    lambda c: mc.joined(c, RENAMED, mc.Roll(190, D(2026, 10, 1)), D(2026, 11, 1), 6),
    lambda c: mc.details_changed(c, dataclasses.replace(RENAMED, phase="all_through"), 7),
]


@given(st.permutations(range(len(EVENTS))))
def test_any_order_ends_as_the_numbered_order(order):
    in_order = mc.MemberCopy("110394")
    for apply in EVENTS:
        in_order = apply(in_order)
    copy = mc.MemberCopy("110394")
    for index in order:
        copy = EVENTS[index](copy)
    assert copy == in_order
