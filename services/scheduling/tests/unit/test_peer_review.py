"""Peer reviews: the planner, the independent validator (each rule caught on a hand-made bad
schedule), infeasibility reasons, and re-planning after a conversion."""
import dataclasses
import datetime as dt

import pytest

from scheduling.adapters.repository import default_la_term_dates
from scheduling.domain import calendar as cal
from scheduling.domain.peer_review import (LEAD, MEMBER, HostRequest, Infeasible, Problem, Review, Reviewer,
                                           School, plan, replan)
from scheduling.domain.review_validator import validate

LA = default_la_term_dates()[("buckinghamshire", 2026)]
START = dt.date(2026, 9, 1)


def school(urn, mat=None, insets=(), mats=None, location=None, term=None):
    return School(urn=urn, postcode=f"HP{int(urn) % 20 + 1} 1AA", calendar=cal.SchoolCalendar(urn, LA, frozenset(insets)),
                  mats=mats or ((START, mat),), location=location, preferred_term=term)


def small_problem(n=6, mats=None, reviewers_per_school=2):
    schools = {f"{100001 + i}": school(f"{100001 + i}", (mats or {}).get(i), location=(i * 2.0, 0.0)) for i in range(n)}
    reviewers = {}
    for urn in schools:
        for k in range(reviewers_per_school):
            rid = f"{urn}-{k}"
            reviewers[rid] = Reviewer(rid, urn, trained=True, can_lead=(k == 0))
    return Problem(2026, schools, reviewers, tuple(HostRequest(u, 2, 2) for u in schools))


# a valid hand-made schedule on 3 schools, then broken one rule at a time
A, B, C = "200001", "200002", "200003"
TUE = dt.date(2026, 9, 15)
WED = dt.date(2026, 9, 16)


def hand_problem(**changes):
    schools = {u: school(u) for u in (A, B, C)}
    schools.update(changes.pop("schools", {}))
    reviewers = {f"{u}-l": Reviewer(f"{u}-l", u, True, True) for u in (A, B, C)}
    reviewers |= {f"{u}-m": Reviewer(f"{u}-m", u, True, False) for u in (A, B, C)}
    reviewers.update(changes.pop("reviewers", {}))
    return Problem(2026, schools, reviewers, tuple(HostRequest(u) for u in (A, B, C)))


def good_schedule():
    # A reviews B, B reviews C, C reviews A: no reciprocal pair
    return [Review(B, (TUE, WED), ((f"{A}-l", LEAD), (f"{A}-m", MEMBER))),
            Review(C, (TUE, WED), ((f"{B}-l", LEAD), (f"{B}-m", MEMBER))),
            Review(A, (TUE, WED), ((f"{C}-l", LEAD), (f"{C}-m", MEMBER)))]


def rules(problem, schedule):
    return {v.rule for v in validate(problem, schedule)}


