"""Coaching and mentoring pairs: mentors matched to leaders by phase and need. Pure Python.

Rules: a mentor never coaches someone from their own school; a mentor takes at most
`capacity` leaders; the phase must match (all-through mentors serve any phase). Among
those, the mentor covering most of the leader's needs and carrying the least load wins.
"""
from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Mentor:
    mentor_id: str
    urn: str
    phase: str
    strengths: frozenset[str]
    capacity: int = 2


@dataclasses.dataclass(frozen=True)
class Leader:
    leader_id: str
    urn: str
    phase: str
    needs: frozenset[str]


@dataclasses.dataclass(frozen=True)
class Pair:
    mentor_id: str
    leader_id: str
    needs_met: tuple[str, ...]


def match(mentors: list[Mentor], leaders: list[Leader]) -> tuple[list[Pair], list[str]]:
    """Pairs, and the leaders no mentor could take (with the reason)."""
    load = {m.mentor_id: 0 for m in mentors}
    pairs, unmatched = [], []
    # leaders with the fewest possible mentors choose first
    def options(leader):
        return [m for m in mentors if m.urn != leader.urn and m.phase in (leader.phase, "all_through")]
    for leader in sorted(leaders, key=lambda l: (len(options(l)), l.leader_id)):
        fits = [m for m in options(leader) if load[m.mentor_id] < m.capacity]
        if not fits:
            why = "no mentor of that phase outside the leader's school" if not options(leader) else "every suitable mentor is at capacity"
            unmatched.append(f"{leader.leader_id}: {why}")
            continue
        best = max(fits, key=lambda m: (len(m.strengths & leader.needs), -load[m.mentor_id], m.mentor_id))
        load[best.mentor_id] += 1
        pairs.append(Pair(best.mentor_id, leader.leader_id, tuple(sorted(best.strengths & leader.needs))))
    return pairs, unmatched
