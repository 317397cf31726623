"""Rule 16: coaching pairs are a MAXIMUM matching that keeps the hard rules and the leaders' needs."""
import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from scheduling.domain import coaching
from scheduling.domain.coaching import Leader, Mentor, match, may_pair


def test_the_issues_example_matches_all_three_where_greedy_matched_two():
    mentors = [Mentor("MS", "A", "secondary", frozenset(), 1), Mentor("MP", "B", "primary", frozenset(), 1),
               Mentor("MA", "C", "all_through", frozenset({"x"}), 1)]
    leaders = [Leader("L1", "D", "primary", frozenset({"x"})), Leader("L2", "E", "secondary", frozenset()),
               Leader("L3", "F", "secondary", frozenset())]
    pairs, unmatched = match(mentors, leaders)
    assert unmatched == [] and len(pairs) == 3
    assert ("MP", "L1") in {(p.mentor_id, p.leader_id) for p in pairs}  # MA is needed for a secondary leader


def test_among_maximum_matchings_the_most_needs_are_met():
    mentors = [Mentor("m-send", "A", "primary", frozenset({"send"}), 1),
               Mentor("m-none", "B", "primary", frozenset(), 1)]
    leaders = [Leader("l1", "C", "primary", frozenset()), Leader("l2", "D", "primary", frozenset({"send"}))]
    pairs, _ = match(mentors, leaders)
    assert coaching.Pair("m-send", "l2", ("send",)) in pairs and len(pairs) == 2


def brute_force_maximum(mentors, leaders) -> int:
    best = 0
    for choice in itertools.product(*[[None] + [m for m in mentors if may_pair(m, l)] for l in leaders]):
        used = [m for m in choice if m is not None]
        if all(used.count(m) <= m.capacity for m in mentors):
            best = max(best, len(used))
    return best


PHASES = ["primary", "secondary", "all_through"]
mentor_st = st.builds(Mentor, mentor_id=st.text("abc", min_size=1, max_size=3), urn=st.sampled_from("UVW"),
                      phase=st.sampled_from(PHASES), strengths=st.frozensets(st.sampled_from("xyz")),
                      capacity=st.integers(0, 2))
leader_st = st.builds(Leader, leader_id=st.text("pqr", min_size=1, max_size=3), urn=st.sampled_from("UVW"),
                      phase=st.sampled_from(["primary", "secondary"]), needs=st.frozensets(st.sampled_from("xyz")))


@settings(max_examples=150, deadline=None)
@given(st.lists(mentor_st, max_size=4, unique_by=lambda m: m.mentor_id),
       st.lists(leader_st, max_size=5, unique_by=lambda l: l.leader_id))
def test_the_matching_is_as_large_as_any_and_keeps_every_hard_rule(mentors, leaders):
    pairs, unmatched = match(mentors, leaders)
    assert len(pairs) == brute_force_maximum(mentors, leaders)
    by_id = {m.mentor_id: m for m in mentors} | {l.leader_id: l for l in leaders}
    assert all(may_pair(by_id[p.mentor_id], by_id[p.leader_id]) for p in pairs)
    assert all(sum(p.mentor_id == m.mentor_id for p in pairs) <= m.capacity for m in mentors)
    assert len({p.leader_id for p in pairs}) == len(pairs) and len(pairs) + len(unmatched) == len(leaders)
