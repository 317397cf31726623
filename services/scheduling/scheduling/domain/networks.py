"""Peer learning networks and their termly meetings. Pure Python, no I/O.

A network's year has one meeting per term. Hosts rotate fairly: the member school
that has hosted least (over the network's history) hosts next, ties broken by who
hosted longest ago and then by URN. A meeting falls on a day open for the host,
preferably open for every member school, never on a day any member person already has
a meeting (no double booking), and only at a host whose venue holds everyone invited.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Iterable

from scheduling.domain.calendar import SchoolCalendar, TERMS, is_open


class NoMeetingPossible(Exception):
    """No host and date satisfy the rules; the message names the rule."""


@dataclasses.dataclass(frozen=True)
class Network:
    network_id: str
    name: str
    member_urns: tuple[str, ...]
    people: tuple[str, ...]  # contact ids of the people who attend
    preferred_weekday: int | None = None  # 0 = Monday


@dataclasses.dataclass(frozen=True)
class Meeting:
    network_id: str
    term: str
    date: dt.date
    host_urn: str
    invited: int


@dataclasses.dataclass
class Diary:
    """Who is already busy on which day, across every network and course."""

    people: set = dataclasses.field(default_factory=set)  # (contact_id, date)
    hosts: set = dataclasses.field(default_factory=set)  # (urn, date): a school hosts one thing a day

    def book(self, meeting: Meeting, network: Network):
        self.hosts.add((meeting.host_urn, meeting.date))
        for person in network.people:
            self.people.add((person, meeting.date))


def rotation_order(members: Iterable[str], history: Iterable[tuple[str, dt.date]]) -> list[str]:
    """Members in the order they should host next: fewest hostings, then longest ago, then URN."""
    counts = {urn: 0 for urn in members}
    last = {urn: dt.date.min for urn in counts}
    for urn, day in history:
        if urn in counts:
            counts[urn] += 1
            last[urn] = max(last[urn], day)
    return sorted(counts, key=lambda u: (counts[u], last[u], u))


def plan_year(network: Network, academic_year: int, calendars: dict[str, SchoolCalendar],
              capacities: dict[str, int], history: list[tuple[str, dt.date]], diary: Diary,
              terms: Iterable[str] = TERMS) -> list[Meeting]:
    """One meeting per term for the year; books them in `diary`."""
    if not network.member_urns:
        raise NoMeetingPossible(f"network {network.name} has no member schools to host")
    missing = [u for u in network.member_urns if u not in calendars]
    if missing:
        raise NoMeetingPossible(f"network {network.name}: no calendar for member school(s) {', '.join(missing)}")
    invited = len(network.people)
    roomy = [u for u in network.member_urns if capacities.get(u, 0) >= invited]
    if not roomy:
        raise NoMeetingPossible(f"network {network.name}: venue capacity, no member school holds "
                                f"{invited} people (largest {max(capacities.get(u, 0) for u in network.member_urns)})")
    history = list(history)
    meetings = []
    for term in terms:
        meeting = _one_meeting(network, term, calendars, roomy, history, diary, invited)
        history.append((meeting.host_urn, meeting.date))
        diary.book(meeting, network)
        meetings.append(meeting)
    return meetings


def _term_days(calendar: SchoolCalendar, term: str) -> list[dt.date]:
    days = []
    for period in calendar.term_dates.periods:
        if period.term != term:
            continue
        day = period.start
        while day <= period.end:
            days.append(day)
            day += dt.timedelta(days=1)
    return days


def _one_meeting(network, term, calendars, roomy, history, diary, invited) -> Meeting:
    for host in rotation_order(roomy, history):
        cal = calendars[host]
        days = [d for d in _term_days(cal, term) if is_open(cal, d) and (host, d) not in diary.hosts
                and not any((p, d) in diary.people for p in network.people)]
        if not days:
            continue
        # spread the network's meetings through the term: aim at its middle, prefer all members open
        middle = days[len(days) // 2]

        def cost(d):
            closed = sum(1 for u in network.member_urns if not is_open(calendars[u], d))
            weekday = 0 if network.preferred_weekday in (None, d.weekday()) else 1
            return (closed, weekday, abs((d - middle).days), d)
        return Meeting(network.network_id, term, min(days, key=cost), host, invited)
    raise NoMeetingPossible(f"network {network.name}: no open, clash-free day in the {term} term at any member "
                            f"school large enough to host")


def reschedule(meeting: Meeting, network: Network, calendars, capacities, history, diary: Diary) -> Meeting:
    """Move one meeting (its host left, closed or a clash): same term, rotation continues."""
    diary.hosts.discard((meeting.host_urn, meeting.date))
    for person in network.people:
        diary.people.discard((person, meeting.date))
    invited = len(network.people)
    roomy = [u for u in network.member_urns if capacities.get(u, 0) >= invited and u in calendars]
    if not roomy:
        raise NoMeetingPossible(f"network {network.name}: venue capacity, no member school holds {invited} people")
    moved = _one_meeting(network, meeting.term, calendars, roomy, history, diary, invited)
    diary.book(moved, network)
    return moved
