"""Peer review across the services (issue 7): ten schools subscribe to peer review through the
catalogue (scheduling learns it by events), each with two trained reviewers registered in
scheduling, and a cycle is planned. Then a reviewer's maintained school converts, through
membership, into the MAT of the school it is due to review later in the year: scheduling re-plans
only the reviews that conversion breaks (`peer_review_rescheduled`), the validator still passes,
and every other review keeps its dates and team."""
from __future__ import annotations

import datetime as dt
import json

import pytest

from tests import factories
from tests.conftest import eventually, http_json
from tests.e2e.steps import Observer, appoint, buy, join, offering, ok, publish_offering

CYCLE = 2026
MAT = {"id": "TR07001", "name": "Vale Schools Partnership"}
POSTCODES = ["HP19 8FF", "HP20 1QZ", "HP21 7PD", "HP22 5AB", "HP17 8QT", "HP18 9DX", "HP27 0JS",
             "HP16 9HS", "HP14 3UN", "HP13 6PE"]


@pytest.mark.timeout(240)
def test_a_reviewers_school_converting_into_the_hosts_mat_re_plans_only_that_review(stack_factory, sqlite_databases,
                                                                                     amqp_uri):
    observer = Observer(amqp_uri)
    stack = stack_factory(sqlite_databases).start()
    sched = stack.url("scheduling")
    publish_offering(stack, offering("PEER-REVIEW", "School-to-school peer review", "school_improvement", "exempt",
                                     {"model": "flat", "flat_fee_pence": 60000}))

    in_mat = [f"{130001 + i}" for i in range(3)]  # school URNs are 100000-199999
    outside = [f"{120101 + i}" for i in range(7)]
    schools = {}
    for i, urn in enumerate(in_mat + outside):
        school = (factories.academy(mat_id=MAT["id"], mat_name=MAT["name"], urn=urn) if urn in in_mat
                  else factories.school(urn=urn))
        school.update(postcode=POSTCODES[i], name=f"Peer School {urn}", dfe_number=f"825/{2100 + i}")
        schools[urn] = school
        join(stack, school)
        head = appoint(stack, urn)
        sub = buy(stack, urn, "PEER-REVIEW", head)
        # academies buy September-August, maintained schools April-March: both overlap the 2026/27 cycle
        assert sub["period_start"] == ("2026-09-01" if urn in in_mat else "2026-04-01")

    # scheduling learns each school and its SLA only from membership's and the catalogue's events
    for urn in schools:
        eventually(lambda urn=urn: http_json("GET", f"{sched}/schools/{urn}")[1].get("eligibility"),
                   message=f"scheduling learning {urn}'s peer-review SLA")
    for urn in schools:
        for key, lead in (("l", True), ("m", False)):
            ok(201, http_json("POST", f"{sched}/reviewers", {"reviewer_id": f"{urn}-{key}", "urn": urn,
                                                             "trained": True, "can_lead": lead}))
    # a school not subscribed cannot be planned for, and an unknown school cannot have reviewers
    status, body = http_json("POST", f"{sched}/reviewers", {"reviewer_id": "x", "urn": "999998", "trained": True})
    assert status == 404, body

    planned = ok(201, http_json("POST", f"{sched}/peer-review-cycles", {"cycle": CYCLE, "time_limit_seconds": 3},
                                timeout=60))
    assert len(planned["reviews"]) == 10 and planned["violations"] == 0
    assert {r["host_urn"] for r in planned["reviews"]} == set(schools)
    assert len(observer.wait_for("peer_review_scheduled", 10)) == 10

    # a host in the MAT, reviewed late in the year by a reviewer from a maintained school outside it
    candidates = [(r, m) for r in planned["reviews"] if r["host_urn"] in in_mat and r["dates"][0] >= "2026-10-15"
                  for m in r["team"] if m["urn"] in outside]
    assert candidates, planned["reviews"]
    target, member = max(candidates, key=lambda c: (c[0]["dates"][0], c[1]["urn"]))
    converting = member["urn"]
    successor = "14" + converting[2:]
    conversion_date = (dt.date.fromisoformat(target["dates"][0]) - dt.timedelta(days=1)).isoformat()

    # what the conversion breaks, worked out from the plan: from the conversion date on, a review
    # whose host is in the MAT with the converting school on its team, or hosted by the converting
    # school with a reviewer from the MAT
    def involves_mat_and_converting(review):
        team_urns = {m["urn"] for m in review["team"]}
        return review["dates"][0] >= conversion_date and (
            (review["host_urn"] in in_mat and converting in team_urns)
            or (review["host_urn"] == converting and team_urns & set(in_mat)))
    broken = {r["review_id"] for r in planned["reviews"] if involves_mat_and_converting(r)}
    assert target["review_id"] in broken
    # the converting school's own review from that date on moves to the academy's URN (same dates
    # and, unless broken, the same team): also announced, as a change of host
    moved = {r["review_id"] for r in planned["reviews"]
             if r["host_urn"] == converting and r["dates"][0] >= conversion_date}

    ok(201, http_json("POST", f"{stack.url('membership')}/members/{converting}/conversion", {
        "successor_urn": successor, "conversion_date": conversion_date, "mat": MAT,
        "successor_name": f"Peer School {converting} Academy"}))
    assert len(observer.wait_for("school_converted_to_academy")) == 1

    rescheduled = observer.wait_for("peer_review_rescheduled", len(broken | moved), timeout=45)
    assert {p["review_id"] for p in rescheduled} == broken | moved, json.dumps(
        [p for p in rescheduled if p["review_id"] not in broken], indent=1)
    for payload in rescheduled:
        assert payload["status"] == "scheduled"
        if payload["review_id"] in moved:
            assert (payload["previous_host_urn"], payload["host_urn"]) == (converting, successor)
        if payload["review_id"] in moved - broken:
            assert payload["dates"] == payload["previous_dates"] and payload["team"] == payload["previous_team"]
        assert converting in {m["urn"] for m in payload["previous_team"]} | {payload["previous_host_urn"]}
        assert payload["dates"][0] >= conversion_date
        assert str(successor) in payload["reason"] and MAT["id"] in payload["reason"]

    view = ok(200, http_json("GET", f"{sched}/peer-review-cycles/{CYCLE}"))
    assert view["violations"] == []  # the independent validator passes on the stored cycle
    after = {r["review_id"]: r for r in view["reviews"]}
    assert len(after) == 10 and all(r["status"] == "scheduled" for r in after.values())
    fixed = after[target["review_id"]]
    assert fixed["dates"] == target["dates"]  # same dates, a new reviewer
    assert fixed["host_urn"] == target["host_urn"]
    assert not {m["urn"] for m in fixed["team"]} & {converting, successor, *in_mat}
    assert not {m["reviewer_id"] for m in fixed["team"]} & {f"{converting}-l", f"{converting}-m"}
    kept = [m["reviewer_id"] for m in target["team"] if m["urn"] != converting]
    assert set(kept) <= {m["reviewer_id"] for m in fixed["team"]}  # the reviewers who still fit stay
    for review in planned["reviews"]:  # every other review exactly as planned (its reviewers and dates)
        if review["review_id"] not in broken:
            now = after[review["review_id"]]
            host = successor if review["review_id"] in moved else review["host_urn"]
            assert (now["host_urn"], now["dates"], [(m["reviewer_id"], m["role"]) for m in now["team"]]) == (
                host, review["dates"], [(m["reviewer_id"], m["role"]) for m in review["team"]])

    # scheduling holds the academy in the MAT, with its reviewers and its carried-on SLA
    academy = ok(200, http_json("GET", f"{sched}/schools/{successor}"))
    assert (academy["school"]["mat_id"], academy["school"]["predecessor_urn"]) == (MAT["id"], converting)
    if conversion_date <= "2027-03-31":  # inside the maintained school's SLA: the catalogue carries it on
        eventually(lambda: any(e["period_start"] == conversion_date for e in
                               http_json("GET", f"{sched}/schools/{successor}")[1]["eligibility"]),
                   message="the academy's carried-on peer-review SLA")
    assert {m["reviewer_id"] for r in after.values() for m in r["team"] if m["urn"] == converting} == set()
