"""Peer-review planning benchmark: a generated county (250 schools) and region (2,500).

Run: .venv/bin/python -m bench.scheduling_peer_reviews [--sizes 250,2500]
Prints, per size: seconds, method (CP-SAT or heuristic, per cluster), validator
violations (must be 0) and the reviewing load min/max and spread (max - min).
"""
from __future__ import annotations

import argparse
import datetime as dt
import random
import time

from scheduling.adapters.repository import default_la_term_dates
from scheduling.domain import calendar as cal
from scheduling.domain.peer_review import HostRequest, Problem, Reviewer, School, plan
from scheduling.domain.review_validator import validate

TARGETS = {250: 5.0, 2500: 60.0}


def generated(n: int, cycle: int = 2026, seed: int = 1) -> Problem:
    """n schools on a square of side ~ sqrt(n)*3 km; a third in 1 of n/12 MATs, some converting
    mid-year; 2 trained reviewers each (one a lead), five INSET days each, a quarter on own dates."""
    rng = random.Random(seed)
    la = default_la_term_dates()[("buckinghamshire", cycle)]
    side = (n ** 0.5) * 3
    schools, reviewers, hosts = {}, {}, []
    mats = [f"MAT{i:04d}" for i in range(max(1, n // 12))]
    open_days = list(cal.open_days(cal.SchoolCalendar("x", la)))
    for i in range(n):
        urn = f"{100000 + i:06d}"
        insets = frozenset(rng.sample(open_days, 5))
        history = ((dt.date(cycle, 9, 1), None),)
        roll = rng.random()
        if roll < 0.33:
            history = ((dt.date(cycle, 9, 1), rng.choice(mats)),)
        elif roll < 0.38:
            history = ((dt.date(cycle, 9, 1), None), (dt.date(cycle + 1, 1, 1), rng.choice(mats)))
        schools[urn] = School(urn=urn, postcode=f"HP{1 + i % 23} {i % 9}AB", calendar=cal.SchoolCalendar(urn, la, insets),
                              mats=history, location=(rng.uniform(0, side), rng.uniform(0, side)),
                              preferred_term=rng.choice([None, "autumn", "spring", "summer"]))
        reviewers[f"{urn}-a"] = Reviewer(f"{urn}-a", urn, True, True)
        reviewers[f"{urn}-b"] = Reviewer(f"{urn}-b", urn, True, rng.random() < 0.3)
        hosts.append(HostRequest(urn, days=rng.choice([1, 2, 2, 3]), team_size=rng.choice([2, 2, 3])))
    return Problem(cycle=cycle, schools=schools, reviewers=reviewers, hosts=tuple(hosts))


def run(n: int, time_limit: float) -> dict:
    problem = generated(n)
    started = time.monotonic()
    result = plan(problem, time_limit=time_limit)
    seconds = time.monotonic() - started
    violations = validate(problem, result.reviews)
    low, high = result.load_spread(problem)
    return {"schools": n, "seconds": round(seconds, 2), "target_s": TARGETS.get(n), "method": result.method,
            "parts": result.parts, "reviews": len(result.reviews), "violations": len(violations),
            "load_min": low, "load_max": high, "load_spread": high - low}


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="250,2500")
    args = parser.parse_args(argv)
    for n in (int(s) for s in args.sizes.split(",")):
        limit = TARGETS.get(n, 60.0) * 0.7  # the planner's own budget; the rest is headroom on a shared machine
        figures = run(n, limit)
        parts = figures.pop("parts")
        print(" ".join(f"{k}={v}" for k, v in figures.items()))
        summary = {}
        for p in parts:
            kind = p.split(": ", 1)[1]
            summary[kind] = summary.get(kind, 0) + 1
        print("   parts:", "; ".join(f"{v} x {k}" for k, v in summary.items()))


if __name__ == "__main__":
    main()