class TestValidatorCatchesEachViolation:
    def test_the_good_schedule_passes(self):
        assert validate(hand_problem(), good_schedule()) == []

    def test_own_school(self):
        s = good_schedule()
        s[0] = Review(B, (TUE, WED), ((f"{A}-l", LEAD), (f"{B}-m", MEMBER)))
        assert "own_school" in rules(hand_problem(), s)

    def test_same_mat_on_the_review_date(self):
        p = hand_problem(schools={A: school(A, "MAT1"), B: school(B, "MAT1")})
        assert "same_mat" in rules(p, good_schedule())

    def test_same_mat_only_from_the_conversion_date(self):
        converts_later = school(A, mats=((START, None), (dt.date(2026, 10, 1), "MAT1")))
        p = hand_problem(schools={A: converts_later, B: school(B, "MAT1")})
        assert "same_mat" not in rules(p, good_schedule())  # the review is in September
        late = dt.date(2026, 10, 6), dt.date(2026, 10, 7)
        s = [Review(r.host_urn, late, r.team) for r in good_schedule()]
        assert "same_mat" in rules(p, s)

    def test_reciprocal_in_the_same_cycle(self):
        s = good_schedule()
        s[2] = Review(A, (TUE, WED), ((f"{B}-l", LEAD), (f"{C}-m", MEMBER)))  # B reviews A, A reviews B
        s[1] = Review(C, (dt.date(2026, 9, 22), dt.date(2026, 9, 23)), ((f"{B}-l", LEAD), (f"{B}-m", MEMBER)))
        assert "reciprocal" in rules(hand_problem(), s)

    def test_untrained_reviewer(self):
        p = hand_problem(reviewers={f"{A}-m": Reviewer(f"{A}-m", A, trained=False)})
        assert "untrained_reviewer" in rules(p, good_schedule())

    def test_lead_must_be_a_trained_lead(self):
        s = good_schedule()
        s[0] = Review(B, (TUE, WED), ((f"{A}-m", LEAD), (f"{A}-l", MEMBER)))
        assert "lead_not_qualified" in rules(hand_problem(), s)

    def test_host_closed_on_a_review_date(self):
        p = hand_problem(schools={B: school(B, insets=[TUE])})
        assert "host_closed" in rules(p, good_schedule())

    def test_reviewer_school_closed_on_a_review_date(self):
        p = hand_problem(schools={A: school(A, insets=[WED])})
        found = validate(p, good_schedule())
        assert any(v.rule == "reviewer_school_closed" and v.host_urn == B for v in found)

    def test_review_on_a_bank_holiday(self):
        s = good_schedule()
        s[0] = Review(B, (dt.date(2027, 5, 3),), s[0].team)  # early May bank holiday
        assert "host_closed" in rules(hand_problem(), s)

    def test_reviewer_unavailable(self):
        p = hand_problem(reviewers={f"{A}-l": Reviewer(f"{A}-l", A, True, True, frozenset({TUE}))})
        assert "reviewer_unavailable" in rules(p, good_schedule())

    def test_nobody_in_two_places_at_once(self):
        s = good_schedule()
        s[1] = Review(C, (WED,), ((f"{A}-l", LEAD), (f"{B}-m", MEMBER)))
        assert "double_booked" in rules(hand_problem(), s)

    @pytest.mark.parametrize("size", [1, 5])
    def test_team_of_two_to_four(self, size):
        p = hand_problem(reviewers={f"{C}-{k}": Reviewer(f"{C}-{k}", C, True) for k in range(4)})
        team = ((f"{C}-l", LEAD),) + tuple((f"{C}-{k}", MEMBER) for k in range(size - 1))
        s = good_schedule()
        s[2] = Review(A, (TUE, WED), team)
        assert "team_size" in rules(p, s)

    @pytest.mark.parametrize("team", [((f"{A}-l", MEMBER), (f"{A}-m", MEMBER)), ((f"{A}-l", LEAD), (f"{A}-m", LEAD))])
    def test_exactly_one_lead(self, team):
        s = good_schedule()
        s[0] = Review(B, (TUE, WED), team)
        assert "one_lead" in rules(hand_problem(), s)

    def test_every_host_reviewed_once(self):
        assert "not_reviewed" in rules(hand_problem(), good_schedule()[:2])
        assert "reviewed_twice" in rules(hand_problem(), good_schedule() + [good_schedule()[0]])

    def test_one_to_three_consecutive_days(self):
        s = good_schedule()
        s[0] = Review(B, tuple(dt.date(2026, 9, d) for d in (14, 15, 16, 17)), s[0].team)
        assert "review_length" in rules(hand_problem(), s)
        s[0] = Review(B, (dt.date(2026, 9, 14), dt.date(2026, 9, 16)), good_schedule()[0].team)
        assert "dates_not_consecutive" in rules(hand_problem(), s)

    def test_unknown_reviewer(self):
        s = good_schedule()
        s[0] = Review(B, (TUE, WED), ((f"{A}-l", LEAD), ("ghost", MEMBER)))
        assert "unknown_reviewer" in rules(hand_problem(), s)


