"""Rule 15: reviewers come only from schools subscribed to peer review, on a first plan and on every
re-plan. The independent validator has the rule (`reviewer_not_subscribed`); re-plans must keep it."""
import dataclasses
import datetime as dt

from scheduling.domain.peer_review import LEAD, MEMBER, Review, Reviewer, plan, replan
from scheduling.domain.review_validator import validate

from .test_peer_review import A, B, C, START, TUE, WED, good_schedule, hand_problem, school, small_problem

OUTSIDER = "109999"  # a member school that does not subscribe to peer review


def rules(problem, schedule):
    return {v.rule for v in validate(problem, schedule)}


class TestValidatorRuleReviewerNotSubscribed:
    def test_a_reviewer_from_a_school_that_does_not_subscribe_is_flagged(self):
        problem = dataclasses.replace(hand_problem(), subscribed=frozenset({B, C}))
        found = [v for v in validate(problem, good_schedule()) if v.rule == "reviewer_not_subscribed"]
        assert {v.host_urn for v in found} == {B}  # A's reviewers review B
        assert f"school {A} does not subscribe" in found[0].detail

    def test_every_school_subscribed_passes(self):
        problem = dataclasses.replace(hand_problem(), subscribed=frozenset({A, B, C}))
        assert validate(problem, good_schedule()) == []

    def test_the_academy_counts_as_subscribed_through_its_predecessor(self):
        academy = dataclasses.replace(school(A), same_school=frozenset({"299999"}))
        problem = dataclasses.replace(hand_problem(schools={A: academy}), subscribed=frozenset({"299999", B, C}))
        assert "reviewer_not_subscribed" not in rules(problem, good_schedule())


def county_with_an_outsider():
    """Eight subscribed schools planned, then a non-subscribing school next door with free reviewers
    (load 0, nearest): the cheapest replacement for anyone, unless the rule is kept."""
    base = small_problem(8)
    result = plan(base, time_limit=2)
    schools = dict(base.schools) | {OUTSIDER: school(OUTSIDER, location=(7.0, 0.0))}
    reviewers = dict(base.reviewers) | {f"{OUTSIDER}-{k}": Reviewer(f"{OUTSIDER}-{k}", OUTSIDER, True, True)
                                        for k in range(3)}
    problem = dataclasses.replace(base, schools=schools, reviewers=reviewers, subscribed=frozenset(base.schools))
    return problem, result


def replanned(problem, reviews, from_date=START):
    return replan(problem, reviews, from_date=from_date,
                  problems_of=lambda r: validate(problem, [r], require_all_hosts=False))


def test_a_replan_takes_no_reviewer_from_a_school_that_does_not_subscribe():
    """Before the fix the re-plan took the outsider's free, nearest lead and the validator flagged it."""
    problem, result = county_with_an_outsider()
    target = result.reviews[3]
    rid = target.reviewer_ids[0]
    problem = dataclasses.replace(problem, reviewers=problem.reviewers | {
        rid: dataclasses.replace(problem.reviewers[rid], unavailable=frozenset(target.dates))})
    new, changed, unresolved = replanned(problem, result.reviews)
    assert target.host_urn in changed and unresolved == []
    assert validate(problem, new) == []
    assert all(problem.reviewers[r].urn != OUTSIDER for review in new for r in review.reviewer_ids)


def test_a_replan_replaces_a_kept_reviewer_whose_school_no_longer_subscribes():
    problem, result = county_with_an_outsider()
    target = result.reviews[0]
    gone = problem.reviewers[target.reviewer_ids[0]].urn
    problem = dataclasses.replace(problem, subscribed=problem.subscribed - {gone})
    new, changed, unresolved = replanned(problem, result.reviews)
    assert target.host_urn in changed and unresolved == []
    assert validate(problem, new) == []
