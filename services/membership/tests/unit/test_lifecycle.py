"""membership.domain.model: applying, activating, leaving, re-joining, details, census and conversion."""
import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from membership.domain import model
from membership.domain.model import AlreadyMember, Mat, MembershipRuleBroken, NotAMember

D = dt.date
TRUST = Mat("TR01234", "Chiltern Learning Trust")


def member(**overrides) -> model.SchoolMember:
    arguments = dict(open_member=None, urn="110394", dfe_number="825/2001", name="Haddenham Infant",
                     establishment_type="community", phase="primary", local_authority="Buckinghamshire",
                     postcode="HP17 8DS", number_on_roll=172, census_date=D(2025, 10, 2), joined_on=D(2026, 4, 1),
                     mat=None)
    arguments.update(overrides)
    return model.join_school(**arguments)


def refused(call, field, kind=MembershipRuleBroken):
    with pytest.raises(kind) as caught:
        call()
    assert caught.value.field == field, caught.value.message
    return caught.value


class TestApplyAndActivate:
    def test_an_application_is_not_a_member_until_activated(self):
        applied = model.apply_to_join(**{k: v for k, v in dict(
            open_member=None, urn="110394", dfe_number="825/2001", name="X", establishment_type="community",
            phase="primary", local_authority="Buckinghamshire", postcode="HP17 8DS", number_on_roll=1,
            census_date=D(2025, 10, 2), joined_on=D(2026, 4, 1), mat=None).items()})
        assert applied.status == "applied" and not applied.is_member_on(D(2026, 4, 1))
        active = model.activate(applied, D(2026, 5, 1))
        assert active.status == "active" and active.is_member_on(D(2026, 5, 1))
        assert not active.is_member_on(D(2026, 4, 30))

    def test_only_an_application_is_activated(self):
        refused(lambda: model.activate(member(), D(2026, 5, 1)), "status")


class TestLeaveAndRejoin:
    def test_leaving_effective_date_is_the_first_day_not_a_member(self):
        left = model.leave(member(), effective_date=D(2027, 4, 1), reason=" stopped buying ")
        assert (left.status, left.left_reason) == ("left", "stopped buying")
        assert left.is_member_on(D(2027, 3, 31)) and not left.is_member_on(D(2027, 4, 1))

    @pytest.mark.parametrize("day", [D(2026, 4, 1), D(2026, 3, 1)])
    def test_no_leaving_on_or_before_joining(self, day):
        refused(lambda: model.leave(member(), effective_date=day, reason="x"), "effective_date")

    def test_a_reason_is_required(self):
        refused(lambda: model.leave(member(), effective_date=D(2027, 1, 1), reason="  "), "reason")

    def test_a_left_member_cannot_leave_again(self):
        left = model.leave(member(), effective_date=D(2027, 1, 1), reason="x")
        refused(lambda: model.leave(left, effective_date=D(2027, 2, 1), reason="x"), "status")

    def test_rejoining_before_the_last_leaving_date_is_refused(self):
        refused(lambda: member(last_left_on=D(2027, 1, 1), joined_on=D(2026, 12, 1)), "joined_on")
        assert member(last_left_on=D(2027, 1, 1), joined_on=D(2027, 1, 1)).status == "active"

    @given(join=st.dates(D(2000, 1, 1), D(2040, 1, 1)), days=st.integers(1, 5000),
           probe=st.dates(D(1999, 1, 1), D(2055, 1, 1)))
    def test_one_answer_for_who_was_a_member_on_a_date(self, join, days, probe):
        left = model.leave(member(joined_on=join, census_date=join), effective_date=join + dt.timedelta(days=days),
                           reason="x")
        assert left.is_member_on(probe) == (join <= probe < join + dt.timedelta(days=days))


class TestChangeDetails:
    def test_only_real_changes_are_reported(self):
        changed, changes = model.change_details(member(), effective_date=D(2026, 9, 1), name="Haddenham Infant ",
                                                postcode="hp17 8dt")
        assert changes == {"postcode": {"old": "HP17 8DS", "new": "HP17 8DT"}}
        assert changed.postcode == "HP17 8DT"
        same, none = model.change_details(member(), effective_date=D(2026, 9, 1), name="Haddenham Infant")
        assert none == {}

    def test_a_maintained_school_does_not_become_an_academy_by_a_change(self):
        refused(lambda: model.change_details(member(), effective_date=D(2026, 9, 1),
                                             establishment_type="academy_converter", mat=TRUST),
                "establishment_type")

    def test_an_academy_changes_mat(self):
        academy = member(establishment_type="academy_converter", mat=TRUST)
        other = Mat("TR09999", "Great Learners Trust")
        changed, changes = model.change_details(academy, effective_date=D(2027, 1, 1), mat=other)
        assert changes == {"mat": {"old": TRUST, "new": other}} and changed.mat == other

    def test_an_academy_cannot_lose_its_mat(self):
        academy = member(establishment_type="academy_converter", mat=TRUST)
        refused(lambda: model.change_details(academy, effective_date=D(2027, 1, 1), mat=None), "mat")

    def test_no_change_before_joining(self):
        refused(lambda: model.change_details(member(), effective_date=D(2026, 3, 1), name="X"), "effective_date")

    def test_bad_dfe_number(self):
        refused(lambda: model.change_details(member(), effective_date=D(2026, 9, 1), dfe_number="8252001"),
                "dfe_number")

    def test_unknown_field(self):
        refused(lambda: model.change_details(member(), effective_date=D(2026, 9, 1), urn="110395"), "urn")