class TestPlanner:
    def test_plans_every_host_with_no_violation(self):
        problem = small_problem(12, mats={0: "M1", 1: "M1", 2: "M1", 5: "M2", 6: "M2"})
        result = plan(problem, time_limit=3)
        assert validate(problem, result.reviews) == []
        assert len(result.reviews) == 12
        assert "cp-sat" in result.method

    def test_the_heuristic_alone_also_gives_a_valid_plan(self):
        problem = small_problem(12, mats={0: "M1", 1: "M1", 2: "M1"})
        result = plan(problem, time_limit=1, use_solver=False)
        assert result.method == "heuristic" and validate(problem, result.reviews) == []

    def test_clusters_are_planned_and_still_valid(self):
        problem = small_problem(30)
        result = plan(problem, time_limit=4, cluster_size=10)
        clusters = [p for p in result.parts if p.startswith("cluster ")]
        assert len(clusters) == 4  # 30 schools halved until at most 10: 7, 8, 7, 8
        assert validate(problem, result.reviews) == []

    def test_load_is_spread(self):
        problem = small_problem(10)
        result = plan(problem, time_limit=3)
        low, high = result.load_spread(problem)
        assert high <= 2  # 20 seats on 20 reviewers: nobody needs more than 2

    def test_preferred_term_is_respected_when_possible(self):
        problem = small_problem(6)
        schools = dict(problem.schools)
        schools["100001"] = dataclasses.replace(schools["100001"], preferred_term="summer")
        problem = dataclasses.replace(problem, schools=schools)
        result = plan(problem, time_limit=2)
        review = next(r for r in result.reviews if r.host_urn == "100001")
        assert LA.term_of(review.dates[0]) == "summer"

    def test_plan_is_deterministic_with_the_heuristic(self):
        problem = small_problem(10)
        assert plan(problem, use_solver=False).reviews == plan(problem, use_solver=False).reviews


class TestInfeasible:
    def test_too_few_trained_reviewers_outside_the_mat(self):
        problem = small_problem(4, mats={0: "M", 1: "M", 2: "M"}, reviewers_per_school=1)
        with pytest.raises(Infeasible) as caught:
            plan(problem, time_limit=1)
        assert any("100001" in r and "too few trained reviewers outside the host's school and MAT" in r
                   for r in caught.value.reasons)

    def test_reciprocity_leaves_the_outsider_school_without_reviewers(self):
        # school 100004 must review the three MAT schools, so none of them may review it back
        problem = small_problem(4, mats={0: "M", 1: "M", 2: "M"})
        with pytest.raises(Infeasible, match="host 100004: no team of 2 free trained reviewers.*never reviewed by a "
                                             "school it reviews.*proved by CP-SAT"):
            plan(problem, time_limit=1)

    def test_no_lead_reviewer_outside(self):
        problem = small_problem(3)
        reviewers = {k: dataclasses.replace(r, can_lead=False) if r.urn != "100001" else r
                     for k, r in problem.reviewers.items()}
        with pytest.raises(Infeasible, match="no trained lead reviewer outside"):
            plan(dataclasses.replace(problem, reviewers=reviewers), time_limit=1)

    def test_bad_team_size_and_length(self):
        problem = small_problem(3)
        problem = dataclasses.replace(problem, hosts=(HostRequest("100001", days=4, team_size=5),) + problem.hosts[1:])
        with pytest.raises(Infeasible) as caught:
            plan(problem)
        assert any("1-3 days" in r for r in caught.value.reasons) and any("2-4 reviewers" in r for r in caught.value.reasons)


class TestReplanAfterConversion:
    def test_only_the_review_with_a_reviewer_now_in_the_hosts_mat_changes(self):
        problem = small_problem(8, mats={0: "M1"})
        result = plan(problem, time_limit=2)
        # pick a late-year review whose host is in MAT M1 or make one: host 100001 is in M1
        host_review = next(r for r in result.reviews if r.host_urn == "100001")
        reviewer_school = problem.reviewers[host_review.reviewer_ids[0]].urn
        conversion = host_review.dates[0] - dt.timedelta(days=7)
        schools = dict(problem.schools)
        schools[reviewer_school] = dataclasses.replace(schools[reviewer_school],
                                                       mats=((START, None), (conversion, "M1")))
        after = dataclasses.replace(problem, schools=schools)
        assert "same_mat" in {v.rule for v in validate(after, result.reviews)}
        from scheduling.domain.review_validator import validate as v

        new, changed, unresolved = replan(after, result.reviews, from_date=conversion,
                              problems_of=lambda r: v(after, [r], require_all_hosts=False))
        assert validate(after, new) == [] and unresolved == []
        assert set(changed) >= {"100001"}
        unaffected = [r for r in result.reviews if r.host_urn not in changed]
        assert all(r in new for r in unaffected)
        assert changed["100001"].dates == host_review.dates  # same dates, new reviewer


