"""The scheduling service as a real process on the real broker and both databases, fed by
well-formed upstream envelopes (membership and catalogue are not started: they are being
rebuilt, and scheduling must work from their events alone)."""
from __future__ import annotations

import datetime as dt
import json
import uuid

import pika
import sqlalchemy as sa

from shared.topology import routing_key
from tests import tokens
from tests.conftest import eventually, http_json

CYCLE = 2026
MAT = {"id": "MAT-GLT", "name": "Great Learners Trust"}


def publish(amqp_uri: str, producer: str, event_type: str, payload: dict) -> None:
    event_id = str(uuid.uuid4())
    body = {"event_id": event_id, "type": event_type, "version": 1,
            "occurred_at": dt.datetime.now(dt.timezone.utc).isoformat().replace("+00:00", "Z"),
            "producer": producer, "operator": "test-county", "correlation_id": event_id, "causation_id": None,
            "payload": payload}
    connection = pika.BlockingConnection(pika.URLParameters(amqp_uri))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        channel.basic_publish(f"{producer}.events", routing_key(event_type, 1), json.dumps(body).encode(),
                              pika.BasicProperties(content_type="application/json", delivery_mode=2,
                                                   message_id=event_id, type=event_type), mandatory=True)
    finally:
        connection.close()


def member(urn: str, mat=None, establishment_type="community") -> dict:
    return {"urn": urn, "dfe_number": f"825/{urn[-4:]}", "name": f"School {urn}", "kind": "school",
            "establishment_type": "academy" if mat else establishment_type, "phase": "primary",
            "is_academy": bool(mat), "mat": mat, "local_authority": "Buckinghamshire",
            "postcode": f"HP{int(urn) % 20 + 1} 1AA", "number_on_roll": 200, "census_date": "2025-10-02",
            "joined_on": "2020-09-01"}


def subscription(urn: str, offering: str, start="2026-09-01", end="2027-08-31", entitlements=()) -> dict:
    return {"subscription_id": str(uuid.uuid4()), "urn": urn, "school_name": f"School {urn}", "is_academy": False,
            "mat": None, "payer_type": "academy", "offering_code": offering, "offering_name": offering,
            "service_area": "leadership_development", "vat_treatment": "standard", "edition_year": 2026,
            "period_start": start, "period_end": end, "years": 1, "quantity": 1, "annual_price_pence": 50000,
            "price_breakdown": [], "census": {"date": "2025-10-02", "number_on_roll": 200}, "po_number": None,
            "purchased_on": "2026-06-01", "entitlements": list(entitlements), "continues_subscription_id": None}


def contact(contact_id: str, urn: str, role="head_teacher") -> dict:
    return {"contact_id": contact_id, "urn": urn, "display_name": f"Person {contact_id[:4]}", "role": role,
            "may_commit_spending": True, "active": True, "effective_date": "2026-06-01"}


def outbox_types(database_url: str) -> list[tuple[str, dict]]:
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT event_type, body FROM outbox ORDER BY created_at")).all()
    finally:
        engine.dispose()
    return [(r[0], json.loads(r[1])["payload"]) for r in rows]


def wait_schools(url: str, urns) -> None:
    for urn in urns:
        eventually(lambda: http_json("GET", f"{url}/schools/{urn}")[0] == 200, message=f"school {urn} known")


