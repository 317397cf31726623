"""An independent check of every hard peer-review rule on any schedule.

Written apart from the planner on purpose: it shares only the data types and the
calendar's `is_open` (the one definition of an open day), so a planner bug cannot hide
behind the same helper. Every produced schedule must come back with no violations.
"""
from __future__ import annotations

import collections
import dataclasses
import datetime as dt

from scheduling.domain.calendar import is_open
from scheduling.domain.peer_review import LEAD, MEMBER, Problem, Review

RULES = ("unknown_host", "not_reviewed", "reviewed_twice", "review_length", "dates_not_consecutive",
         "dates_outside_cycle", "host_closed", "team_size", "one_lead", "lead_not_qualified", "unknown_reviewer",
         "untrained_reviewer", "own_school", "same_mat", "reviewer_school_closed", "reviewer_unavailable",
         "double_booked", "reciprocal", "duplicate_reviewer", "reviewer_not_subscribed")


@dataclasses.dataclass(frozen=True)
class Violation:
    rule: str
    host_urn: str
    detail: str


def _mat(school, day: dt.date):
    mat = None
    for start, value in sorted(school.mats, key=lambda m: m[0]):
        if start <= day:
            mat = value
    return mat


def _subscribed(problem: Problem, urn: str) -> bool:
    """The reviewer's school subscribes to peer review in the cycle (under either URN of a converted
    school: the academy and the maintained school it was are one school either side of the date)."""
    if problem.subscribed is None:
        return True
    home = problem.schools.get(urn)
    return urn in problem.subscribed or bool(home and set(home.same_school) & problem.subscribed)


def validate(problem: Problem, reviews: list[Review], *, require_all_hosts: bool = True) -> list[Violation]:
    found: list[Violation] = []

    def bad(rule, host, detail):
        found.append(Violation(rule, host, detail))

    first, last = dt.date(problem.cycle, 9, 1), dt.date(problem.cycle + 1, 8, 31)
    per_host = collections.Counter(r.host_urn for r in reviews)
    if require_all_hosts:
        for req in problem.hosts:
            if per_host[req.urn] == 0:
                bad("not_reviewed", req.urn, f"{req.urn} has no review in cycle {problem.cycle}")
    for urn, n in per_host.items():
        if n > 1:
            bad("reviewed_twice", urn, f"{urn} is reviewed {n} times in the cycle")
    occupied = collections.defaultdict(list)  # (reviewer, day) -> host
    pairs = set()
    for review in reviews:
        host = problem.schools.get(review.host_urn)
        h = review.host_urn
        if host is None:
            bad("unknown_host", h, f"{h} is not a known school")
            continue
        dates = sorted(review.dates)
        if not 1 <= len(dates) <= 3 or len(set(dates)) != len(dates):
            bad("review_length", h, f"a review lasts 1-3 distinct days, this one {len(dates)}")
        for a, b in zip(dates, dates[1:]):
            gap = (b - a).days
            if gap != 1 and not (gap == 3 and a.weekday() == 4):
                bad("dates_not_consecutive", h, f"{a} and {b} are not consecutive weekdays")
        for day in dates:
            if not first <= day <= last:
                bad("dates_outside_cycle", h, f"{day} is outside cycle {problem.cycle}")
            if not is_open(host.calendar, day):
                bad("host_closed", h, f"host {h} is closed on {day}")
        if not 2 <= len(review.team) <= 4:
            bad("team_size", h, f"a team has 2-4 reviewers, this one {len(review.team)}")
        ids = [rid for rid, _ in review.team]
        if len(set(ids)) != len(ids):
            bad("duplicate_reviewer", h, "a reviewer appears twice in the team")
        leads = [rid for rid, role in review.team if role == LEAD]
        if len(leads) != 1 or any(role not in (LEAD, MEMBER) for _, role in review.team):
            bad("one_lead", h, f"a team has exactly one lead, this one {len(leads)}")
        for rid, role in review.team:
            reviewer = problem.reviewers.get(rid)
            if reviewer is None:
                bad("unknown_reviewer", h, f"reviewer {rid} is not known")
                continue
            if not reviewer.trained:
                bad("untrained_reviewer", h, f"reviewer {rid} is not trained")
            if role == LEAD and not reviewer.can_lead:
                bad("lead_not_qualified", h, f"reviewer {rid} is not a trained lead reviewer")
            if reviewer.urn == h or reviewer.urn in getattr(host, "same_school", ()):
                bad("own_school", h, f"reviewer {rid} works at the host school {h}")
            if not _subscribed(problem, reviewer.urn):
                bad("reviewer_not_subscribed", h, f"reviewer {rid}'s school {reviewer.urn} does not subscribe to "
                                                  f"peer review in cycle {problem.cycle}")
            home = problem.schools.get(reviewer.urn)
            pairs.add((reviewer.urn, h))
            for day in dates:
                occupied[rid, day].append(h)
                if day in reviewer.unavailable:
                    bad("reviewer_unavailable", h, f"reviewer {rid} is unavailable on {day}")
                if home is None:
                    continue
                host_mat, home_mat = _mat(host, day), _mat(home, day)
                if host_mat is not None and host_mat == home_mat:
                    bad("same_mat", h, f"reviewer {rid}'s school {reviewer.urn} and host {h} are both in MAT "
                                       f"{host_mat} on {day}")
                if not is_open(home.calendar, day):
                    bad("reviewer_school_closed", h, f"reviewer {rid}'s school {reviewer.urn} is closed on {day}")
    for (rid, day), hosts in occupied.items():
        if len(hosts) > 1:
            bad("double_booked", hosts[0], f"reviewer {rid} is at {', '.join(hosts)} on {day}")
    for a, b in pairs:
        if a < b and (b, a) in pairs:
            bad("reciprocal", b, f"{a} reviews {b} and {b} reviews {a} in the same cycle")
    return found
