"""Peer reviews for a cycle (an academic year): who reviews which school, and when.

Hard rules (checked by `scheduling.domain.review_validator`, independently of how a
schedule was produced): a team of 2-4 trained reviewers, exactly one of them the lead;
never from the host school, never from a school in the host's MAT on any review date,
never from a school the host reviewed in the same cycle; every review date open for
the host and for each reviewer's school; nobody in two places at once; every host
reviewed once, on 1-3 consecutive open days.

Soft goals: spread the reviewing load (minimise the maximum), shorter travel,
the host's preferred term.

How: stage 1 gives each host a week (a deterministic spread over its open weeks,
preferred term first); stage 2 picks teams with OR-Tools CP-SAT under a time limit,
hinted with the deterministic greedy heuristic, so a result always comes. Large
problems are cut into geographic clusters solved one by one; hosts a cluster cannot
serve go to a final greedy pass over every reviewer. `PlanResult.method` says
honestly which produced each part.
"""
from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import math
import re
import time
from typing import Iterable

from scheduling.domain.calendar import SchoolCalendar, is_open, open_days

MIN_TEAM, MAX_TEAM = 2, 4
MIN_DAYS, MAX_DAYS = 1, 3
LEAD, MEMBER = "lead", "member"


class Infeasible(Exception):
    """No schedule exists (or none was found) under the hard rules; `reasons` says which rule bites."""

    def __init__(self, reasons: list[str]):
        super().__init__("; ".join(reasons))
        self.reasons = reasons


@dataclasses.dataclass(frozen=True)
class School:
    urn: str
    postcode: str
    calendar: SchoolCalendar
    mats: tuple[tuple[dt.date, str | None], ...] = ()  # (first day, MAT id or None), in date order
    location: tuple[float, float] | None = None  # km east/north, when known
    preferred_term: str | None = None
    same_school: frozenset[str] = frozenset()  # its predecessor / successor URNs at an academy conversion

    def is_open(self, day: dt.date) -> bool:
        """`calendar.is_open`, memoised per school (the planner asks millions of times)."""
        cached = self.__dict__.get("_open_days")
        if cached is None:
            cached = frozenset(open_days(self.calendar))
            object.__setattr__(self, "_open_days", cached)
        return day in cached

    def mat_on(self, day: dt.date) -> str | None:
        current = None
        for start, mat in self.mats:
            if start <= day:
                current = mat
        return current


def _clipped(periods, first: dt.date | None, last: dt.date | None) -> tuple:
    """The parts of term periods that fall within first..last (either end open when None)."""
    out = []
    for p in periods:
        start = p.start if first is None else max(p.start, first)
        end = p.end if last is None else min(p.end, last)
        if start <= end:
            out.append(dataclasses.replace(p, start=start, end=end))
    return tuple(out)


def succession(predecessor: School, successor: School, conversion_date: dt.date) -> tuple[School, School]:
    """One school on both sides of an academy conversion, as rules that ask "on date D" must see it.

    The predecessor (maintained, outside the MAT) is open on its own calendar up to the day before
    `conversion_date` and on no day from it; the successor is the same school: before the
    conversion date it has the predecessor's calendar and MAT history (its people, moved to it when
    the event arrived, are judged by the school they work at on D), from it its own (in the MAT).
    Each knows the other as the same school (never reviews itself)."""
    day_before = conversion_date - dt.timedelta(days=1)
    old_cal, new_cal = predecessor.calendar, successor.calendar
    closed = dataclasses.replace(old_cal, term_dates=dataclasses.replace(
        old_cal.term_dates, periods=_clipped(old_cal.term_dates.periods, None, day_before)))
    merged = dataclasses.replace(new_cal, term_dates=dataclasses.replace(
        new_cal.term_dates, periods=_clipped(old_cal.term_dates.periods, None, day_before)
        + _clipped(new_cal.term_dates.periods, conversion_date, None)),
        inset_days=frozenset(d for d in old_cal.inset_days if d < conversion_date)
        | frozenset(d for d in new_cal.inset_days if d >= conversion_date))
    mats = tuple(m for m in sorted(predecessor.mats, key=lambda m: m[0]) if m[0] < conversion_date)
    mats += tuple(m for m in sorted(successor.mats, key=lambda m: m[0]) if m[0] >= conversion_date)
    if not any(start >= conversion_date for start, _ in mats):
        mats += ((conversion_date, successor.mat_on(conversion_date)),)
    old = dataclasses.replace(predecessor, calendar=closed, same_school=predecessor.same_school | {successor.urn})
    new = dataclasses.replace(successor, calendar=merged, mats=mats,
                              same_school=successor.same_school | {predecessor.urn})
    return old, new