class TestReplanWhenAReviewerBecomesUnavailable:
    def test_only_that_review_changes_and_keeps_its_dates(self):
        problem = small_problem(8)
        result = plan(problem, time_limit=2)
        target = result.reviews[3]
        rid = target.reviewer_ids[0]
        reviewers = dict(problem.reviewers)
        reviewers[rid] = dataclasses.replace(reviewers[rid], unavailable=frozenset(target.dates))
        after = dataclasses.replace(problem, reviewers=reviewers)
        new, changed, unresolved = replan(after, result.reviews, from_date=START,
                                          problems_of=lambda r: validate(after, [r], require_all_hosts=False))
        assert list(changed) == [target.host_urn] and unresolved == []
        assert rid not in changed[target.host_urn].reviewer_ids and changed[target.host_urn].dates == target.dates
        assert validate(after, new) == []

    def test_a_review_before_the_change_date_is_left_alone(self):
        problem = small_problem(8)
        result = plan(problem, time_limit=2)
        target = result.reviews[0]
        rid = target.reviewer_ids[0]
        reviewers = dict(problem.reviewers)
        reviewers[rid] = dataclasses.replace(reviewers[rid], unavailable=frozenset(target.dates))
        after = dataclasses.replace(problem, reviewers=reviewers)
        _, changed, _ = replan(after, result.reviews, from_date=target.dates[-1] + dt.timedelta(days=1),
                               problems_of=lambda r: validate(after, [r], require_all_hosts=False))
        assert changed == {}


from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


@st.composite
def random_problems(draw):
    n = draw(st.integers(min_value=3, max_value=14))
    mats = {i: draw(st.sampled_from([None, None, "M1", "M2"])) for i in range(n)}
    converts = {i: draw(st.sampled_from([None, None, None, "M1", "M2"])) for i in range(n)}
    open_days = list(cal.open_days(cal.SchoolCalendar("x", LA)))
    schools, reviewers, hosts = {}, {}, []
    for i in range(n):
        urn = f"{500001 + i}"
        history = ((START, mats[i]),) + (((dt.date(2027, 1, 4), converts[i]),) if converts[i] else ())
        insets = draw(st.lists(st.sampled_from(open_days), max_size=5, unique=True))
        schools[urn] = School(urn, f"HP{i % 9 + 1} 1AA", cal.SchoolCalendar(urn, LA, frozenset(insets)), history,
                              location=(draw(st.floats(0, 30)), draw(st.floats(0, 30))),
                              preferred_term=draw(st.sampled_from([None, "autumn", "spring", "summer"])))
        for k in range(draw(st.integers(min_value=0, max_value=3))):
            rid = f"{urn}-{k}"
            away = frozenset(draw(st.lists(st.sampled_from(open_days), max_size=20)))
            reviewers[rid] = Reviewer(rid, urn, trained=draw(st.booleans()) or k == 0, can_lead=draw(st.booleans()),
                                      unavailable=away)
        hosts.append(HostRequest(urn, draw(st.integers(1, 3)), draw(st.integers(2, 3))))
    return Problem(2026, schools, reviewers, tuple(hosts))


class TestEveryPlanPassesTheValidator:
    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(problem=random_problems(), use_solver=st.booleans())
    def test_a_plan_is_valid_or_the_problem_is_declared_infeasible(self, problem, use_solver):
        try:
            result = plan(problem, time_limit=0.5, use_solver=use_solver, cluster_size=6)
        except Infeasible as exc:
            assert exc.reasons and all(isinstance(r, str) and r for r in exc.reasons)
            return
        assert validate(problem, result.reviews) == []


class TestReplanWhenTheHostConverts:
    def test_the_host_joining_its_reviewers_mat_changes_only_its_own_review(self):
        problem = small_problem(8, mats={7: "M9"})
        result = plan(problem, time_limit=2)
        # the host joins the MAT of its lead reviewer's school from a week before its review
        target = next(r for r in result.reviews if r.dates[0] > dt.date(2026, 10, 1))
        lead_school = problem.reviewers[target.lead].urn
        conversion = target.dates[0] - dt.timedelta(days=7)
        schools = dict(problem.schools)
        schools[lead_school] = dataclasses.replace(schools[lead_school], mats=((START, "M5"),))
        schools[target.host_urn] = dataclasses.replace(schools[target.host_urn],
                                                       mats=((START, None), (conversion, "M5")))
        after = dataclasses.replace(problem, schools=schools)
        broken = {v.host_urn for v in validate(after, result.reviews)}
        new, changed, unresolved = replan(after, result.reviews, from_date=conversion,
                                          problems_of=lambda r: validate(after, [r], require_all_hosts=False))
        assert validate(after, new) == [] and unresolved == []
        assert target.host_urn in changed and set(changed) == broken
        assert problem.reviewers[changed[target.host_urn].lead].urn != lead_school
