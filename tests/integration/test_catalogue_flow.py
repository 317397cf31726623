"""The catalogue as a real process on the real broker, on SQLite and PostgreSQL.

Membership is fed by hand: well-formed membership envelopes are published to
`membership.events` exactly as docs/events.md fixes them. What the catalogue
publishes is read back from `catalogue.events` through a queue bound before the
test acts, so these tests see the events on the wire, not in the database.
"""
from __future__ import annotations

import datetime as dt
import random
import time
import uuid

import pytest

from shared import business_date

from tests import tokens
from tests.archive_tap import ArchiveTap
from tests.conftest import eventually, finished_run, http_json
from tests.reliability.tools import envelope, publish_raw


def EventTap(amqp_uri: str, exchange: str) -> ArchiveTap:
    """What one producer (`<producer>.events`) publishes during a test, read from its archive."""
    return ArchiveTap(amqp_uri, [exchange.split(".")[0]])


# The 2026 editions these tests buy run 1 April 2026 - 31 March 2027 for a maintained school; bought on a
# later day the SLA covers from that day (issue 14, rule 2), and the SLAs' notice date is 31 December 2026.
MAINTAINED_START, NOTICE_DATE = dt.date(2026, 4, 1), dt.date(2026, 12, 31)


def starts_on() -> str:
    """The first day a maintained school's 2026 SLA bought today covers."""
    return max(MAINTAINED_START, business_date.today()).isoformat()


def urn() -> str:
    return str(random.randint(100000, 499999))


def membership_event(amqp_uri: str, event_type: str, payload: dict) -> None:
    publish_raw(amqp_uri, "membership.events", event_type, envelope(event_type, payload, producer="membership"))


def join(stack, amqp_uri, school_urn, *, phase="primary", roll=172, mat=None) -> str:
    membership_event(amqp_uri, "member_joined", {
        "urn": school_urn, "dfe_number": f"825/{random.randint(1000, 9999)}", "name": f"School {school_urn}",
        "kind": "school", "establishment_type": "academy_converter" if mat else "community", "phase": phase,
        "is_academy": mat is not None, "mat": mat, "local_authority": "Buckinghamshire", "postcode": "HP19 8FF",
        "number_on_roll": roll, "census_date": "2025-10-02", "joined_on": "2026-01-05"})
    head = str(uuid.uuid4())
    membership_event(amqp_uri, "contact_role_changed", {
        "contact_id": head, "urn": school_urn, "display_name": "A. Head", "role": "head_teacher",
        "may_commit_spending": True, "active": True, "effective_date": "2026-01-05"})
    eventually(lambda: http_json("GET", f"{stack.url('catalogue')}/members/{school_urn}")[0] == 200,
               message=f"catalogue learning of {school_urn}")
    return head


def offerings(suffix: str) -> list[dict]:
    entitlements = [{"kind": "in_house_session", "quantity": 2}, {"kind": "induction_place", "quantity": 1}]
    return [
        {"code": f"SI-{suffix}", "name": "School improvement core offer", "service_area": "school_improvement",
         "vat_treatment": "standard", "eligible_phases": ["primary", "secondary"],
         "edition": {"year": 2026, "entitlements": entitlements,
                     "terms": {"model": "per_pupil", "base_fee_pence": 150000,
                               "rate_by_phase": {"primary": "825", "secondary": "610"},
                               "minimum_pence": 200000, "maximum_pence": 900000}}},
        {"code": f"GV-{suffix}", "name": "Governance training and induction", "service_area": "governance",
         "vat_treatment": "exempt", "eligible_phases": ["primary", "secondary"],
         "edition": {"year": 2026, "terms": {"model": "banded", "bands": [
             {"up_to_pupils": 150, "price_pence": 60000}, {"up_to_pupils": None, "price_pence": 95000}]}}},
        {"code": f"LD-{suffix}", "name": "Leadership coaching days", "service_area": "leadership_development",
         "vat_treatment": "standard", "eligible_phases": [], "capacity": 50,
         "edition": {"year": 2026, "terms": {"model": "per_session", "unit": "day", "unit_price_pence": 45000}}},
    ]