def same_school(problem: "Problem", reviewer: "Reviewer", host: str) -> bool:
    """The reviewer works at the host school (under either URN of a converted school)."""
    hosting = problem.schools.get(host)
    return reviewer.urn == host or (hosting is not None and reviewer.urn in hosting.same_school)


@dataclasses.dataclass(frozen=True)
class Reviewer:
    reviewer_id: str
    urn: str
    trained: bool = True
    can_lead: bool = False
    unavailable: frozenset[dt.date] = frozenset()


@dataclasses.dataclass(frozen=True)
class HostRequest:
    urn: str
    days: int = 2
    team_size: int = 2


@dataclasses.dataclass(frozen=True)
class Review:
    host_urn: str
    dates: tuple[dt.date, ...]
    team: tuple[tuple[str, str], ...]  # (reviewer_id, lead|member)

    @property
    def reviewer_ids(self) -> tuple[str, ...]:
        return tuple(rid for rid, _ in self.team)

    @property
    def lead(self) -> str | None:
        leads = [rid for rid, role in self.team if role == LEAD]
        return leads[0] if len(leads) == 1 else None


@dataclasses.dataclass(frozen=True)
class Problem:
    cycle: int
    schools: dict[str, School]
    reviewers: dict[str, Reviewer]
    hosts: tuple[HostRequest, ...]
    # URNs of schools subscribed to peer review in the cycle (reviewers come only from them);
    # None: no restriction (a problem built by hand, with every school subscribed)
    subscribed: frozenset[str] | None = None


@dataclasses.dataclass
class PlanResult:
    reviews: list[Review]
    method: str
    parts: list[str] = dataclasses.field(default_factory=list)
    seconds: float = 0.0

    def loads(self, problem: Problem) -> dict[str, int]:
        counts = {rid: 0 for rid, r in problem.reviewers.items() if r.trained}
        for review in self.reviews:
            for rid in review.reviewer_ids:
                counts[rid] = counts.get(rid, 0) + 1
        return counts

    def load_spread(self, problem: Problem) -> tuple[int, int]:
        loads = list(self.loads(problem).values()) or [0]
        return min(loads), max(loads)


# ---------------------------------------------------------------- travel
_POSTCODE = re.compile(r"^([A-Z]{1,2})(\d{1,2})[A-Z]?\s*(\d)?")


def travel_km(a: School, b: School) -> float:
    """Straight-line km when both locations are known, else a postcode proxy:
    same district 2 km, same area 5 km per district step (at most 40), other area 60."""
    if a.location and b.location:
        return math.dist(a.location, b.location)
    ma, mb = _POSTCODE.match(a.postcode.upper()), _POSTCODE.match(b.postcode.upper())
    if not ma or not mb:
        return 60.0
    if ma.group(1) != mb.group(1):
        return 60.0
    if ma.group(2) == mb.group(2):
        return 2.0
    return min(40.0, 5.0 * abs(int(ma.group(2)) - int(mb.group(2))))


# ---------------------------------------------------------------- slots
def cycle_weeks(cycle: int) -> list[dt.date]:
    day = dt.date(cycle, 9, 1)
    day -= dt.timedelta(days=day.weekday())
    weeks = []
    while day <= dt.date(cycle + 1, 8, 31):
        weeks.append(day)
        day += dt.timedelta(days=7)
    return weeks


def dates_in_week(school: "School | SchoolCalendar", monday: dt.date, days: int) -> tuple[dt.date, ...] | None:
    """The first `days` consecutive weekdays of that week on which the school is open."""
    opened = school.is_open if isinstance(school, School) else (lambda d: is_open(school, d))
    run: list[dt.date] = []
    for offset in range(5):
        day = monday + dt.timedelta(days=offset)
        if opened(day):
            run.append(day)
            if len(run) == days:
                return tuple(run)
        else:
            run = []
    return None


def subscribes(problem: Problem, urn: str) -> bool:
    """The school subscribes to peer review in the cycle, under either URN of a converted school."""
    if problem.subscribed is None:
        return True
    home = problem.schools.get(urn)
    return urn in problem.subscribed or (home is not None and not problem.subscribed.isdisjoint(home.same_school))


