"""Academy conversion across all four services (issues 4 and 5), as separate processes on the
real broker, on SQLite and PostgreSQL:

a maintained school joins, its head teacher is appointed, the head buys three SLAs under three
pricing models (per pupil, banded, per session x 4 days) from April 2026 (the last for two years); then
membership converts it into an academy in a MAT from 1 January 2027. One
`school_converted_to_academy`; the catalogue ends each SLA from that day and starts the
academy's at the frozen price to 31 March; billing credits the school the unexpired 90 of 365
days and charges the MAT (which pays centrally) exactly that; scheduling holds the academy in
its MAT; billing's annual run then invoices the school its charges net of the credits and the MAT
the rest of the year plus the two-year SLA's second year (April 2027 - March 2028)."""
from __future__ import annotations

import pytest

from tests import factories
from tests.conftest import billing_run, eventually, http_json
from tests.e2e.steps import Observer, appoint, buy, charges, join, offering, ok, publish_offering, rows

CONVERSION_DATE = "2027-01-01"
MAT = {"id": "TR03001", "name": "Chiltern Learning Trust"}
ROLL = 172

# Annual prices, worked out by hand from the terms below (172 pupils, primary):
PER_PUPIL = 150000 + ROLL * 825  # 291,900: base + rate x roll, above the 200,000 minimum
BANDED = 180000                  # 172 pupils falls in the "up to 250" band
PER_SESSION = 4 * 47500          # 190,000: four days at 475.00
# Unexpired from 1 January to 31 March 2027: 31 + 28 + 31 = 90 of the 365 days of the
# agreement year 1 April 2026 - 31 March 2027; each rounded once, half up:
#   291,900 x 90 / 365 = 71,975.34 -> 71,975
#   180,000 x 90 / 365 = 44,383.56 -> 44,384
#   190,000 x 90 / 365 = 46,849.32 -> 46,849
UNEXPIRED = {"per_pupil": 71975, "banded": 44384, "per_session": 46849}
ANNUAL = {"per_pupil": PER_PUPIL, "banded": BANDED, "per_session": PER_SESSION}


def three_offerings(suffix: str) -> dict[str, dict]:
    return {
        "per_pupil": factories.per_pupil_offering(code=f"SI-{suffix}"),
        "banded": offering(f"SEND-{suffix}", "SEND and inclusion support", "early_years_and_inclusion", "exempt",
                           {"model": "banded", "bands": [{"up_to_pupils": 100, "price_pence": 120000},
                                                         {"up_to_pupils": 250, "price_pence": 180000},
                                                         {"up_to_pupils": None, "price_pence": 240000}]}),
        "per_session": offering(f"CP-{suffix}", "Classroom practice review days", "school_improvement",
                                "standard", {"model": "per_session", "unit": "day", "unit_price_pence": 47500}),
    }