class TestPeerReviewsAndConversion:
    def test_a_mid_year_conversion_re_plans_only_the_review_whose_reviewer_joins_the_hosts_mat(
            self, stack_factory, databases, amqp_uri):
        stack = stack_factory(databases).start("scheduling")
        url = stack.url("scheduling")
        in_mat = [f"{300001 + i}" for i in range(3)]
        outside = [f"{300101 + i}" for i in range(7)]
        for urn in in_mat:
            publish(amqp_uri, "membership", "member_joined", member(urn, MAT))
        for urn in outside:
            publish(amqp_uri, "membership", "member_joined", member(urn))
        for urn in in_mat + outside:
            publish(amqp_uri, "catalogue", "subscription_started", subscription(urn, "PEER-REVIEW"))
        wait_schools(url, in_mat + outside)
        eventually(lambda: all(http_json("GET", f"{url}/schools/{u}")[1]["eligibility"] for u in in_mat + outside),
                   message="eligibility")
        for urn in in_mat + outside:
            for k, lead in (("l", True), ("m", False)):
                status, _ = http_json("POST", f"{url}/reviewers", {"reviewer_id": f"{urn}-{k}", "urn": urn,
                                                                   "trained": True, "can_lead": lead})
                assert status == 201

        status, planned = http_json("POST", f"{url}/peer-review-cycles", {"cycle": CYCLE, "time_limit_seconds": 3},
                                    timeout=30)
        assert status == 201, planned
        assert len(planned["reviews"]) == 10 and planned["violations"] == 0
        status, again = http_json("POST", f"{url}/peer-review-cycles", {"cycle": CYCLE})
        assert status == 409

        # a host in the MAT reviewed late enough, by a reviewer from a school outside the MAT
        candidates = [r for r in planned["reviews"] if r["host_urn"] in in_mat and r["dates"][0] >= "2026-10-01"]
        assert candidates, planned["reviews"]
        target = max(candidates, key=lambda r: r["dates"][0])
        converting = target["team"][0]["urn"]
        conversion_date = (dt.date.fromisoformat(target["dates"][0]) - dt.timedelta(days=1)).isoformat()
        successor = "400" + converting[3:]
        publish(amqp_uri, "membership", "school_converted_to_academy", {
            "conversion_date": conversion_date,
            "predecessor": {"urn": converting, "dfe_number": f"825/{converting[-4:]}", "name": f"School {converting}"},
            "successor": {"urn": successor, "dfe_number": f"825/4{converting[-3:]}", "name": f"School {converting} Academy",
                          "establishment_type": "academy", "phase": "primary", "local_authority": "Buckinghamshire",
                          "postcode": "HP5 1AA", "number_on_roll": 200, "census_date": "2025-10-02"},
            "mat": MAT})

        def replanned():
            status, body = http_json("GET", f"{url}/peer-review-cycles/{CYCLE}")
            review = next(r for r in body["reviews"] if r["review_id"] == target["review_id"])
            gone = all(m["urn"] not in (converting, successor) for m in review["team"])
            return body if gone and status == 200 else None

        body = eventually(replanned, message="review re-planned")
        assert body["violations"] == []
        after = {r["review_id"]: r for r in body["reviews"]}
        assert after[target["review_id"]]["dates"] == target["dates"]  # same dates, new reviewer
        events = outbox_types(stack.database_urls["scheduling"])
        rescheduled = [p for t, p in events if t == "peer_review_rescheduled"]
        assert target["review_id"] in {p["review_id"] for p in rescheduled}
        changed_ids = {p["review_id"] for p in rescheduled}
        for review in planned["reviews"]:  # every other review is exactly as planned
            if review["review_id"] not in changed_ids:
                assert after[review["review_id"]]["team"] == review["team"]
                assert after[review["review_id"]]["dates"] == review["dates"]
        # every changed review involved the converted school on or after its conversion date
        for p in rescheduled:
            assert p["dates"][0] >= conversion_date
            assert converting in {m["urn"] for m in p["previous_team"]} | {p["previous_host_urn"]}
        assert len([t for t, _ in events if t == "peer_review_scheduled"]) == 10

        # reports are private to the host school
        rid = target["review_id"]
        assert http_json("PUT", f"{url}/peer-reviews/{rid}/report", {"urn": target["host_urn"], "report": "Strong"})[0] == 200
        assert http_json("GET", f"{url}/peer-reviews/{rid}/report?urn={target['host_urn']}")[1]["report"] == "Strong"
        status, refused = http_json("GET", f"{url}/peer-reviews/{rid}/report?urn={outside[0]}")
        assert status == 403 and refused["error"] == "forbidden"

        # a reviewer becomes unavailable on their review's dates: only that review changes
        other = next(r for r in body["reviews"] if r["review_id"] != target["review_id"])
        busy = other["team"][0]
        status, updated = http_json("POST", f"{url}/reviewers", {
            "reviewer_id": busy["reviewer_id"], "urn": busy["urn"], "trained": True, "can_lead": True,
            "unavailable": other["dates"], "today": "2026-09-01"})
        assert status == 201 and [p["review_id"] for p in updated["rescheduled"]] == [other["review_id"]]
        final = {r["review_id"]: r for r in http_json("GET", f"{url}/peer-review-cycles/{CYCLE}")[1]["reviews"]}
        assert busy["reviewer_id"] not in {m["reviewer_id"] for m in final[other["review_id"]]["team"]}
        assert final[other["review_id"]]["dates"] == other["dates"]
        assert http_json("GET", f"{url}/peer-review-cycles/{CYCLE}")[1]["violations"] == []

    def test_an_impossible_cycle_says_which_rule_bites_and_writes_nothing(self, stack_factory, databases, amqp_uri):
        stack = stack_factory(databases).start("scheduling")
        url = stack.url("scheduling")
        urns = [f"{310001 + i}" for i in range(3)]
        for urn in urns:
            publish(amqp_uri, "membership", "member_joined", member(urn, MAT))
            publish(amqp_uri, "catalogue", "subscription_started", subscription(urn, "PEER-REVIEW"))
        wait_schools(url, urns)
        eventually(lambda: all(http_json("GET", f"{url}/schools/{u}")[1]["eligibility"] for u in urns),
                   message="eligibility")
        for urn in urns:
            assert http_json("POST", f"{url}/reviewers", {"reviewer_id": f"{urn}-l", "urn": urn, "trained": True,
                                                          "can_lead": True})[0] == 201
        status, body = http_json("POST", f"{url}/peer-review-cycles", {"cycle": CYCLE, "time_limit_seconds": 1})
        assert status == 422 and body["rule"] == "infeasible"
        assert any("too few trained reviewers outside the host's school and MAT" in r for r in body["reasons"])
        assert http_json("GET", f"{url}/peer-review-cycles/{CYCLE}")[0] == 404
        assert [t for t, _ in outbox_types(stack.database_urls["scheduling"])] == []
        status, body = http_json("POST", f"{url}/peer-review-cycles", {"cycle": "next", "team_size": 9})
        assert status == 400 and set(body["fields"]) == {"cycle", "team_size"}
        status, body = http_json("POST", f"{url}/reviewers", {"reviewer_id": "x", "urn": "999999", "trained": True})
        assert status == 404