def reviewer_may_serve(problem: Problem, reviewer: Reviewer, host: str, dates: Iterable[dt.date]) -> bool:
    """Every per-reviewer hard rule for one host on given dates (team and pair rules aside), including
    that reviewers come from schools subscribed to peer review: every plan and re-plan asks here."""
    if not reviewer.trained or same_school(problem, reviewer, host) or not subscribes(problem, reviewer.urn):
        return False
    home, hosting = problem.schools.get(reviewer.urn), problem.schools[host]
    if home is None:
        return False
    for day in dates:
        mat = hosting.mat_on(day)
        if mat is not None and home.mat_on(day) == mat:
            return False
        if day in reviewer.unavailable or not home.is_open(day):
            return False
    return True


# ---------------------------------------------------------------- diagnosis
def diagnose(problem: Problem) -> list[str]:
    """Reasons the hard rules cannot all hold, host by host and overall; empty if none is obvious."""
    reasons = []
    weeks = cycle_weeks(problem.cycle)
    trained = [r for r in problem.reviewers.values() if r.trained]
    for req in problem.hosts:
        school = problem.schools.get(req.urn)
        if school is None:
            reasons.append(f"host {req.urn}: unknown school")
            continue
        if not (MIN_DAYS <= req.days <= MAX_DAYS):
            reasons.append(f"host {req.urn}: a review lasts {MIN_DAYS}-{MAX_DAYS} days, not {req.days}")
        if not (MIN_TEAM <= req.team_size <= MAX_TEAM):
            reasons.append(f"host {req.urn}: a team has {MIN_TEAM}-{MAX_TEAM} reviewers, not {req.team_size}")
        slots = [d for d in (dates_in_week(school, w, req.days) for w in weeks) if d]
        if not slots:
            reasons.append(f"host {req.urn}: never open on {req.days} consecutive days in cycle {problem.cycle}")
            continue
        outside, lead_found = 0, False
        for r in trained:  # stop as soon as a team with a lead is possible
            if (not r.can_lead or lead_found) and outside >= req.team_size:
                continue
            if any(reviewer_may_serve(problem, r, req.urn, s) for s in slots):
                outside += 1
                lead_found = lead_found or r.can_lead
            if lead_found and outside >= req.team_size:
                break
        if outside < req.team_size:
            reasons.append(f"host {req.urn}: too few trained reviewers outside the host's school and MAT "
                           f"(and open on its dates): {outside}, needs {req.team_size}")
        elif not lead_found:
            reasons.append(f"host {req.urn}: no trained lead reviewer outside the host's school and MAT")
    seats = sum(min(max(h.team_size, MIN_TEAM), MAX_TEAM) for h in problem.hosts)
    if trained and seats > len(trained) * len(weeks):
        reasons.append(f"reviewer capacity: {seats} places but {len(trained)} trained reviewers "
                       f"x {len(weeks)} weeks")
    if not trained and problem.hosts:
        reasons.append("no trained reviewers at all")
    return reasons


# ---------------------------------------------------------------- stage 1: weeks
def assign_weeks(problem: Problem, hosts: list[HostRequest]) -> dict[str, tuple[dt.date, ...]]:
    """A deterministic spread of hosts over their open weeks, preferred term first."""
    weeks = cycle_weeks(problem.cycle)
    options = {}
    for req in hosts:
        host_school = problem.schools[req.urn]
        found = []
        for index, monday in enumerate(weeks):
            dates = dates_in_week(host_school, monday, req.days)
            if dates:
                found.append((index, dates))
        options[req.urn] = found
    per_week = collections.Counter()
    chosen = {}
    for req in sorted(hosts, key=lambda h: (len(options[h.urn]), h.urn)):
        school = problem.schools[req.urn]

        def cost(option):
            index, dates = option
            in_preferred = school.preferred_term is None or school.calendar.term_dates.term_of(dates[0]) == school.preferred_term
            return (0 if in_preferred else 1, per_week[index], (index * 7919 + int(req.urn[-3:] or 0)) % len(weeks))
        if not options[req.urn]:
            continue
        index, dates = min(options[req.urn], key=cost)
        per_week[index] += 1
        chosen[req.urn] = dates
    return chosen