@pytest.fixture
def tap(amqp_uri):
    found = EventTap(amqp_uri, "catalogue.events")
    yield found
    found.close()


class TestSchoolBuysThreeModelsThenConverts:
    def test_slas_follow_the_conversion_rule(self, stack_factory, databases, amqp_uri, tap):
        stack = stack_factory(databases).start("catalogue")
        base = stack.url("catalogue")
        suffix = str(random.randint(1000, 9999))
        codes = []
        for offering in offerings(suffix):
            status, body = http_json("POST", f"{base}/offerings", offering)
            assert status == 201, body
            codes.append(offering["code"])
        published = tap.wait_for("offering_published", 3)
        assert published[2]["capacity"] == 50 and published[2]["eligibility"] == {"phases": [],
                                                                                 "establishment_types": []}
        priced = tap.wait_for("edition_priced", 3)
        assert priced[0]["entitlements"] == [{"kind": "in_house_session", "quantity": 2},
                                             {"kind": "induction_place", "quantity": 1}]
        assert priced[2]["pricing"] == {"model": "per_session", "unit": "day", "unit_price_pence": 45000}

        school = urn()
        head = join(stack, amqp_uri, school)
        status, quoted = http_json("GET", f"{base}/quotes?urn={school}&offering_code={codes[0]}&edition_year=2026")
        assert status == 200, quoted
        assert quoted["census"] == {"date": "2025-10-02", "number_on_roll": 172}
        assert quoted["annual_price_pence"] == 291900
        assert [s["amount_pence"] for s in quoted["price_breakdown"]] == ["150000", "141900"]

        bought = []
        for code, extra, price in ((codes[0], {"years": 2, "po_number": "PO-1"}, 291900), (codes[1], {}, 95000),
                                   (codes[2], {"quantity": 3}, 135000)):
            status, sub = http_json("POST", f"{base}/subscriptions", {
                "urn": school, "offering_code": code, "edition_year": 2026, **extra}, token=tokens.contact(school, head))
            assert status == 201, sub
            assert sub["annual_price_pence"] == price and sub["period_start"] == starts_on()
            bought.append(sub)
        started = tap.wait_for("subscription_started", 3)
        assert {s["subscription_id"] for s in started} == {b["subscription_id"] for b in bought}

        successor = urn()
        membership_event(amqp_uri, "school_converted_to_academy", {
            "conversion_date": "2027-01-01",
            "predecessor": {"urn": school, "dfe_number": "825/2001", "name": f"School {school}"},
            "successor": {"urn": successor, "dfe_number": "825/4001", "name": f"Academy {successor}",
                          "establishment_type": "academy_converter", "phase": "primary",
                          "local_authority": "Buckinghamshire", "postcode": "HP19 8FF", "number_on_roll": 190,
                          "census_date": "2026-10-01"},
            "mat": {"id": "TR01234", "name": "Great Learners Trust"}})
        ended = tap.wait_for("subscription_ended", 3)
        assert {(e["subscription_id"], e["effective_date"], e["reason"]) for e in ended} == {
            (b["subscription_id"], "2027-01-01", "converted") for b in bought}
        carried = {s["continues_subscription_id"]: s for s in tap.wait_for("subscription_started", 6)[3:]}
        for old in bought:
            new = carried[old["subscription_id"]]
            assert (new["urn"], new["payer_type"], new["mat"]["id"]) == (successor, "academy", "TR01234")
            assert (new["period_start"], new["period_end"]) == ("2027-01-01", old["period_end"])
            assert new["annual_price_pence"] == old["annual_price_pence"]
            assert new["price_breakdown"] == old["price_breakdown"]

        status, view = http_json("GET", f"{base}/members/{successor}")
        assert status == 200 and view["predecessor_urn"] == school and view["status"] == "active"
        assert len(view["subscriptions"]) == 3
        status, old_view = http_json("GET", f"{base}/members/{school}")
        assert old_view["status"] == "converted"
        assert {s["covered_until"] for s in old_view["subscriptions"]} == {"2026-12-31"}