class TestConversionAcrossServices:
    @pytest.mark.timeout(240)
    def test_a_maintained_school_converts_and_its_slas_move_to_the_academy_and_its_mat(
            self, stack_factory, databases, amqp_uri):
        observer = Observer(amqp_uri)
        stack = stack_factory(databases).start()
        suffix = databases.backend[:2].upper() + str(ROLL)
        offerings = three_offerings(suffix)
        for item in offerings.values():
            publish_offering(stack, item)

        school = factories.school(urn="110394", number_on_roll=ROLL, name="Haddenham Community Primary")
        successor_urn = "149876"
        join(stack, school)
        head = appoint(stack, school["urn"])

        bought = {}
        for model_name, item in offerings.items():
            extra = {"quantity": 4, "years": 2} if model_name == "per_session" else {}
            bought[model_name] = buy(stack, school["urn"], item["code"], head, po_number=f"PO-{model_name}", **extra)
        assert {m: s["annual_price_pence"] for m, s in bought.items()} == ANNUAL
        for model_name, sub in bought.items():
            assert (sub["period_start"], sub["period_end"]) == (
                "2026-04-01", "2028-03-31" if model_name == "per_session" else "2027-03-31")

        # billing charges the school itself the whole first year of each SLA
        old_charges = eventually(lambda: len(charges(stack, urn=school["urn"])) == 3 and charges(
            stack, urn=school["urn"]), message="three charges to the school")
        assert sorted((c["subscription_id"], c["payer_kind"], c["payer_id"], c["amount_pence"], c["kind"])
                      for c in old_charges) == sorted(
            (s["subscription_id"], "school", school["urn"], ANNUAL[m], "charge") for m, s in bought.items())
        eventually(lambda: len(http_json("GET", f"{stack.url('scheduling')}/schools/{school['urn']}")[1]
                               .get("eligibility") or []) == 3, message="scheduling learning the three SLAs")

        # -- membership converts it into an academy in the MAT, from a date inside the SLAs' period
        converted = ok(201, http_json("POST", f"{stack.url('membership')}/members/{school['urn']}/conversion", {
            "successor_urn": successor_urn, "conversion_date": CONVERSION_DATE, "mat": MAT,
            "successor_name": "Haddenham Academy"}))
        assert converted["successor"]["urn"] == successor_urn

        # exactly one school_converted_to_academy, and no member_joined / member_left for it
        event = observer.wait_for("school_converted_to_academy")[0]
        assert (event["conversion_date"], event["predecessor"]["urn"], event["successor"]["urn"], event["mat"]) == (
            CONVERSION_DATE, school["urn"], successor_urn, MAT)

        # -- the catalogue: each predecessor SLA ends from the conversion date, the successor's starts then
        ended = observer.wait_for("subscription_ended", 3, urn=school["urn"])
        assert sorted((e["subscription_id"], e["effective_date"], e["reason"]) for e in ended) == sorted(
            (s["subscription_id"], CONVERSION_DATE, "converted") for s in bought.values())
        started = observer.wait_for("subscription_started", 3, urn=successor_urn)
        by_old = {s["continues_subscription_id"]: s for s in started}
        assert set(by_old) == {s["subscription_id"] for s in bought.values()}
        for model_name, old in bought.items():
            new = by_old[old["subscription_id"]]
            assert (new["offering_code"], new["annual_price_pence"], new["period_start"], new["period_end"],
                    new["payer_type"], new["mat"], new["quantity"]) == (
                old["offering_code"], ANNUAL[model_name], CONVERSION_DATE, old["period_end"], "academy", MAT,
                old["quantity"])
            assert new["census"] == {"date": school["census_date"], "number_on_roll": ROLL}
        status, seen = http_json("GET", f"{stack.url('catalogue')}/members/{successor_urn}")
        assert status == 200 and len(seen["subscriptions"]) == 3
        for old in bought.values():
            status, after = http_json("GET", f"{stack.url('catalogue')}/subscriptions/{old['subscription_id']}")
            assert status == 200 and after["covered_until"] == "2026-12-31", after

        # -- billing: stored the conversion, credits the school the unexpired part, charges the MAT that part
        billing_db = stack.database_urls["billing"]

        def billing_knows_the_academy():
            found = rows(billing_db, "SELECT urn, is_academy, mat_id, mat_name FROM members WHERE urn = :u",
                         u=successor_urn)
            return found if found else None
        eventually(billing_knows_the_academy, message="billing storing the academy")
        assert billing_knows_the_academy() == [
            {"urn": successor_urn, "is_academy": True, "mat_id": MAT["id"], "mat_name": MAT["name"]}]
        left = rows(billing_db, "SELECT left_on FROM members WHERE urn = :u", u=school["urn"])
        assert str(left[0]["left_on"]) == CONVERSION_DATE

        def settled():
            old_side = charges(stack, urn=school["urn"])
            new_side = charges(stack, urn=successor_urn)
            done = len([c for c in old_side if c["kind"] == "credit"]) == 3 and len(new_side) == 3
            return (old_side, new_side) if done else None
        old_side, new_side = eventually(settled, message="credits to the school and charges to the MAT")
        credits = {c["offering_code"]: c for c in old_side if c["kind"] == "credit"}
        mat_charges = {c["offering_code"]: c for c in new_side}
        for model_name, item in offerings.items():
            credit, charge = credits[item["code"]], mat_charges[item["code"]]
            assert (credit["payer_kind"], credit["payer_id"], credit["amount_pence"],
                    credit["period_start"], credit["period_end"]) == (
                "school", school["urn"], UNEXPIRED[model_name], CONVERSION_DATE, "2027-03-31"), credit
            # the rest of the current agreement year (the two-year SLA's second year falls due later)
            assert (charge["kind"], charge["payer_kind"], charge["payer_id"], charge["amount_pence"],
                    charge["period_start"], charge["period_end"]) == (
                "charge", "mat", MAT["id"], UNEXPIRED[model_name], CONVERSION_DATE, "2027-03-31"), charge
            # what the school keeps plus what the MAT pays is exactly the whole year, never more
            kept = ANNUAL[model_name] - credit["amount_pence"]
            assert kept + charge["amount_pence"] == ANNUAL[model_name]
        assert http_json("GET", f"{stack.url('billing')}/charges?urn={school['urn']}")[1]["total_pence"] == (
            PER_PUPIL + BANDED + PER_SESSION - sum(UNEXPIRED.values()))  # 661,900 - 163,208 = 498,692
        assert http_json("GET", f"{stack.url('billing')}/charges?payer_id={MAT['id']}")[1]["total_pence"] == 163208

        # -- billing's annual run for 2026/27: the school's invoice nets its credits; the MAT's invoice has
        # the rest of this agreement year and the two-year SLA's second year, 1 April 2027 - 31 March 2028
        run = billing_run(stack.url('billing'), {"period": "2026/27", "issue_date": "2027-01-04"})
        assert (run["invoices_issued"], run["credit_notes_issued"]) == (2, 0)
        second_year = [c for c in charges(stack, urn=successor_urn) if c["period_start"] == "2027-04-01"]
        assert [(c["offering_code"], c["period_end"], c["amount_pence"], c["payer_id"]) for c in second_year] == [
            (offerings["per_session"]["code"], "2028-03-31", PER_SESSION, MAT["id"])]
        docs = {d["payer_id"]: d for d in http_json("GET", f"{stack.url('billing')}/invoices")[1]["documents"]}
        # school: charges 661,900 (VAT 58,380 + 38,000) less credits 163,208 (VAT 14,395 + 9,370; SEND exempt)
        assert (docs[school["urn"]]["net_pence"], docs[school["urn"]]["vat_pence"],
                docs[school["urn"]]["gross_pence"]) == (498692, 72615, 571307)
        # MAT: 163,208 (VAT 14,395 + 9,370) + 190,000 (VAT 38,000)
        assert (docs[MAT["id"]]["net_pence"], docs[MAT["id"]]["vat_pence"], docs[MAT["id"]]["gross_pence"]) == (
            353208, 61765, 414973)

        # -- scheduling: the predecessor closed, the academy open in its MAT, its SLAs carried on
        def scheduling_converted():
            status, body = http_json("GET", f"{stack.url('scheduling')}/schools/{successor_urn}")
            return body if status == 200 and len(body.get("eligibility") or []) == 3 else None
        academy = eventually(scheduling_converted, message="scheduling storing the academy")
        assert (academy["school"]["mat_id"], academy["school"]["predecessor_urn"], academy["school"]["active"]) == (
            MAT["id"], school["urn"], True)
        assert {e["period_start"] for e in academy["eligibility"]} == {CONVERSION_DATE}
        closed = http_json("GET", f"{stack.url('scheduling')}/schools/{school['urn']}")[1]
        assert (closed["school"]["active"], closed["school"]["closed_on"]) == (False, CONVERSION_DATE)
        assert {e["period_end"] for e in closed["eligibility"]} == {"2026-12-31"}

        # membership: the old record closed as converted, the academy open in the MAT
        old_member = http_json("GET", f"{stack.url('membership')}/members/{successor_urn}")[1]
        assert (old_member["mat"], old_member["establishment_type"]) == (MAT, "academy_converter")

        # exactly one conversion event over the whole run, and no join or leave for either URN
        events = observer.drain_sent(*stack.database_urls.values())
        assert len([e for e in events if e["type"] == "school_converted_to_academy"]) == 1
        assert [e["payload"]["urn"] for e in events if e["type"] == "member_joined"] == [school["urn"]]
        assert [e for e in events if e["type"] == "member_left"] == []
        assert len([e for e in events if e["type"] == "subscription_ended"]) == 3
        assert len([e for e in events if e["type"] == "subscription_started"]) == 6