# ---------------------------------------------------------------- stage 2: teams
@dataclasses.dataclass
class _State:
    busy: set = dataclasses.field(default_factory=set)  # (reviewer_id, date)
    load: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    reviewed: set = dataclasses.field(default_factory=set)  # (reviewer school, host school)

    def add(self, review: Review, reviewers: dict[str, Reviewer]):
        for rid in review.reviewer_ids:
            self.load[rid] += 1
            for day in review.dates:
                self.busy.add((rid, day))
            self.reviewed.add((reviewers[rid].urn, review.host_urn))

    def remove(self, review: Review, reviewers: dict[str, Reviewer]):
        for rid in review.reviewer_ids:
            self.load[rid] -= 1
            for day in review.dates:
                self.busy.discard((rid, day))
        self.reviewed = {(s, h) for s, h in self.reviewed if h != review.host_urn}  # one review per host


_CANDIDATES: dict = {}


def _candidates(problem: Problem, host: str, dates, pool: Iterable[Reviewer]) -> list[Reviewer]:
    """Reviewers of `pool` allowed at `host` on `dates`, nearest first (memoised for the current plan)."""
    pool = pool if isinstance(pool, (list, tuple)) else list(pool)
    key = (id(problem), id(pool), host, tuple(dates))
    found = _CANDIDATES.get(key)
    if found is None:
        hosting = problem.schools[host]
        found = [r for r in pool if reviewer_may_serve(problem, r, host, dates)]
        found.sort(key=lambda r: (travel_km(problem.schools[r.urn], hosting), r.reviewer_id))
        _CANDIDATES[key] = found
    return found


def _free(state: _State, reviewer: Reviewer, host: str, dates) -> bool:
    return (all((reviewer.reviewer_id, d) not in state.busy for d in dates)
            and (host, reviewer.urn) not in state.reviewed)  # the host never reviewed this reviewer's school


def greedy_team(problem: Problem, req: HostRequest, dates, state: _State, pool) -> Review | None:
    hosting = problem.schools[req.urn]
    cands = [r for r in _candidates(problem, req.urn, dates, pool) if _free(state, r, req.urn, dates)]

    def key(r):
        return (state.load[r.reviewer_id], round(travel_km(problem.schools[r.urn], hosting)), r.reviewer_id)
    leads = sorted((r for r in cands if r.can_lead), key=key)
    if not leads:
        return None
    lead = leads[0]
    members = [r for r in sorted(cands, key=key) if r.reviewer_id != lead.reviewer_id][:req.team_size - 1]
    if len(members) < req.team_size - 1:
        return None
    return Review(req.urn, tuple(dates), ((lead.reviewer_id, LEAD),) + tuple((m.reviewer_id, MEMBER) for m in members))


def place_host(problem: Problem, req: HostRequest, state: _State, pool, preferred_dates=None) -> Review | None:
    """Greedy placement of one host: its assigned dates first, then every other open week."""
    host_school = problem.schools[req.urn]
    tried = []
    if preferred_dates:
        tried.append(tuple(preferred_dates))
    for monday in cycle_weeks(problem.cycle):
        dates = dates_in_week(host_school, monday, req.days)
        if dates and dates not in tried:
            tried.append(dates)
    for dates in tried:
        review = greedy_team(problem, req, dates, state, pool)
        if review:
            return review
    return None


def _improve(problem: Problem, reviews: list[Review], state: _State, pool, deadline: float) -> list[Review]:
    """Local improvement: move seats from the most loaded reviewers to lighter ones, all rules kept."""
    by_id = problem.reviewers
    for _ in range(50):
        if time.monotonic() > deadline or not state.load:
            break
        top = max(state.load.values())
        improved = False
        for index, review in enumerate(reviews):
            for pos, (rid, role) in enumerate(review.team):
                if state.load[rid] != top:
                    continue
                others = set(review.reviewer_ids) - {rid}
                for cand in _candidates(problem, review.host_urn, review.dates, pool):
                    if cand.reviewer_id in others or state.load[cand.reviewer_id] > top - 2:
                        continue
                    if role == LEAD and not cand.can_lead:
                        continue
                    if any((cand.reviewer_id, d) in state.busy for d in review.dates):
                        continue
                    if (review.host_urn, cand.urn) in state.reviewed:
                        continue
                    # the moved seat must not make the host review a school that reviews it back
                    team = list(review.team)
                    team[pos] = (cand.reviewer_id, role)
                    new = Review(review.host_urn, review.dates, tuple(team))
                    state.remove(review, by_id)
                    state.add(new, by_id)
                    state.reviewed = {(by_id[r].urn, rv.host_urn) for rv in reviews if rv is not review
                                      for r in rv.reviewer_ids} | {(by_id[r].urn, new.host_urn) for r in new.reviewer_ids}
                    reviews[index] = new
                    improved = True
                    break
                if improved:
                    break
            if improved:
                break
        if not improved:
            break
    return reviews