class TestBadInput:
    def test_each_refusal_is_a_clear_4xx_and_writes_nothing(self, stack_factory, sqlite_databases, amqp_uri, tap):
        stack = stack_factory(sqlite_databases).start("catalogue")
        base = stack.url("catalogue")
        suffix = str(random.randint(1000, 9999))
        specs = offerings(suffix)
        for offering in specs:
            assert http_json("POST", f"{base}/offerings", offering)[0] == 201
        school = urn()
        head = join(stack, amqp_uri, school, phase="early_years")
        senco = str(uuid.uuid4())
        membership_event(amqp_uri, "contact_role_changed", {
            "contact_id": senco, "urn": school, "display_name": "S. Senco", "role": "senco",
            "may_commit_spending": False, "active": True, "effective_date": "2026-01-05"})
        time.sleep(1)

        def attempt(contact_id=head, **body):
            """A purchase by `contact_id` in person (their token), for the school the body names."""
            role = "senco" if contact_id == senco else "head_teacher"
            return http_json("POST", f"{base}/subscriptions", {
                "urn": school, "offering_code": specs[2]["code"], "edition_year": 2026, **body},
                token=tokens.contact(body.get("urn", school), contact_id, role))

        status, body = attempt(urn="999999")
        assert status == 422 and body["field"] == "urn" and "not a member" in body["message"]
        status, body = eventually(lambda: (r := attempt(contact_id=senco)) and r[1].get("field") == "contact_id"
                                  and r, message="senco known")
        assert status == 422 and "may not commit the school's spending" in body["message"]
        status, body = attempt(offering_code=specs[0]["code"])
        assert status == 422 and body["field"] == "offering_code" and "early_years" in body["message"]
        status, body = attempt(edition_year=2030)
        assert status == 422 and body["field"] == "edition_year"
        status, body = http_json("POST", f"{base}/offerings/{specs[2]['code']}/editions", {
            "year": 2024, "terms": {"model": "per_session", "unit": "day", "unit_price_pence": 40000}})
        assert status == 201, body
        status, body = attempt(edition_year=2024)  # 1 April 2024 - 31 March 2025: over
        assert status == 422 and body["field"] == "edition_year" and "ended on 2025-03-31" in body["message"]
        status, body = attempt(years=5)
        assert status == 400 and "years" in body["fields"]
        status, body = attempt(quantity=2.5)
        assert status == 400 and "quantity" in body["fields"]
        status, body = attempt(offering_code="NOPE-1")
        assert status == 404 and body["field"] == "offering_code"
        status, body = http_json("POST", f"{base}/offerings", {**specs[0], "code": f"BAD-{suffix}", "edition": {
            "year": 2026, "terms": {"model": "banded", "bands": [{"up_to_pupils": 100, "price_pence": 9},
                                                                 {"up_to_pupils": 50, "price_pence": 10}]}}})
        assert status == 400 and "bands" in body["fields"]["edition"]["terms"]
        status, body = http_json("POST", f"{base}/offerings", specs[0])
        assert status == 409 and body["field"] == "code"

        assert http_json("GET", f"{base}/members/{school}")[1]["subscriptions"] == []
        assert tap.of("subscription_started") == []
        status, body = attempt(quantity=2)
        assert status == 201, body
        bought = body
        renewal = f"{base}/subscriptions/{bought['subscription_id']}/renewal"
        as_head = tokens.contact(school, head)
        status, body = http_json("POST", renewal, {"contact_id": head}, token=as_head)
        assert status == 400 and "contact_id" in body["fields"]  # the confirmer is the token's person
        status, body = http_json("POST", f"{base}/subscriptions/{uuid.uuid4()}/renewal", {}, token=as_head)
        assert status == 404 and body["field"] == "subscription_id"
        # confirming is for an SLA bought after its notice date; one set to renew already is a conflict
        status, body = http_json("POST", renewal, {}, token=as_head)
        assert (status, body.get("field")) == ((409, "subscription_id") if bought["auto_renew"] else (200, None)), body
        status, body = attempt()
        assert status == 409 and body["field"] == "offering_code" and "already has" in body["message"]
        status, body = http_json("POST", f"{base}/offerings/{specs[2]['code']}/editions/2026/sale", {"on_sale": False})
        assert status == 200 and body["on_sale"] is False
        assert tap.wait_for("edition_priced", 4)[-1]["on_sale"] is False