class TestCensus:
    def test_old_figure_is_the_previous_census(self):
        updated, recorded = model.record_census(member(), census_date=D(2026, 10, 1), number_on_roll=181,
                                                previous_on_that_date=None, latest_before=172)
        assert (recorded.old_number_on_roll, recorded.number_on_roll, recorded.is_latest) == (172, 181, True)
        assert (updated.number_on_roll, updated.census_date) == (181, D(2026, 10, 1))

    def test_the_same_figure_again_records_nothing(self):
        same, recorded = model.record_census(member(), census_date=D(2025, 10, 2), number_on_roll=172,
                                             previous_on_that_date=172, latest_before=None)
        assert recorded is None

    def test_an_older_census_does_not_replace_the_current_figure(self):
        updated, recorded = model.record_census(member(), census_date=D(2024, 10, 3), number_on_roll=150,
                                                previous_on_that_date=None, latest_before=None)
        assert not recorded.is_latest and recorded.old_number_on_roll is None and updated.number_on_roll == 172

    @pytest.mark.parametrize("number", [-1, True, 1.5])
    def test_bad_numbers(self, number):
        refused(lambda: model.record_census(member(), census_date=D(2026, 10, 1), number_on_roll=number,
                                            previous_on_that_date=None, latest_before=None), "number_on_roll")


class TestConversion:
    def convert(self, predecessor=None, **overrides):
        arguments = dict(successor_open=None, successor_urn="149876", successor_dfe_number=None,
                         conversion_date=D(2027, 9, 1), mat=TRUST)
        arguments.update(overrides)
        return model.convert_to_academy(predecessor or member(), **arguments)

    def test_predecessor_closes_and_successor_opens_in_the_mat(self):
        conversion = self.convert(successor_name="Haddenham Academy")
        old, new = conversion.predecessor, conversion.successor
        assert (old.status, old.left_on, old.left_reason) == ("converted", D(2027, 9, 1), model.CONVERTED)
        assert (new.urn, new.joined_on, new.mat, new.is_academy) == ("149876", D(2027, 9, 1), TRUST, True)
        assert new.member_since == D(2026, 4, 1) and new.dfe_number == "825/2001"
        assert old.is_member_on(D(2027, 8, 31)) and not old.is_member_on(D(2027, 9, 1))
        assert new.is_member_on(D(2027, 9, 1))

    def test_an_academy_is_not_converted(self):
        refused(lambda: self.convert(member(establishment_type="academy_converter", mat=TRUST)), "urn")

    def test_a_left_school_is_not_converted(self):
        left = model.leave(member(), effective_date=D(2027, 1, 1), reason="x")
        refused(lambda: self.convert(left), "urn", NotAMember)

    def test_mat_is_required(self):
        refused(lambda: self.convert(mat=None), "mat")

    def test_same_urn_refused(self):
        refused(lambda: self.convert(successor_urn="110394"), "successor_urn")

    def test_successor_already_open(self):
        refused(lambda: self.convert(successor_open=member(urn="149876")), "successor_urn", AlreadyMember)

    def test_conversion_on_or_before_joining(self):
        refused(lambda: self.convert(conversion_date=D(2026, 4, 1)), "conversion_date")

    def test_successor_type_must_be_an_academy(self):
        refused(lambda: self.convert(establishment_type="community"), "establishment_type")


class TestMatOnADate:
    def test_replays_joining_changes_and_closing(self):
        H = model.HistoryEntry
        entries = [H("1", D(2020, 9, 1), "joined", {"mat": {"id": "A", "name": "A"}}),
                   H("1", D(2022, 9, 1), "details_changed", {"mat": {"old": {"id": "A", "name": "A"},
                                                                     "new": {"id": "B", "name": "B"}}}),
                   H("1", D(2024, 9, 1), "left", {})]
        assert model.mat_on(entries, D(2020, 8, 31)) is False
        assert model.mat_on(entries, D(2021, 1, 1)) == {"id": "A", "name": "A"}
        assert model.mat_on(entries, D(2022, 9, 1)) == {"id": "B", "name": "B"}
        assert model.mat_on(entries, D(2024, 9, 1)) is False