def heuristic(problem: Problem, hosts: list[HostRequest], weeks: dict, state: _State, pool,
              deadline: float) -> tuple[list[Review], list[HostRequest]]:
    reviews, missed = [], []
    order = sorted(hosts, key=lambda h: (len(_candidates(problem, h.urn, weeks.get(h.urn, ()), pool))
                                        if h.urn in weeks else 0, h.urn))
    for req in order:
        review = place_host(problem, req, state, pool, weeks.get(req.urn))
        if review is None:
            missed.append(req)
        else:
            state.add(review, problem.reviewers)
            reviews.append(review)
    return _improve(problem, reviews, state, pool, deadline), missed


def cp_sat_teams(problem: Problem, hosts: list[HostRequest], weeks: dict, pool, hint: list[Review],
                 deadline: float, max_candidates: int = 14) -> tuple[list[Review] | None, str]:
    """Choose teams for hosts on their assigned dates with CP-SAT. Returns (reviews, status)."""
    from ortools.sat.python import cp_model

    model = cp_model.CpModel()
    x, lead, cands = {}, {}, {}
    hinted = {(rv.host_urn, rid): role for rv in hint for rid, role in rv.team}
    for req in hosts:
        dates = weeks[req.urn]
        all_c = _candidates(problem, req.urn, dates, pool)
        chosen = all_c[:max_candidates]
        leads = [r for r in all_c if r.can_lead][:4]
        hinted_here = [r for r in all_c if (req.urn, r.reviewer_id) in hinted]
        keep = {r.reviewer_id: r for r in chosen + leads + hinted_here}
        cands[req.urn] = list(keep.values())
        if len(keep) < req.team_size or not any(r.can_lead for r in keep.values()):
            return None, "infeasible"
        for r in cands[req.urn]:
            x[req.urn, r.reviewer_id] = model.new_bool_var("")
            if r.can_lead:
                lead[req.urn, r.reviewer_id] = model.new_bool_var("")
                model.add_implication(lead[req.urn, r.reviewer_id], x[req.urn, r.reviewer_id])
        model.add(sum(x[req.urn, r.reviewer_id] for r in cands[req.urn]) == req.team_size)
        model.add_exactly_one(lead[req.urn, r.reviewer_id] for r in cands[req.urn] if r.can_lead)
    # nobody in two places at once: one review per reviewer per day
    by_day = collections.defaultdict(list)
    for req in hosts:
        for r in cands[req.urn]:
            for day in weeks[req.urn]:
                by_day[r.reviewer_id, day].append(x[req.urn, r.reviewer_id])
    for group in by_day.values():
        if len(group) > 1:
            model.add_at_most_one(group)
    # reciprocity: school A reviewing B forbids B reviewing A in the cycle
    reviews_of = collections.defaultdict(list)  # (reviewer school, host) -> vars
    for req in hosts:
        for r in cands[req.urn]:
            reviews_of[r.urn, req.urn].append(x[req.urn, r.reviewer_id])
    for (a, b), there in reviews_of.items():
        if a < b and (b, a) in reviews_of:
            back = reviews_of[b, a]
            ab, ba = model.new_bool_var(""), model.new_bool_var("")
            for v in there:
                model.add_implication(v, ab)
            for v in back:
                model.add_implication(v, ba)
            model.add_bool_or([ab.Not(), ba.Not()])
    # load: minimise the maximum, then travel
    loads = collections.defaultdict(list)
    for (host, rid), var in x.items():
        loads[rid].append(var)
    top = model.new_int_var(0, len(hosts), "max_load")
    bottom = model.new_int_var(0, len(hosts), "min_load")
    for rid, vars_ in loads.items():
        model.add(sum(vars_) <= top)
        model.add(sum(vars_) >= bottom)
    travel = []
    for (host, rid), var in x.items():
        km = travel_km(problem.schools[problem.reviewers[rid].urn], problem.schools[host])
        travel.append(int(round(km)) * var)
    model.minimize(10000 * top - 1000 * bottom + sum(travel))
    for key, var in x.items():
        model.add_hint(var, 1 if key in hinted else 0)
    for key, var in lead.items():
        model.add_hint(var, 1 if hinted.get(key) == LEAD else 0)
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = max(0.1, deadline - time.monotonic())  # building the model counts
    solver.parameters.num_search_workers = 2
    solver.parameters.random_seed = 7
    status = solver.solve(model)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return None, "infeasible" if status == cp_model.INFEASIBLE else "no solution in time"
    reviews = []
    for req in hosts:
        team = [(r.reviewer_id, LEAD if solver.value(lead.get((req.urn, r.reviewer_id), 0)) else MEMBER)
                for r in cands[req.urn] if solver.value(x[req.urn, r.reviewer_id])]
        team.sort(key=lambda t: (t[1] != LEAD, t[0]))
        reviews.append(Review(req.urn, tuple(weeks[req.urn]), tuple(team)))
    return reviews, "optimal" if status == cp_model.OPTIMAL else "feasible"