class TestRenewalRoundOverHttp:
    def test_round_respects_the_notice_date_and_a_cancellation(self, stack_factory, databases, amqp_uri, tap):
        """What the round does over HTTP on the day the test runs (the service's business date): up to the
        SLAs' notice date it renews none of them and a cancellation of the renewal is accepted; after
        it the cancellation is refused and the round renews them (issue 14, rule 1)."""
        stack = stack_factory(databases).start("catalogue")
        base = stack.url("catalogue")
        suffix = str(random.randint(1000, 9999))
        governance = offerings(suffix)[1]
        assert http_json("POST", f"{base}/offerings", governance)[0] == 201
        schools = [urn() for _ in range(4)]
        heads = {s: join(stack, amqp_uri, s, roll=120 + 100 * i) for i, s in enumerate(schools)}
        subs = {}
        for school, head in heads.items():
            status, sub = http_json("POST", f"{base}/subscriptions", {
                "urn": school, "offering_code": governance["code"], "edition_year": 2026},
                token=tokens.contact(school, head))
            assert status == 201, sub
            # bought after the notice date an SLA renews only if confirmed, and the buyer is told so
            late = business_date.today() > NOTICE_DATE
            assert (sub["notice_date"], sub["auto_renew"], sub["renewal_notice"] is not None) == (
                NOTICE_DATE.isoformat(), not late, late)
            if late:
                status, confirmed = http_json("POST", f"{base}/subscriptions/{sub['subscription_id']}/renewal",
                                              {}, token=tokens.contact(school, head))
                assert status == 200 and confirmed["auto_renew"] is True, confirmed
            subs[school] = sub
        membership_event(amqp_uri, "member_left", {"urn": schools[3], "name": "x", "effective_date": "2027-04-01",
                                                   "reason": "closed"})
        eventually(lambda: http_json("GET", f"{base}/members/{schools[3]}")[1]["status"] == "left",
                   message="member left")
        in_time = business_date.today() <= NOTICE_DATE
        status, cancelled = http_json("POST", f"{base}/subscriptions/{subs[schools[2]]['subscription_id']}/cancel",
                                      {"reason": "budget"}, token=tokens.contact(schools[2], heads[schools[2]]))
        if in_time:
            assert status == 200 and cancelled["effective_date"] == "2027-04-01", cancelled
            assert tap.wait_for("subscription_cancelled", 1)[0]["subscription_id"] == (
                subs[schools[2]]["subscription_id"])
        else:
            assert status == 422 and cancelled["field"] == "effective_date", cancelled

        run = finished_run(base, http_json("POST", f"{base}/renewal-rounds", {"year": 2027, "uplift_percent": "2"}))
        assert run["status"] == "succeeded", run
        summary = run["result"]
        assert tap.wait_for("edition_priced", 2)[-1]["edition_year"] == 2027
        if in_time:  # nobody's notice date has passed: every SLA waits, the cancelled one is not due at all
            assert (summary["due"], summary["renewed"], summary["expired"], summary["awaiting_notice"]) == (
                0, 0, 0, 3)
            assert tap.of("subscription_renewed") == [] and tap.of("subscription_ended") == []
            return
        assert (summary["due"], summary["renewed"], summary["expired"], summary["awaiting_notice"]) == (4, 3, 1, 0)
        renewed = tap.wait_for("subscription_renewed", 3)
        assert {r["renewal_of"] for r in renewed} == {subs[s]["subscription_id"] for s in schools[:3]}
        # bands raised 2%: 60000 -> 61200 (120 pupils), 95000 -> 96900 (220 and 320 pupils)
        assert sorted(r["annual_price_pence"] for r in renewed) == [61200, 96900, 96900]
        expired = tap.wait_for("subscription_ended", 1)
        assert expired == [{"subscription_id": subs[schools[3]]["subscription_id"], "urn": schools[3],
                            "effective_date": "2027-04-01", "reason": "expired"}]
