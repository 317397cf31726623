"""Rule 15 through the handlers and the store: every re-plan path (a reviewer's unavailability, a
change of MAT, a conversion, a school leaving) takes replacement reviewers only from schools that
subscribe to peer review, although a non-subscribing member next door has free trained leads."""
from __future__ import annotations

import datetime as dt

import pytest

from scheduling.domain.upstream import SLA
from scheduling.messages.consumed import MemberDetailsChanged, MemberJoined, MemberLeft, SchoolConvertedToAcademy
from scheduling.service_layer import handlers

SUBSCRIBED = [f"{320001 + i}" for i in range(6)]
OUTSIDER = "320099"  # a member that does not subscribe to peer review
ACADEMY = "320901"
MAT = {"id": "TR07777", "name": "Vale Trust"}
CYCLE = 2026


def join(store, urn, mat=None):
    handlers.record_member_joined(store(), MemberJoined().load({
        "urn": urn, "name": f"School {urn}", "phase": "primary", "mat": mat, "postcode": "HP19 8AA",
        "establishment_type": "community" if mat is None else "academy_converter",
        "local_authority": "Buckinghamshire", "number_on_roll": 200, "joined_on": "2025-01-06"}))


def planned(store):
    """Six subscribing schools (the first in a MAT) with two reviewers each, planned; the outsider's three
    trained leads are as near as anyone and have no load, the cheapest replacement unless the rule holds."""
    for i, urn in enumerate(SUBSCRIBED):
        join(store, urn, MAT if i == 0 else None)
        handlers.record_eligibility(store(), SLA(f"00000000-0000-4000-8000-00000032{i:04d}", urn, "PEER-REVIEW",
                                                 "school_improvement", dt.date(2026, 9, 1), dt.date(2027, 8, 31)))
        for k in range(2):
            handlers.register_reviewer(store(), f"{urn}-{k}", urn, True, k == 0, [], today=dt.date(2026, 7, 1))
    join(store, OUTSIDER)
    for k in range(3):
        handlers.register_reviewer(store(), f"0-outsider-{k}", OUTSIDER, True, True, [], today=dt.date(2026, 7, 1))
    result = handlers.plan_cycle(store(), CYCLE, "PEER-REVIEW", 2, 2, 1.0)
    assert all(m["urn"] != OUTSIDER for r in result["reviews"] for m in r["team"])
    return result["reviews"]


def cycle_view(store):
    with store.read() as session:
        return handlers.cycle_view(session, CYCLE)


def check(store, changed):
    assert changed, "the change re-planned nothing"
    view = cycle_view(store)
    assert view["violations"] == []
    assert all(m["urn"] != OUTSIDER for r in view["reviews"] if r["status"] == "scheduled" for m in r["team"])
    assert all(m["urn"] != OUTSIDER for c in changed if c["status"] == "scheduled" for m in c["team"])


def a_review_of_the_mat_school(reviews):
    return next(r for r in reviews if r["host_urn"] == SUBSCRIBED[0])


def test_replan_after_unavailability_takes_only_subscribed_reviewers(store):
    review = planned(store)[0]
    reviewer = review["team"][0]
    out = handlers.register_reviewer(store(), reviewer["reviewer_id"], reviewer["urn"], True,
                                     reviewer["role"] == "lead", list(review["dates"]),
                                     today=dt.date(2026, 8, 1))
    check(store, out["rescheduled"])


def test_replan_after_a_change_of_mat_takes_only_subscribed_reviewers(store):
    review = a_review_of_the_mat_school(planned(store))
    school = review["team"][0]["urn"]
    changed = handlers.record_member_details_changed(store(), MemberDetailsChanged().load({
        "urn": school, "effective_date": "2026-09-01", "name": f"School {school}", "establishment_type": "academy_converter",
        "phase": "primary", "mat": MAT, "local_authority": "Buckinghamshire", "postcode": "HP19 8AA"}))
    check(store, changed)


def test_replan_after_a_conversion_takes_only_subscribed_reviewers(store):
    review = a_review_of_the_mat_school(planned(store))
    school = review["team"][0]["urn"]
    changed = handlers.record_conversion(store(), SchoolConvertedToAcademy().load({
        "conversion_date": "2026-09-01", "predecessor": {"urn": school, "dfe_number": "825/2001", "name": "School"},
        "successor": {"urn": ACADEMY, "dfe_number": "825/4001", "name": "Academy",
                      "establishment_type": "academy_converter", "phase": "primary",
                      "local_authority": "Buckinghamshire", "postcode": "HP19 8AA", "number_on_roll": 200,
                      "census_date": "2026-10-01"},
        "mat": MAT}))
    check(store, changed)


def test_replan_after_a_school_leaves_takes_only_subscribed_reviewers(store):
    review = planned(store)[0]
    school = review["team"][0]["urn"]
    changed = handlers.record_member_left(store(), MemberLeft().load({"urn": school, "effective_date": "2026-09-01"}))
    check(store, [c for c in changed if c["status"] == "scheduled"])