def cp_sat_with_weeks(problem: Problem, deadline: float) -> tuple[list[Review] | None, str]:
    """Exact model for small problems: CP-SAT chooses each host's week *and* its team together.
    Returns (reviews, status); status "infeasible" is a proof that no schedule exists."""
    from ortools.sat.python import cp_model

    pool = [r for r in problem.reviewers.values() if r.trained]
    model = cp_model.CpModel()
    weeks = cycle_weeks(problem.cycle)
    options, y, x, z, lead = {}, {}, {}, {}, {}
    per_day = collections.defaultdict(list)
    for req in problem.hosts:
        host = problem.schools[req.urn]
        options[req.urn] = [d for d in (dates_in_week(host, w, req.days) for w in weeks) if d]
        for o, dates in enumerate(options[req.urn]):
            y[req.urn, o] = model.new_bool_var("")
        model.add_exactly_one(y[req.urn, o] for o in range(len(options[req.urn])))
        for r in pool:
            allowed = [o for o, dates in enumerate(options[req.urn]) if reviewer_may_serve(problem, r, req.urn, dates)]
            if not allowed:
                continue
            x[req.urn, r.reviewer_id] = var = model.new_bool_var("")
            for o in allowed:
                z[req.urn, r.reviewer_id, o] = zv = model.new_bool_var("")
                model.add_implication(zv, y[req.urn, o])
                for day in options[req.urn][o]:
                    per_day[r.reviewer_id, day].append(zv)
            model.add(sum(z[req.urn, r.reviewer_id, o] for o in allowed) == var)
            if r.can_lead:
                lead[req.urn, r.reviewer_id] = lv = model.new_bool_var("")
                model.add_implication(lv, var)
        team = [v for (h, _), v in x.items() if h == req.urn]
        model.add(sum(team) == req.team_size)
        leads = [v for (h, _), v in lead.items() if h == req.urn]
        if not leads:
            return None, "infeasible"
        model.add_exactly_one(leads)
    for group in per_day.values():
        if len(group) > 1:
            model.add_at_most_one(group)
    reviews_of = collections.defaultdict(list)
    for (host, rid), var in x.items():
        reviews_of[problem.reviewers[rid].urn, host].append(var)
    for (a, b), there in reviews_of.items():
        if a < b and (b, a) in reviews_of:
            ab, ba = model.new_bool_var(""), model.new_bool_var("")
            for v in there:
                model.add_implication(v, ab)
            for v in reviews_of[b, a]:
                model.add_implication(v, ba)
            model.add_bool_or([ab.Not(), ba.Not()])
    top = model.new_int_var(0, len(problem.hosts), "max_load")
    loads = collections.defaultdict(list)
    for (host, rid), var in x.items():
        loads[rid].append(var)
    for vars_ in loads.values():
        model.add(sum(vars_) <= top)
    model.minimize(top)
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = max(0.5, deadline - time.monotonic())
    solver.parameters.num_search_workers = 2
    solver.parameters.random_seed = 7
    status = solver.solve(model)
    if status == cp_model.INFEASIBLE:
        return None, "infeasible"
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return None, "no solution in time"
    reviews = []
    for req in problem.hosts:
        chosen = next(o for o in range(len(options[req.urn])) if solver.value(y[req.urn, o]))
        team = [(rid, LEAD if (h, rid) in lead and solver.value(lead[h, rid]) else MEMBER)
                for (h, rid), var in x.items() if h == req.urn and solver.value(var)]
        team.sort(key=lambda t: (t[1] != LEAD, t[0]))
        reviews.append(Review(req.urn, options[req.urn][chosen], tuple(team)))
    return reviews, "optimal" if status == cp_model.OPTIMAL else "feasible"