class TestCoursesNetworksCalendars:
    def test_bookings_waiting_list_prices_attendance_and_meetings(self, stack_factory, databases, amqp_uri):
        stack = stack_factory(databases).start("scheduling")
        url = stack.url("scheduling")
        a, b, c, outsider = "320001", "320002", "320003", "320009"
        for urn in (a, b, c):
            publish(amqp_uri, "membership", "member_joined", member(urn))
        people = {k: str(uuid.uuid4()) for k in ("a1", "a2", "b1", "c1")}
        for key, pid in people.items():
            publish(amqp_uri, "membership", "contact_role_changed", contact(pid, {"a": a, "b": b, "c": c}[key[0]]))
        publish(amqp_uri, "catalogue", "offering_published", {
            "offering_code": "DSL-TRAIN", "name": "DSL training", "service_area": "governance", "provider": "BLT",
            "description": "", "vat_treatment": "exempt", "eligibility": {"phases": [], "establishment_types": []},
            "capacity": None})
        publish(amqp_uri, "catalogue", "edition_priced", {
            "offering_code": "DSL-TRAIN", "edition_year": 2026, "on_sale": True,
            "pricing": {"model": "per_delegate", "subscriber_price_pence": 9500, "non_subscriber_price_pence": 15000},
            "entitlements": [{"kind": "included_place", "quantity": 1}]})
        sla = subscription(a, "DSL-TRAIN", entitlements=[{"kind": "included_place", "quantity": 1}])
        publish(amqp_uri, "catalogue", "subscription_started", sla)
        wait_schools(url, (a, b, c))
        eventually(lambda: http_json("GET", f"{url}/schools/{a}")[1]["eligibility"], message="SLA")

        def course_created():
            status, body = http_json("POST", f"{url}/courses", {"course_code": "DSL-2026", "title": "DSL refresher",
                                                                 "offering_code": "DSL-TRAIN"})
            return (status, body) if status in (201, 409) else None
        assert eventually(course_created, message="offering known")[0] == 201
        status, sess = http_json("POST", f"{url}/courses/DSL-2026/sessions",
                                 {"date": "2026-11-05", "capacity": 2, "cutoff_days": 7})
        assert status == 201
        sid = sess["session_id"]

        def book(key, urn, on="2026-10-01"):
            def attempt():
                status, body = http_json("POST", f"{url}/sessions/{sid}/bookings", {"urn": urn, "booked_on": on},
                                         token=tokens.contact(urn, people[key]))
                return (status, body) if status != 422 or "contact" not in body.get("message", "") else None
            return eventually(attempt, message=f"contact {key} known")
        s1, first = book("a1", a)
        s2, second = book("a2", a)
        s3, third = book("b1", b)
        assert (s1, first["status"], first["price_basis"], first["unit_price_pence"]) == (201, "confirmed", "included_place", 0)
        # a per-delegate SLA of quantity 1 paid for one place besides the included one (issue 14, rule 6)
        assert (s2, second["price_basis"], second["unit_price_pence"]) == (201, "included_place", 0)
        assert (s3, third["status"], third["position"]) == (201, "waitlisted", 1)

        status, refused = http_json("POST", f"{url}/sessions/{sid}/bookings", {"urn": outsider},
                                    token=tokens.contact(outsider, people["c1"]))
        assert status == 422 and refused["rule"] == "member_school"
        status, refused = http_json("POST", f"{url}/sessions/{sid}/bookings", {"urn": "12", "contact_id": ""},
                                    token=tokens.contact("12", people["a1"]))
        assert status == 400 and set(refused["fields"]) == {"urn", "contact_id"}  # the person is the token's
        assert http_json("POST", f"{url}/sessions/{uuid.uuid4()}/bookings", {"urn": a},
                         token=tokens.contact(a, people["a1"]))[0] == 404

        status, late = http_json("POST", f"{url}/bookings/{second['booking_id']}/cancel", {"today": "2026-11-01"})
        assert status == 422 and late["rule"] == "cancellation_cut_off"
        status, cancelled = http_json("POST", f"{url}/bookings/{second['booking_id']}/cancel", {"today": "2026-10-20"})
        assert status == 200 and cancelled["promoted"]["booking_id"] == third["booking_id"]
        assert cancelled["promoted"]["price_basis"] == "non_subscriber"
        view = http_json("GET", f"{url}/sessions/{sid}")[1]
        assert sorted(view["confirmed"]) == sorted([first["booking_id"], third["booking_id"]]) and view["waiting_list"] == []

        status, att = http_json("POST", f"{url}/bookings/{third['booking_id']}/attendance", {"attended": True})
        assert status == 201 and att["chargeable"] and att["unit_price_pence"] == 15000
        status, att_free = http_json("POST", f"{url}/bookings/{first['booking_id']}/attendance", {"attended": True})
        assert status == 201 and not att_free["chargeable"] and att_free["price_basis"] == "included_place"
        assert http_json("POST", f"{url}/bookings/{third['booking_id']}/attendance", {"attended": True})[0] == 409

        events = outbox_types(stack.database_urls["scheduling"])
        kinds = [t for t, _ in events]
        assert kinds.count("booking_confirmed") == 3 and kinds.count("booking_waitlisted") == 1
        recorded = [p for t, p in events if t == "attendance_recorded"]
        assert {(p["urn"], p["chargeable"], p["price_basis"], p["vat_treatment"]) for p in recorded} == {
            (b, True, "non_subscriber", "exempt"), (a, False, "included_place", "exempt")}

        # a network's year of termly meetings, rotating hosts, on open days
        status, net = http_json("POST", f"{url}/networks", {"name": "Primary heads", "member_urns": [a, b, c],
                                                            "people": [people["a1"], people["b1"], people["c1"]]})
        assert status == 201
        status, year = http_json("POST", f"{url}/networks/{net['network_id']}/meetings/2026")
        assert status == 201 and [m["term"] for m in year["meetings"]] == ["autumn", "spring", "summer"]
        assert len({m["host_urn"] for m in year["meetings"]}) == 3
        for m in year["meetings"]:
            for urn in (a, b, c):
                assert http_json("GET", f"{url}/schools/{urn}/open/{m['date']}")[1]["open"]
        assert http_json("POST", f"{url}/networks/{net['network_id']}/meetings/2026")[0] == 409
        assert [t for t, _ in outbox_types(stack.database_urls["scheduling"])].count("meeting_scheduled") == 3
        status, body = http_json("POST", f"{url}/networks", {"name": "Ghosts", "member_urns": [outsider]})
        assert status == 404

        # the summer host leaves: only that meeting moves, to another member, same term
        summer = year["meetings"][2]
        publish(amqp_uri, "membership", "member_left", {"urn": summer["host_urn"], "name": "x",
                                                        "effective_date": "2027-01-01", "reason": "closed"})

        def moved():
            view = http_json("GET", f"{url}/networks/{net['network_id']}")[1]
            return view if view["meetings"][-1]["host_urn"] != summer["host_urn"] else None
        view = eventually(moved, message="meeting moved")
        assert [m["host_urn"] for m in view["meetings"][:2]] == [m["host_urn"] for m in year["meetings"][:2]]
        assert summer["host_urn"] not in view["member_urns"]
        rescheduled = [p for t, p in outbox_types(stack.database_urls["scheduling"]) if t == "meeting_rescheduled"]
        assert [(p["meeting_id"], p["previous_host_urn"], p["term"]) for p in rescheduled] == [
            (summer["meeting_id"], summer["host_urn"], "summer")]

        # calendars: an INSET day closes the school; bad term dates are refused naming the rule
        assert http_json("PUT", f"{url}/schools/{a}/inset-days/2026", {"days": ["2026-09-04"]})[0] == 200
        closed = http_json("GET", f"{url}/schools/{a}/open/2026-09-04")[1]
        assert closed == {"urn": a, "date": "2026-09-04", "open": False, "closed_because": "INSET day"}
        assert http_json("GET", f"{url}/schools/{a}/open/2026-12-25")[1]["closed_because"] == "school holiday"
        status, body = http_json("PUT", f"{url}/schools/{a}/inset-days/2026",
                                 {"days": [f"2026-09-{d:02d}" for d in (4, 7, 8, 9, 10, 11)]})
        assert status == 400 and "days" in body["fields"]
        status, body = http_json("PUT", f"{url}/calendars/buckinghamshire/2027", {"periods": [
            {"term": "autumn", "start": "2027-09-02", "end": "2027-10-22"},
            {"term": "autumn", "start": "2027-10-20", "end": "2027-12-17"}]})
        assert status == 422 and body["rule"] == "valid_term_dates" and "overlap" in body["message"]
        status, body = http_json("PUT", f"{url}/schools/{a}/term-dates/2026", {"periods": [
            {"term": "autumn", "start": "2026-09-01", "end": "2026-12-11"}]})
        assert status == 422 and body["rule"] == "la_sets_term_dates"  # a community school follows the LA


