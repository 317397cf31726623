"""Coaching and mentoring pairs: mentors matched to leaders by phase and need. Pure Python, no I/O
(OR-Tools' min-cost flow does the search).

Hard rules: a mentor never coaches someone from their own school; a mentor takes at most `capacity`
leaders; the phase must match (all-through mentors serve any phase); a leader has one mentor.

`match` finds a MAXIMUM matching under those rules: no leader is left unmatched when some assignment
could have matched them (a greedy pass can strand one: take the all-through mentor for a primary leader
and a secondary leader is left over). Among the maximum matchings it keeps the leaders' preferences:
the most needs met in total (each pair's mentor strengths that cover the leader's needs), then, when
not everyone can be matched, leaders earlier in id order first. The result is deterministic.
"""
from __future__ import annotations

import dataclasses

ALL_THROUGH = "all_through"


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


def may_pair(mentor: Mentor, leader: Leader) -> bool:
    """The per-pair hard rules: another school, and the leader's phase (all-through mentors serve any)."""
    return mentor.urn != leader.urn and mentor.phase in (leader.phase, ALL_THROUGH)


def match(mentors: list[Mentor], leaders: list[Leader]) -> tuple[list[Pair], list[str]]:
    """A maximum matching respecting the leaders' needs; the leaders left unmatched come with the reason
    (none can be matched without unmatching another)."""
    from ortools.graph.python import min_cost_flow

    mentors = sorted(mentors, key=lambda m: m.mentor_id)
    leaders = sorted(leaders, key=lambda l: l.leader_id)
    options = {l.leader_id: [m for m in mentors if may_pair(m, l)] for l in leaders}
    # nodes: 0 source, 1..L leaders, L+1..L+M mentors, L+M+1 sink
    n_l, n_m = len(leaders), len(mentors)
    source, sink = 0, n_l + n_m + 1
    most_needs = max((len(l.needs) for l in leaders), default=0)
    # needs met dominate the leader-order tie-break: the whole tie-break sum stays below one need
    weight = n_l * n_l + 1
    flow = min_cost_flow.SimpleMinCostFlow()
    pair_arcs = {}
    for i, leader in enumerate(leaders, start=1):
        flow.add_arc_with_capacity_and_unit_cost(source, i, 1, i - 1)
        for j, mentor in enumerate(mentors, start=n_l + 1):
            if mentor in options[leader.leader_id]:
                met = len(mentor.strengths & leader.needs)
                pair_arcs[flow.add_arc_with_capacity_and_unit_cost(i, j, 1, (most_needs - met) * weight)] = (mentor, leader)
    for j, mentor in enumerate(mentors, start=n_l + 1):
        flow.add_arc_with_capacity_and_unit_cost(j, sink, max(0, mentor.capacity), 0)
    pairs: list[Pair] = []
    if pair_arcs:
        # offer a unit per leader at the source; the max-flow variant sends as many as can get through
        flow.set_node_supply(source, n_l)
        flow.set_node_supply(sink, -n_l)
        status = flow.solve_max_flow_with_min_cost()
        if status != flow.OPTIMAL:  # cannot happen on a well-formed bipartite network; never guess
            raise RuntimeError(f"min-cost flow failed with status {status}")
        for arc, (mentor, leader) in pair_arcs.items():
            if flow.flow(arc):
                pairs.append(Pair(mentor.mentor_id, leader.leader_id, tuple(sorted(mentor.strengths & leader.needs))))
    pairs.sort(key=lambda p: p.leader_id)
    matched = {p.leader_id for p in pairs}
    unmatched = []
    for leader in leaders:
        if leader.leader_id in matched:
            continue
        why = ("no mentor of that phase outside the leader's school" if not options[leader.leader_id]
               else "every suitable mentor is at capacity")
        unmatched.append(f"{leader.leader_id}: {why}")
    return pairs, unmatched
