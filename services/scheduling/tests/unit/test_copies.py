"""scheduling.domain.copies and .ordering: each facet of a copy takes only newer facts, so the copies
end the same whatever order events arrive in (pure, no database)."""
import datetime as dt
import functools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scheduling.domain.copies import ContactCopy, SchoolCopy, SLACopy
from scheduling.domain.ordering import BEFORE_OWN_EVENTS, Position, is_newer, version_after
from scheduling.domain.upstream import (SLA, ContactRole, Conversion, DetailsChange, Joining, Leaving, SchoolDetails,
                                        SLAEnding, Successor)

D = dt.date
DETAILS = SchoolDetails("Haddenham Primary", "primary", "HP19 8AA", None, "community", "Buckinghamshire")
RENAMED = SchoolDetails("Haddenham CE Primary", "primary", "HP19 8AA", None, "community", "Buckinghamshire")
JOINING = Joining("140001", DETAILS, 210, D(2024, 9, 1))
LEAVING = Leaving("140001", D(2027, 1, 1))
CONVERSION = Conversion(D(2027, 1, 1), "140001",
                        Successor("150001", SchoolDetails("Haddenham Academy", "primary", "HP19 8AA", "TR01234",
                                                          "academy_converter", "Buckinghamshire"), 218), "TR01234")


class TestTheRule:
    @pytest.mark.parametrize(("sequence", "applied", "newer"), [
        (1, None, True),       # nothing known yet
        (2, 1, True), (1, 2, False), (2, 2, False),
        (None, 5, True),       # an event without order is applied as before sequencing
        (3, 0, True),          # over a fact set without order
        (BEFORE_OWN_EVENTS, None, True), (BEFORE_OWN_EVENTS, 0, True), (BEFORE_OWN_EVENTS, 1, False),
    ])
    def test_is_newer(self, sequence, applied, newer):
        assert is_newer(sequence, applied) is newer

    def test_an_event_without_order_keeps_a_known_order(self):
        assert (version_after(None, 5), version_after(None, None), version_after(4, 3)) == (5, 0, 4)

    def test_numbers_of_another_aggregate_are_never_compared(self):
        position = Position("school:140001", 7)
        assert (position.sequence_in("school:140001"), position.sequence_in("school:150001")) == (7, None)


class TestSchoolCopy:
    def test_a_leaving_before_its_joining_stays_and_the_joining_brings_the_details(self):
        early = SchoolCopy("140001").left(LEAVING, 2)
        assert not early.is_member_record
        late = early.joined(JOINING, 1)
        assert (late.active, late.closed_on, late.name, late.is_member_record) == (False, D(2027, 1, 1), DETAILS.name,
                                                                                    True)
        assert late == SchoolCopy("140001").joined(JOINING, 1).left(LEAVING, 2)

    def test_an_older_change_of_details_does_not_overwrite_a_newer_one(self):
        newer = SchoolCopy("140001").joined(JOINING, 1).details_changed(DetailsChange("140001", D(2027, 1, 1), RENAMED), 3)
        assert newer.details_changed(DetailsChange("140001", D(2026, 9, 1), DETAILS), 2).name == RENAMED.name

    def test_a_change_of_details_alone_is_a_partial_copy(self):
        copy = SchoolCopy("140001").details_changed(DetailsChange("140001", D(2026, 9, 1), DETAILS), 2)
        assert (copy.name, copy.active, copy.is_member_record) == (DETAILS.name, False, False)

    def test_the_successors_own_events_win_over_the_conversion_in_either_order(self):
        own = DetailsChange("150001", D(2027, 2, 1), SchoolDetails("Haddenham Primary Academy", "primary", "HP19 8AA",
                                                                   "TR01234", "academy_converter", "Buckinghamshire"))
        first = SchoolCopy("150001").opened_by(CONVERSION).details_changed(own, 1).left(Leaving("150001", D(2027, 3, 1)), 3)
        last = SchoolCopy("150001").details_changed(own, 1).left(Leaving("150001", D(2027, 3, 1)), 3).opened_by(CONVERSION)
        assert first == last
        assert (last.name, last.active, last.closed_on, last.number_on_roll, last.predecessor_urn) == (
            "Haddenham Primary Academy", False, D(2027, 3, 1), 218, "140001")

    def test_the_predecessor_closes_on_the_conversion_date(self):
        closed = SchoolCopy("140001").joined(JOINING, 1).converted(CONVERSION, 4)
        assert (closed.active, closed.closed_on) == (False, D(2027, 1, 1))
        assert SchoolCopy("140001").converted(CONVERSION, 4).joined(JOINING, 1) == closed

    def test_a_census_is_only_the_roll(self):
        copy = SchoolCopy("140001").census_recorded(218, 3).joined(JOINING, 1)
        assert (copy.number_on_roll, copy.name, copy.active) == (218, DETAILS.name, True)


class TestContactCopy:
    ROLE = ContactRole("c-1", "140001", "A. Head", "head_teacher", True)

    def test_an_erasure_is_a_tombstone_no_role_change_undoes(self):
        erased = ContactCopy("c-1").erased_now(2)
        for sequence in (1, 3, None):
            assert erased.role_changed(self.ROLE, "140001", sequence) == erased
        assert (erased.display_name, erased.role, erased.urn, erased.active) == (None, None, None, False)

    def test_an_older_role_does_not_replace_a_newer_one(self):
        newer = ContactCopy("c-1").role_changed(self.ROLE, "150001", 3)
        assert newer.role_changed(ContactRole("c-1", "140001", "A. Head", "senco", True), "140001", 2) == newer


START = SLA("s-1", "140001", "DSL", "governance", D(2026, 4, 1), D(2027, 3, 31))


class TestSLACopy:
    @given(endings=st.lists(st.dates(min_value=D(2026, 1, 1), max_value=D(2027, 6, 1)), max_size=3),
           data=st.data())
    def test_a_start_and_its_endings_give_the_same_cover_in_any_order(self, endings, data):
        steps = [lambda c: c.started(START, 2, 1)] + [
            functools.partial(lambda c, day: c.ended(SLAEnding("s-1", "140001", day)), day=day) for day in endings]
        in_order = functools.reduce(lambda copy, step: step(copy), steps, SLACopy("s-1", "140001"))
        shuffled = functools.reduce(lambda copy, step: step(copy), data.draw(st.permutations(steps)),
                                    SLACopy("s-1", "140001"))
        assert shuffled == in_order
        first_uncovered = min(endings, default=D(2027, 4, 1))
        assert in_order.period_end == max(min(first_uncovered, D(2027, 4, 1)), D(2026, 4, 1)) - dt.timedelta(days=1)

    def test_an_ending_alone_has_no_terms(self):
        copy = SLACopy("s-1", "140001").ended(SLAEnding("s-1", "140001", D(2026, 11, 1)))
        assert (copy.has_terms, copy.period_end, copy.ends_on) == (False, None, D(2026, 11, 1))
