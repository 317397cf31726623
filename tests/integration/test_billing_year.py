"""A year of a small county's billing, fed with upstream events on the real broker, on SQLite and
PostgreSQL: a dozen schools join and buy, one joins late, one converts to an academy in a MAT that
pays centrally, one leaves, one cancels, one is charged before billing has heard of it, delegates
attend chargeable sessions, payments arrive (full, partial, over), and three termly billing runs
issue invoices and credit notes whose totals are checked against figures worked out by hand below.
"""
from __future__ import annotations

import csv
import io
import urllib.request


from tests import tokens
from tests.conftest import billing_run, eventually, http_json
from tests.integration.billing_upstream import EventTap, Upstream

SI = ("SI-CORE", "School improvement core offer", "school_improvement", "standard")
GOV = ("GOV-TRAIN", "Governor training", "governance", "exempt")
LEAD = ("LEAD-PROG", "Leadership programme", "leadership_development", "standard")
TR100 = {"id": "TR100", "name": "Chiltern Learning Trust"}  # pays centrally (the default)
TR200 = {"id": "TR200", "name": "Vale Academies"}  # its academies pay for themselves
MAINTAINED = ("2026-04-01", "2027-03-31")
ACADEMIC = ("2026-09-01", "2027-08-31")


def get_text(url: str) -> tuple[int, str, str]:
    # /metrics takes the scrape credential; every other route a trust-staff token.
    headers = tokens.metrics_headers() if url.endswith("/metrics") else tokens.bearer(tokens.trust_staff())
    request = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, response.headers.get("Content-Type", ""), response.read().decode()


