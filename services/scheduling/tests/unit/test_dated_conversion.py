"""A conversion announced before its date (docs/events.md: `conversion_date` is the first day as an
academy; the event may arrive well before it). Found by an end-to-end test: scheduling closed the
maintained school and moved its people to the academy at once. Rules that ask "on date D" must see
the maintained school (outside the MAT, on its own calendar) before the date, the academy in the
MAT from it; re-planning touches only reviews on or after the date that the new state breaks."""
from __future__ import annotations

import datetime as dt

from scheduling.adapters.repository import default_la_term_dates
from scheduling.domain import calendar as cal
from scheduling.domain.peer_review import (LEAD, MEMBER, HostRequest, Problem, Review, Reviewer, School, replan,
                                           reviewer_may_serve, succession)
from scheduling.domain.review_validator import validate
from scheduling.service_layer import handlers

LA = default_la_term_dates()[("buckinghamshire", 2026)]
START = dt.date(2026, 9, 1)
CONVERSION = dt.date(2027, 1, 4)  # a Monday in term
INSET_BEFORE = dt.date(2026, 11, 20)  # the maintained school's INSET day (a Friday)
OLD, NEW, HOST, OTHER = "300001", "300901", "300002", "300003"


def school(urn, mats=((START, None),), insets=()):
    return School(urn=urn, postcode="HP1 1AA", calendar=cal.SchoolCalendar(urn, LA, frozenset(insets)), mats=mats)


def converted():
    """The maintained school OLD converts on CONVERSION to the academy NEW in MAT M1; HOST is in M1."""
    return succession(school(OLD, insets=(INSET_BEFORE,)), school(NEW, mats=((CONVERSION, "M1"),)), CONVERSION)


class TestSuccession:
    def test_the_maintained_school_is_open_until_the_day_before_and_closed_from_the_date(self):
        old, _ = converted()
        assert old.is_open(dt.date(2026, 12, 16)) and not old.is_open(CONVERSION)
        assert not old.is_open(dt.date(2027, 3, 1))

    def test_the_academy_has_the_maintained_schools_calendar_before_the_date_and_its_own_from_it(self):
        _, new = converted()
        assert not new.is_open(INSET_BEFORE)  # the maintained school's INSET day still closes its people
        assert new.is_open(dt.date(2026, 11, 19)) and new.is_open(CONVERSION)

    def test_outside_the_mat_before_the_date_in_it_from_the_date(self):
        _, new = converted()
        assert new.mat_on(CONVERSION - dt.timedelta(days=1)) is None
        assert new.mat_on(CONVERSION) == "M1" and new.mat_on(dt.date(2027, 6, 1)) == "M1"

    def test_both_urns_are_the_same_school(self):
        old, new = converted()
        assert NEW in old.same_school and OLD in new.same_school


def problem_with(reviewers, hosts=(HOST,)):
    old, new = converted()
    schools = {OLD: old, NEW: new, HOST: school(HOST, mats=((START, "M1"),)), OTHER: school(OTHER)}
    return Problem(2026, schools, {r.reviewer_id: r for r in reviewers}, tuple(HostRequest(h) for h in hosts))


MOVED_LEAD = Reviewer("moved-l", NEW, True, True)  # worked at OLD; moved to NEW when the event arrived
OTHER_LEAD, OTHER_MEMBER = Reviewer("other-l", OTHER, True, True), Reviewer("other-m", OTHER, True, False)
BEFORE = (dt.date(2026, 12, 8), dt.date(2026, 12, 9))
AFTER = (dt.date(2027, 1, 12), dt.date(2027, 1, 13))