EXACT_MODEL_LIMIT = 200_000  # host x reviewer x week triples: above this the exact model is not tried


# ---------------------------------------------------------------- clustering
def clusters(problem: Problem, size: int) -> list[list[str]]:
    """Split school URNs into geographic groups of at most `size` (recursive halving on the wider axis)."""
    def point(urn):
        s = problem.schools[urn]
        if s.location:
            return s.location
        m = _POSTCODE.match(s.postcode.upper())
        return (sum(ord(c) for c in (m.group(1) if m else "ZZ")) * 100.0, float(m.group(2)) if m else 0.0)

    def split(urns):
        if len(urns) <= size:
            return [urns]
        pts = [point(u) for u in urns]
        axis = 0 if (max(p[0] for p in pts) - min(p[0] for p in pts)) >= (max(p[1] for p in pts) - min(p[1] for p in pts)) else 1
        ordered = sorted(urns, key=lambda u: (point(u)[axis], u))
        half = len(ordered) // 2
        return split(ordered[:half]) + split(ordered[half:])
    return split(sorted(problem.schools))


# ---------------------------------------------------------------- the plan
def plan(problem: Problem, *, time_limit: float = 4.0, cluster_size: int = 300, use_solver: bool = True) -> PlanResult:
    """Every host's review for the cycle. Raises `Infeasible` naming the rule that cannot hold."""
    started = time.monotonic()
    _CANDIDATES.clear()
    reasons = [r for r in diagnose(problem)]
    if reasons:
        raise Infeasible(reasons)
    hosts_by_urn = {h.urn: h for h in problem.hosts}
    groups = clusters(problem, cluster_size)
    state = _State()
    reviews: list[Review] = []
    parts: list[str] = []
    leftovers: list[HostRequest] = []
    for index, group in enumerate(groups):
        members = set(group)
        hosts = [hosts_by_urn[u] for u in group if u in hosts_by_urn]
        if not hosts:
            continue
        pool = [r for r in problem.reviewers.values() if r.urn in members and r.trained]
        weeks = assign_weeks(problem, hosts)
        budget_end = started + time_limit * (index + 1) / len(groups)
        local = _State()
        greedy, missed = heuristic(problem, hosts, weeks, local, pool, min(budget_end, time.monotonic() + 0.25 * (budget_end - time.monotonic())))
        label = f"cluster {index + 1}/{len(groups)} ({len(hosts)} hosts)"
        chosen = greedy
        remaining = budget_end - time.monotonic()
        if use_solver and remaining > 0.3:
            # hosts the greedy pass could not serve keep their stage-1 week; CP-SAT may still find teams
            fixed_weeks = {**weeks, **{rv.host_urn: rv.dates for rv in greedy}}
            wanted = [h for h in hosts if h.urn in fixed_weeks]
            solved, status = (cp_sat_teams(problem, wanted, fixed_weeks, pool, greedy, budget_end)
                              if len(wanted) == len(hosts) else (None, "a host has no open week"))
            if solved is not None:
                chosen, missed = solved, []
                parts.append(f"{label}: cp-sat {status}")
            else:
                parts.append(f"{label}: heuristic (cp-sat {status})"
                             + (f", {len(missed)} hosts left to the global pass" if missed else ""))
        else:
            parts.append(f"{label}: heuristic" + (" (no time left for cp-sat)" if use_solver else "")
                         + (f", {len(missed)} hosts left to the global pass" if missed else ""))
        leftovers += missed
        for review in chosen:
            state.add(review, problem.reviewers)
        reviews += chosen
    if leftovers:
        pool = [r for r in problem.reviewers.values() if r.trained]
        for req in leftovers:
            review = place_host(problem, req, state, pool)
            if review is None:
                return _exact_or_explain(problem, req, started, time_limit)
            state.add(review, problem.reviewers)
            reviews.append(review)
        parts.append(f"global greedy pass: {len(leftovers)} hosts")
    methods = {"cp-sat" if "cp-sat optimal" in p or "cp-sat feasible" in p else "heuristic" for p in parts}
    method = "+".join(sorted(methods)) if methods else "none"
    reviews.sort(key=lambda r: (r.dates[0], r.host_urn))
    _CANDIDATES.clear()
    return PlanResult(reviews=reviews, method=method, parts=parts, seconds=time.monotonic() - started)


