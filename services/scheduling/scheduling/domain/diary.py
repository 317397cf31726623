"""One diary for every person, across network meetings, courses, peer reviews and coaching sessions.
Pure Python, no I/O.

A person (identified by their membership `contact_id`; reviewers, mentors and leaders are registered
under the same id) is in at most one of these on any day: sessions have no times, so a day is the
unit. Every use case that puts a person somewhere asks `clash` first and writes an `Entry`; the
store's key (person, day) makes the rule hold under concurrent requests too.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Iterable

NETWORK_MEETING, COURSE, PEER_REVIEW, COACHING = "network_meeting", "course", "peer_review", "coaching_session"
KINDS = (NETWORK_MEETING, COURSE, PEER_REVIEW, COACHING)


@dataclasses.dataclass(frozen=True)
class Entry:
    """`person_id` is busy on `day` with `what` (e.g. "network meeting of Aylesbury primary heads"),
    the thing of `kind` whose id is `ref_id`."""

    person_id: str
    day: dt.date
    kind: str
    ref_id: str
    what: str


class DoubleBooked(Exception):
    """The person is already somewhere else that day; the message names where."""

    def __init__(self, entry: Entry):
        super().__init__(f"person {entry.person_id} is already booked on {entry.day}: {entry.what} "
                         f"({entry.kind.replace('_', ' ')} {entry.ref_id})")
        self.entry = entry


def clash(entries: Iterable[Entry], person_id: str, days: Iterable[dt.date], *, ignoring: str | None = None) -> Entry | None:
    """The first entry that keeps `person_id` busy on one of `days` (other than `ignoring`'s own)."""
    wanted = set(days)
    for entry in sorted(entries, key=lambda e: (e.day, e.kind, e.ref_id)):
        if entry.person_id == person_id and entry.day in wanted and entry.ref_id != ignoring:
            return entry
    return None


def must_be_free(entries: Iterable[Entry], people: Iterable[str], days: Iterable[dt.date], *,
                 ignoring: str | None = None) -> None:
    """Raises `DoubleBooked` naming the first clash of any of `people` on any of `days`."""
    entries, days = list(entries), list(days)
    for person in people:
        found = clash(entries, person, days, ignoring=ignoring)
        if found is not None:
            raise DoubleBooked(found)