class TestRulesOnTheReviewDate:
    def test_same_mat_only_from_the_conversion_date(self):
        p = problem_with([MOVED_LEAD, OTHER_MEMBER])
        before = Review(HOST, BEFORE, (("moved-l", LEAD), ("other-m", MEMBER)))
        after = Review(HOST, AFTER, (("moved-l", LEAD), ("other-m", MEMBER)))
        assert "same_mat" not in {v.rule for v in validate(p, [before], require_all_hosts=False)}
        assert reviewer_may_serve(p, MOVED_LEAD, HOST, BEFORE)
        assert "same_mat" in {v.rule for v in validate(p, [after], require_all_hosts=False)}
        assert not reviewer_may_serve(p, MOVED_LEAD, HOST, AFTER)

    def test_a_moved_reviewer_never_reviews_the_school_under_its_old_urn(self):
        p = problem_with([MOVED_LEAD, OTHER_MEMBER], hosts=(OLD,))
        own = Review(OLD, BEFORE, (("moved-l", LEAD), ("other-m", MEMBER)))
        assert "own_school" in {v.rule for v in validate(p, [own], require_all_hosts=False)}
        assert not reviewer_may_serve(p, MOVED_LEAD, OLD, BEFORE)

    def test_the_reviewers_school_is_judged_open_on_its_calendar_on_the_day(self):
        p = problem_with([MOVED_LEAD, OTHER_MEMBER])
        on_inset = Review(HOST, (INSET_BEFORE,), (("moved-l", LEAD), ("other-m", MEMBER)))
        assert "reviewer_school_closed" in {v.rule for v in validate(p, [on_inset], require_all_hosts=False)}

    def test_the_maintained_school_hosts_before_the_date_not_from_it(self):
        p = problem_with([OTHER_LEAD, OTHER_MEMBER], hosts=(OLD,))
        team = (("other-l", LEAD), ("other-m", MEMBER))
        assert validate(p, [Review(OLD, BEFORE, team)]) == []
        assert "host_closed" in {v.rule for v in validate(p, [Review(OLD, AFTER, team)])}


class TestReplanOnlyFromTheConversionDate:
    def _replan(self, reviews):
        p = problem_with([MOVED_LEAD, OTHER_LEAD, OTHER_MEMBER, Reviewer("moved-m", NEW, True, False)],
                         hosts=tuple(r.host_urn for r in reviews))
        return p, replan(p, reviews, from_date=CONVERSION,
                         problems_of=lambda r: validate(p, [r], require_all_hosts=False))

    def test_a_review_before_the_date_is_left_alone(self):
        before = Review(HOST, BEFORE, (("moved-l", LEAD), ("moved-m", MEMBER)))
        _, (new, changed, unresolved) = self._replan([before])
        assert new == [before] and changed == {} and unresolved == []

    def test_a_review_from_the_date_that_the_new_mat_breaks_is_re_planned_keeping_its_dates(self):
        after = Review(HOST, AFTER, (("moved-l", LEAD), ("moved-m", MEMBER)))
        p, (new, changed, unresolved) = self._replan([after])
        assert unresolved == [] and changed[HOST].dates == AFTER
        assert {p.reviewers[r].urn for r in changed[HOST].reviewer_ids} == {OTHER}
        assert validate(p, new) == []


class FakeRepo:
    def __init__(self, schools):
        self.schools = schools

    def school(self, session, urn):
        return self.schools.get(urn)


def test_who_may_book_on_the_session_day(monkeypatch):
    """Before the date the maintained school's people (already moved to the academy) book for it and
    the academy is not yet a member; from the date it is the other way round."""
    known = {"details_sequence": 1, "lifecycle_sequence": 4}
    rows = {OLD: {"urn": OLD, "active": False, "closed_on": CONVERSION.isoformat(), "predecessor_urn": None, **known},
            NEW: {"urn": NEW, "active": True, "closed_on": None, "predecessor_urn": OLD, **known}}
    monkeypatch.setattr(handlers, "repo", FakeRepo(rows))
    person = {"contact_id": "c1", "urn": NEW, "active": True}
    day_before, day = CONVERSION - dt.timedelta(days=1), CONVERSION
    assert handlers._member_on(rows[OLD], day_before) and not handlers._member_on(rows[OLD], day)
    assert not handlers._opened_by(None, rows[NEW], day_before) and handlers._opened_by(None, rows[NEW], day)
    assert handlers._works_at_on(None, person, OLD, day_before) and not handlers._works_at_on(None, person, OLD, day)
    assert handlers._works_at_on(None, person, NEW, day)
    assert handlers._opened_by(None, rows[OLD], day_before)  # not a successor: no opening date of its own