def _exact_or_explain(problem: Problem, req: HostRequest, started: float, time_limit: float) -> PlanResult:
    """The fast passes left a host unserved: on a small problem let CP-SAT choose weeks and teams
    together (a proof either way); otherwise say which host could not be served and why."""
    why = (f"host {req.urn}: no team of {req.team_size} free trained reviewers (one a lead) outside its school "
           f"and MAT on any open week, given the other reviews and the rule that a school is never reviewed "
           f"by a school it reviews")
    size = len(problem.hosts) * sum(1 for r in problem.reviewers.values() if r.trained) * 52
    if size > EXACT_MODEL_LIMIT:
        raise Infeasible([why + " (found by the heuristic passes; too large for the exact model)"])
    deadline = max(started + time_limit, time.monotonic() + 1.0)
    reviews, status = cp_sat_with_weeks(problem, deadline)
    if reviews is None:
        if status == "infeasible":
            raise Infeasible([why + " (proved by CP-SAT over every week of the cycle, each review on its week's first open days)"])
        raise Infeasible([why + " (CP-SAT found no schedule within the time limit either)"])
    reviews.sort(key=lambda r: (r.dates[0], r.host_urn))
    _CANDIDATES.clear()
    return PlanResult(reviews=reviews, method="cp-sat", parts=[f"exact model, weeks and teams together: cp-sat {status}"],
                      seconds=time.monotonic() - started)


# ---------------------------------------------------------------- changes
def replan(problem: Problem, reviews: list[Review], *, from_date: dt.date,
           problems_of) -> tuple[list[Review], dict[str, Review], list[str]]:
    """Re-plan only reviews on/after `from_date` that `problems_of(review)` finds broken.

    Keeps each broken review's dates and replaces only the reviewers that break a rule;
    moves the review to another open week only when no replacement fits. Returns the
    new list, `{host_urn: new review}` for each review that changed, and the hosts whose
    broken review could not be repaired (left as they were, for a person to decide).
    """
    _CANDIDATES.clear()
    state = _State()
    for review in reviews:
        state.add(review, problem.reviewers)
    pool = [r for r in problem.reviewers.values() if r.trained]
    changed: dict[str, Review] = {}
    unresolved: list[str] = []
    out = list(reviews)
    for index, review in enumerate(out):
        if review.dates[0] < from_date or not problems_of(review):
            continue
        state.remove(review, problem.reviewers)
        state.reviewed = {(problem.reviewers[r].urn, rv.host_urn) for rv in out if rv is not review
                          for r in rv.reviewer_ids}
        keep = [(rid, role) for rid, role in review.team
                if rid in problem.reviewers and reviewer_may_serve(problem, problem.reviewers[rid], review.host_urn, review.dates)]
        new = _refill(problem, review, keep, state, pool)
        if new is None:
            req = HostRequest(review.host_urn, len(review.dates), len(review.team))
            new = place_host(problem, req, state, pool)
        if new is None:
            unresolved.append(f"host {review.host_urn}: no replacement team outside its school and MAT "
                              f"on any open week after {from_date}")
            state.add(review, problem.reviewers)
            continue
        state.add(new, problem.reviewers)
        out[index] = new
        changed[review.host_urn] = new
    _CANDIDATES.clear()
    return out, changed, unresolved


def _refill(problem: Problem, review: Review, keep, state: _State, pool) -> Review | None:
    hosting = problem.schools[review.host_urn]
    have = {rid for rid, _ in keep}
    has_lead = any(role == LEAD for _, role in keep)
    cands = [r for r in _candidates(problem, review.host_urn, review.dates, pool)
             if r.reviewer_id not in have and _free(state, r, review.host_urn, review.dates)]
    cands.sort(key=lambda r: (state.load[r.reviewer_id], round(travel_km(problem.schools[r.urn], hosting)), r.reviewer_id))
    team = list(keep)
    if not has_lead:
        leads = [r for r in cands if r.can_lead]
        if not leads:
            return None
        team.insert(0, (leads[0].reviewer_id, LEAD))
        cands.remove(leads[0])
    while len(team) < max(MIN_TEAM, len(review.team)) and cands:
        team.append((cands.pop(0).reviewer_id, MEMBER))
    if len(team) < max(MIN_TEAM, len(review.team)):
        return None
    return Review(review.host_urn, review.dates, tuple(team))