class TestCountyYear:
    def test_a_year_of_invoices_matches_the_figures_worked_out_by_hand(self, stack_factory, databases, amqp_uri):
        stack = stack_factory(databases, extra_env={"BILLING_FREQUENCY": "termly"}).start("billing")
        billing = stack.url("billing")
        tap = EventTap(amqp_uri)
        up = Upstream(amqp_uri)

        def charges(**query):
            qs = "&".join(f"{k}={v}" for k, v in query.items())
            return http_json("GET", f"{billing}/charges?{qs}")[1]["charges"]

        assert http_json("PUT", f"{billing}/mats/TR200/billing", {"pays_centrally": False})[0] == 200

        # -- joins (110012 not yet: its purchase arrives first) -----------------------------------
        schools = {
            "110001": "Aston Clinton School", "110002": "Bierton CE School", "110003": "Cheddington Combined",
            "110004": "Dinton CE School", "110005": "Elmhurst School", "110006": "Farnham Common Infant",
            "110011": "Haddenham Infant", "110012": "Ickford School",
        }
        academies = {"140007": ("Juniper Academy", TR100), "140008": ("Kingsbrook Academy", TR100),
                     "140009": ("Lace Hill Academy", TR200), "140010": ("Marsh Gibbon Academy", None)}
        for urn, name in schools.items():
            if urn not in ("110006", "110012"):
                up.member_joined(urn, name)
        up.member_joined("110006", schools["110006"], joined_on="2026-06-01")  # joins late
        for urn, (name, mat) in academies.items():
            up.member_joined(urn, name, mat=mat, is_academy=True,
                             establishment_type="academy_converter" if mat else "academy_sponsor_led")

        # -- purchases ---------------------------------------------------------------------------
        slas = {
            "s1": up.sla("110001", schools["110001"], SI, 300000, *MAINTAINED),
            "s2a": up.sla("110002", schools["110002"], SI, 250000, *MAINTAINED),
            "s2b": up.sla("110002", schools["110002"], GOV, 60000, *MAINTAINED),
            "s3": up.sla("110003", schools["110003"], SI, 200000, *MAINTAINED),
            "s4": up.sla("110004", schools["110004"], SI, 365000, *MAINTAINED),
            "s5": up.sla("110005", schools["110005"], LEAD, 120000, *MAINTAINED),
            "s6": up.sla("110006", schools["110006"], SI, 365000, "2026-06-01", "2027-03-31"),  # late start
            "s12": up.sla("110012", schools["110012"], SI, 250000, *MAINTAINED),
            "a7": up.sla("140007", "Juniper Academy", SI, 300000, *ACADEMIC, mat=TR100),
            "a8": up.sla("140008", "Kingsbrook Academy", SI, 300000, *ACADEMIC, mat=TR100),
            "a9": up.sla("140009", "Lace Hill Academy", GOV, 60000, *ACADEMIC, mat=TR200),
            "a10": up.sla("140010", "Marsh Gibbon Academy", LEAD, 120000, *ACADEMIC),
        }
        first_delivery = None
        for key, sla in slas.items():
            event_id = up.subscription_started(sla)
            first_delivery = first_delivery or event_id
        up.subscription_started(slas["s1"], event_id=first_delivery)  # the broker delivers one twice

        unmatched = eventually(lambda: (len(charges()) == 12 and charges(status="unmatched")) or None,
                               message="12 charges, one unmatched")
        assert [c["urn"] for c in unmatched] == ["110012"]  # kept, not dropped
        assert len(charges(urn="110001")) == 1  # the duplicate delivery changed nothing
        # late start: 1 June 2026 to 31 March 2027 is 304 of 365 days: 365000 x 304/365 = 304000
        assert [c["amount_pence"] for c in charges(urn="110006")] == [304000]
        # TR100 pays centrally for its academies; TR200 does not; 140010 has no MAT
        assert sorted(c["urn"] for c in charges(payer_id="TR100")) == ["140007", "140008"]
        assert [c["payer_kind"] for c in charges(urn="140009")] == ["school"]

        up.member_joined("110012", schools["110012"])
        eventually(lambda: not charges(status="unmatched") and len(charges(status="uninvoiced")) == 12,
                   message="the unmatched charge matched when its school joined")

        # -- autumn run ----------------------------------------------------------------------------
        run = billing_run(billing, {"period": "2026/27 autumn", "issue_date": "2026-09-01"})
        assert run["rerun"] is False, run
        assert run["invoices_issued"] == 10 and run["credit_notes_issued"] == 0
        # by hand (net, VAT at 20% on standard lines only, gross), numbered in payer order:
        autumn = {
            "BLT-000001": ("mat:TR100", 600000, 120000, 720000),        # 300000 + 300000
            "BLT-000002": ("school:110001", 300000, 60000, 360000),
            "BLT-000003": ("school:110002", 310000, 50000, 360000),     # 250000 std + 60000 exempt
            "BLT-000004": ("school:110003", 200000, 40000, 240000),
            "BLT-000005": ("school:110004", 365000, 73000, 438000),
            "BLT-000006": ("school:110005", 120000, 24000, 144000),
            "BLT-000007": ("school:110006", 304000, 60800, 364800),
            "BLT-000008": ("school:110012", 250000, 50000, 300000),
            "BLT-000009": ("school:140009", 60000, 0, 60000),
            "BLT-000010": ("school:140010", 120000, 24000, 144000),
        }
        docs = http_json("GET", f"{billing}/invoices")[1]["documents"]
        assert {d["number"]: (f"{d['payer_kind']}:{d['payer_id']}", d["net_pence"], d["vat_pence"], d["gross_pence"])
                for d in docs} == autumn
        assert run["invoiced_gross_pence"] == 3130800 == sum(v[3] for v in autumn.values())
        assert all(d["due_date"] == "2026-10-01" for d in docs)
        again = billing_run(billing, {"period": "2026/27 autumn", "issue_date": "2026-09-02"})
        assert again["rerun"] is True and again["run_id"] == run["run_id"]
        assert len(http_json("GET", f"{billing}/invoices")[1]["documents"]) == 10

        invoice = http_json("GET", f"{billing}/invoices/BLT-000003")[1]
        assert [(line["offering_code"], line["vat_code"], line["net_pence"], line["vat_pence"], line["census_date"],
                 line["number_on_roll"]) for line in invoice["lines"]] == [
            ("GOV-TRAIN", "E", 60000, 0, "2025-10-02", 210), ("SI-CORE", "S", 250000, 50000, "2025-10-02", 210)]
        assert invoice["operator"]["legal_name"] == "Bucks Learning Trust" and invoice["operator"]["vat_number"]

        # -- payments: full, partial, over; and refusals that write nothing -------------------------
        for number, amount, day in (("BLT-000002", 360000, "2026-09-20"), ("BLT-000001", 500000, "2026-10-10"),
                                    ("BLT-000003", 360100, "2026-09-25"), ("BLT-000005", 438000, "2026-09-28")):
            status, paid = http_json("POST", f"{billing}/payments", {
                "invoice_number": number, "amount_pence": amount, "currency": "GBP", "received_on": day,
                "reference": f"BACS {number}"})
            assert status == 201, paid
        assert http_json("GET", f"{billing}/invoices/BLT-000001")[1]["status"] == "part_paid"
        assert http_json("GET", f"{billing}/invoices/BLT-000003")[1]["balance_pence"] == -100  # overpaid
        status, body = http_json("POST", f"{billing}/payments", {"invoice_number": "BLT-999999", "amount_pence": 10,
                                                                 "received_on": "2026-10-01"})
        assert status == 422 and body["field"] == "invoice_number"
        status, body = http_json("POST", f"{billing}/payments", {"invoice_number": "BLT-000004", "amount_pence": -10,
                                                                 "received_on": "2026-10-01"})
        assert status == 400 and "amount_pence" in body["fields"]
        status, body = http_json("POST", f"{billing}/payments", {"invoice_number": "BLT-000004", "amount_pence": 10,
                                                                 "currency": "EUR", "received_on": "2026-10-01"})
        assert status == 400 and body["fields"]["currency"] == ["only GBP is accepted"]
        assert http_json("GET", f"{billing}/invoices/BLT-000004")[1]["paid_pence"] == 0

        # -- overdue on 15 November 2026: every autumn invoice still owing, once ----------------------
        status, overdue = http_json("POST", f"{billing}/overdue-checks", {"as_of": "2026-11-15"})
        assert status == 200
        assert sorted(o["invoice_number"] for o in overdue["newly_overdue"]) == [
            "BLT-000001", "BLT-000004", "BLT-000006", "BLT-000007", "BLT-000008", "BLT-000009", "BLT-000010"]
        assert http_json("POST", f"{billing}/overdue-checks", {"as_of": "2026-11-16"})[1]["count"] == 0

        # -- the year moves on: a cancellation, a leaver, a conversion, chargeable attendance --------
        up.subscription_cancelled(slas["s4"]["subscription_id"], "110004", "2026-09-15", "2026-10-01")
        up.member_left("110005", schools["110005"], "2027-01-01")
        up.subscription_ended(slas["s5"]["subscription_id"], "110005", "2027-01-01", "left")
        up.school_converted("110003", schools["110003"], "149003", "Cheddington Academy", TR100, "2027-01-01")
        up.subscription_ended(slas["s3"]["subscription_id"], "110003", "2027-01-01", "converted")
        up.subscription_started(up.sla("149003", "Cheddington Academy", SI, 200000, "2027-01-01", "2027-03-31",
                                       mat=TR100, continues=slas["s3"]["subscription_id"]))
        up.attendance_recorded("110011", "2026-11-05", chargeable=True, price=12500)
        up.attendance_recorded("110011", "2027-02-10", chargeable=True, price=12500)
        up.attendance_recorded("110011", "2027-02-10", chargeable=False, price=0)

        def settled():
            credits = [c for c in charges() if c["kind"] == "credit"]
            successor = charges(urn="149003")
            attended = charges(urn="110011")
            return len(credits) == 3 and successor and successor[0]["status"] == "uninvoiced" and len(attended) == 2
        eventually(settled, message="credits, the academy's charge and attendance charges")
        # conversion: 1 January to 31 March is 90 of 365 days of 200000 = 49315.07 -> 49315, to the MAT
        assert [(c["payer_id"], c["amount_pence"], c["period_end"]) for c in charges(urn="149003")] == [
            ("TR100", 49315, "2027-03-31")]

        # -- spring run -------------------------------------------------------------------------------
        run = billing_run(billing, {"period": "2026/27 spring", "issue_date": "2027-01-04"})
        assert not run["rerun"] and (run["invoices_issued"], run["credit_notes_issued"]) == (2, 3)
        spring = {
            "BLT-000011": ("mat:TR100", 49315, 9863, 59178),           # 49315 x 20% = 9863.0
            "BLT-000012": ("school:110011", 25000, 0, 25000),          # 2 x 12500, exempt
            # credit notes, each for the unexpired part, against the autumn invoice:
            "BLT-CN000001": ("school:110003", 49315, 9863, 59178),     # = the MAT's new charge: never more than the whole
            "BLT-CN000002": ("school:110004", 182000, 36400, 218400),  # 1 Oct-31 Mar: 182/365 x 365000
            "BLT-CN000003": ("school:110005", 29589, 5918, 35507),     # 90/365 x 120000 = 29589.04; VAT 5917.8 -> 5918
        }
        docs = http_json("GET", f"{billing}/invoices?issued_from=2027-01-01")[1]["documents"]
        assert {d["number"]: (f"{d['payer_kind']}:{d['payer_id']}", d["net_pence"], d["vat_pence"], d["gross_pence"])
                for d in docs} == spring
        note = http_json("GET", f"{billing}/invoices/BLT-CN000001")[1]
        assert note["credits_invoice_number"] == "BLT-000004"
        assert 200000 - note["net_pence"] + spring["BLT-000011"][1] == 200000

        # -- aged debt on 15 January 2027 ------------------------------------------------------------
        debt = http_json("GET", f"{billing}/reports/aged-debt?as_of=2027-01-15")[1]["totals"]
        # over 90 days: 220000 + (240000 - 59178) + (144000 - 35507) + 364800 + 300000 + 60000 + 144000
        assert debt["over_90"] == 1378115
        assert debt["current"] == 59178 + 25000 and debt["total"] == 1378115 + 84178
        statement = http_json("GET", f"{billing}/payers/school/110004/statement")[1]
        assert [e["balance_pence"] for e in statement["entries"]] == [438000, 0, -218400]

        # -- summer run: a renewal ---------------------------------------------------------------------
        up.subscription_renewed(up.sla("110001", schools["110001"], SI, 310000, "2027-04-01", "2028-03-31"),
                                slas["s1"]["subscription_id"])
        eventually(lambda: len(charges(urn="110001")) == 2, message="the renewal's charge")
        run = billing_run(billing, {"period": "2026/27 summer", "issue_date": "2027-04-01"})
        assert not run["rerun"] and run["invoices_issued"] == 1 and run["invoiced_gross_pence"] == 372000
        status, body = http_json("POST", f"{billing}/billing-runs", {"period": "2027/28", "issue_date": "2027-09-01"})
        assert status == 422 and body["field"] == "period"  # this operator bills termly

        # -- the board's picture -----------------------------------------------------------------------
        picture = http_json("GET", f"{billing}/reports/sustainability?as_of=2027-04-02")[1]
        assert picture["revenue_pence"]["2026/27"] == {
            # 600000 + 300000 + 250000 + 200000 + 365000 + 304000 + 250000 + 49315 - 49315 - 182000
            "school_improvement": 2087000,
            "governance": 120000,
            "leadership_development": 210411,  # 120000 + 120000 - 29589
            "inclusion": 25000,
        }
        assert picture["revenue_pence"]["2027/28"] == {"school_improvement": 310000}
        assert picture["paying_members"] == {"2026/27": 13, "2027/28": 1}
        # buy-back as the catalogue counts it (issue 14, rule 12): held on the payer's year start (1 April,
        # 1 September), a converted school and its academy one buyer. Held 2026: 110001, 110002, 110003 (as
        # 149003), 110004 (cancelled from 1 October), 110005, 110012, 140007, 140008, 140009 (110006 started
        # in June, 140010 is billed as maintained here and so holds 1 April 2027); held 2027: 110001 (renewed)
        assert picture["buy_back"] == {"2027/28": {"bought_last_year": 9, "bought_again": 1, "rate": "0.1111"}}
        assert picture["debt_trend"]["academic_year"] == "2026/27"
        assert [p["as_of"] for p in picture["debt_trend"]["month_ends"]][-1] == "2027-03-31"
        assert picture["members"] == 11  # 12 joined + the academy - the leaver - the closed maintained school

        # the board's gauges are recomputed after each change, in the background, not on the scrape
        metrics = eventually(lambda: (lambda text: text if 'partnership_billing_paying_members{academic_year="2026/27"} 13.0'
                                      in text else None)(get_text(f"{billing}/metrics")[2]),
                             message="the board's gauges recomputed after the last change")
        assert 'partnership_billing_revenue_pence{academic_year="2026/27",service_area="governance"} 120000.0' in metrics

        def computed_at() -> str:
            return next(line for line in get_text(f"{billing}/metrics")[2].splitlines()
                        if line.startswith("partnership_billing_board_computed_timestamp_seconds "))

        # a scrape reads the gauges: scraping again, with nothing changed, computes nothing
        assert computed_at() == computed_at()
        assert "partnership_billing_debt_pence" in metrics and "partnership_billing_buy_back_ratio" in metrics

        # -- exports -----------------------------------------------------------------------------------
        status, content_type, text = get_text(f"{billing}/exports/invoices.csv")
        rows = list(csv.DictReader(io.StringIO(text)))
        assert content_type.startswith("text/csv") and len(rows) == 16 + 3  # 16 invoice lines (TR100, 110002 and 110011 have two), 3 credit-note lines
        status, content_type, journal = get_text(f"{billing}/exports/journal.csv")
        entries = list(csv.DictReader(io.StringIO(journal)))
        assert sum(int(e["debit_pence"]) for e in entries) == sum(int(e["credit_pence"]) for e in entries)
        status, content_type, page = get_text(f"{billing}/invoices/BLT-000011/document.html")
        assert content_type.startswith("text/html")
        assert "Chiltern Learning Trust" in page and "GB123456789" in page and "£591.78" in page
        # a complete VAT invoice (rule 13): the MAT c/o its academy (no MAT address is published), tax point
        assert "c/o Cheddington Academy<br>Buckinghamshire<br>HP19 8FF" in page and "Tax point: 2027-01-04" in page

        # -- every document and payment reached the broker as an event, once --------------------------
        eventually(lambda: tap.count("invoice_issued") == 13, message="invoice_issued on the broker")
        assert tap.count("credit_note_issued") == 3
        assert tap.count("payment_recorded") == 4
        assert tap.count("invoice_overdue") == 7
        # 11 SLAs + the one matched late + the academy's + the renewal + 2 attendances
        eventually(lambda: tap.count("charge_recorded") == 16, message="charge_recorded on the broker")
        issued = {e["payload"]["invoice_number"]: e["payload"]["gross_pence"] for e in tap.of_type("invoice_issued")}
        assert issued["BLT-000001"] == 720000 and issued["BLT-000013"] == 372000