class TestIssue14BookingsCoachingBundles:
    def test_authority_one_diary_booking_cut_off_coaching_and_bundles_over_http(self, stack_factory, databases,
                                                                                 amqp_uri):
        """Rules 16, 17 and 5 (scheduling's side) end to end: events in, HTTP out, events published."""
        stack = stack_factory(databases).start("scheduling")
        url = stack.url("scheduling")
        a, b = "360001", "360002"
        for urn in (a, b):
            publish(amqp_uri, "membership", "member_joined", member(urn))
        head, senco = str(uuid.uuid4()), str(uuid.uuid4())
        publish(amqp_uri, "membership", "contact_role_changed", contact(head, a))
        publish(amqp_uri, "membership", "contact_role_changed",
                {**contact(senco, a, role="senco"), "may_commit_spending": False})
        publish(amqp_uri, "catalogue", "offering_published", {
            "offering_code": "DSL-TRAIN", "name": "DSL training", "service_area": "governance", "provider": "BLT",
            "description": "", "vat_treatment": "exempt", "eligibility": {"phases": [], "establishment_types": []},
            "capacity": None})
        publish(amqp_uri, "catalogue", "edition_priced", {
            "offering_code": "DSL-TRAIN", "edition_year": 2026, "on_sale": True,
            "pricing": {"model": "per_delegate", "subscriber_price_pence": 9500, "non_subscriber_price_pence": 15000},
            "entitlements": []})
        # b's bundle includes peer review: b is a peer-review subscriber as if it had bought it
        publish(amqp_uri, "catalogue", "subscription_started", {**subscription(b, "LEAD-BUNDLE"), "components": [
            {"offering_code": "PEER-REVIEW", "offering_name": "Peer review", "service_area": "school_improvement",
             "vat_treatment": "standard", "entitlements": [], "annual_price_pence": 50000}]})
        wait_schools(url, (a, b))
        eventually(lambda: http_json("GET", f"{url}/schools/{b}")[1]["eligibility"], message="bundle")
        assert [c["offering_code"] for c in http_json("GET", f"{url}/schools/{b}")[1]["eligibility"][0]["components"]] \
            == ["PEER-REVIEW"]

        def created():
            status, _ = http_json("POST", f"{url}/courses", {"course_code": "DSL-X", "title": "DSL",
                                                             "offering_code": "DSL-TRAIN"})
            return status if status in (201, 409) else None
        eventually(created, message="offering known")
        status, sess = http_json("POST", f"{url}/courses/DSL-X/sessions",
                                 {"date": "2026-11-05", "capacity": 5, "cutoff_days": 7, "booking_cutoff_days": 3})
        assert status == 201 and sess["booking_cutoff_days"] == 3

        def refused_senco():
            status, body = http_json("POST", f"{url}/sessions/{sess['session_id']}/bookings",
                                     {"urn": a, "booked_on": "2026-10-01"}, token=tokens.contact(a, senco, "senco"))
            return body if status == 422 and body["rule"] == "may_commit_spending" else None
        eventually(refused_senco, message="the senco's role known and refused a paid place")
        status, body = http_json("POST", f"{url}/sessions/{sess['session_id']}/bookings",
                                 {"urn": a, "booked_on": "2026-11-03"}, token=tokens.contact(a, head))
        assert status == 422 and body["rule"] == "booking_cut_off"
        status, place = http_json("POST", f"{url}/sessions/{sess['session_id']}/bookings",
                                  {"urn": a, "booked_on": "2026-11-02"}, token=tokens.contact(a, head))
        assert status == 201 and place["unit_price_pence"] == 15000

        # coaching: the head mentors b's leader; a session on the course day clashes in the one diary
        status, formed = http_json("POST", f"{url}/coaching/pairs", {
            "mentors": [{"mentor_id": head, "urn": a, "phase": "primary", "strengths": ["send"], "capacity": 1}],
            "leaders": [{"leader_id": "leader-b", "urn": b, "phase": "primary", "needs": ["send"]}],
            "today": "2026-09-14"})
        assert status == 201 and formed["unmatched"] == [] and formed["pairs"][0]["needs_met"] == ["send"]
        pair_id = formed["pairs"][0]["pair_id"]
        status, body = http_json("POST", f"{url}/coaching/pairs/{pair_id}/sessions",
                                 {"date": "2026-11-05", "today": "2026-09-14"})
        assert status == 422 and body["rule"] == "double_booked" and "course DSL-X" in body["message"]
        status, booked = http_json("POST", f"{url}/coaching/pairs/{pair_id}/sessions",
                                   {"date": "2026-11-04", "today": "2026-09-14"})
        assert status == 201
        assert http_json("GET", f"{url}/coaching/pairs/{pair_id}")[1]["sessions"] == [
            {"coaching_session_id": booked["coaching_session_id"], "date": "2026-11-04"}]
        kinds = [t for t, _ in outbox_types(stack.database_urls["scheduling"])]
        assert kinds.count("coaching_pair_formed") == 1 and kinds.count("coaching_session_booked") == 1
