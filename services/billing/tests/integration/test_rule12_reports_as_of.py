"""Rule 12 (issue 14) on SQLite and PostgreSQL: every report that takes `as_of` counts only what was known
on that date (aged debt, statement, sustainability), the sustainability view carries the debt trend of the
academic year, and buy-back is counted through lineage as the catalogue counts it.

Events go through the service's own consumer methods (inbox included); figures are worked out by hand."""
from __future__ import annotations

GOV = ("GOV-TRAIN", "Governor training", "governance", "exempt")
TRUST = {"id": "TR100", "name": "Chiltern Learning Trust"}


def _a_year_of_debt(ledger):
    """110001: invoiced 100,000 + VAT on 1 September (due 1 October), pays 50,000 on 1 December, cancels from
    1 January (decided 15 December): credit note 4 January for 90 of 365 days. 110002: joins the governor
    training SLA late, from 1 January (90 of 365 days of 30,000 = 7,397.26 -> 7,397, exempt), invoiced 4 January."""
    ledger.join("110001")
    ledger.join("110002")
    sla = ledger.buy("110001", price=100000)
    ledger.run("2026/27 autumn", "2026-09-01", "termly")
    ledger.pay("BLT-000001", 50000, "2026-12-01")
    ledger.cancel(sla, "2027-01-01", cancelled_on="2026-12-15")
    ledger.buy("110002", GOV, 30000, "2027-01-01", "2027-03-31")
    ledger.run("2026/27 spring", "2027-01-04", "termly")


class TestReportsAsOf:
    def test_aged_debt_as_of_a_past_date_counts_only_what_was_known_then(self, ledger):
        _a_year_of_debt(ledger)
        # the credit note: 100,000 x 90/365 = 24,657.53 -> 24,658 net, VAT 4,931.6 -> 4,932, gross 29,590
        assert sorted((d["number"], d["gross_pence"]) for d in ledger.docs()) == [
            ("BLT-000001", 120000), ("BLT-000002", 7397), ("BLT-CN000001", 29590)]
        past = ledger.report("aged_debt", ledger_date("2026-11-15"))
        # 45 days past due; neither the December payment nor the January credit note was known
        assert past["totals"]["31_60"] == 120000 and past["totals"]["total"] == 120000
        assert [(p["payer_key"], p["total"]) for p in past["payers"]] == [("school:110001", 120000)]
        december = ledger.report("aged_debt", ledger_date("2026-12-31"))["totals"]
        assert (december["over_90"], december["total"]) == (70000, 70000)  # part paid, not yet credited
        now = ledger.report("aged_debt", ledger_date("2027-02-01"))["totals"]
        assert now["total"] == 120000 - 50000 - 29590 + 7397

    def test_a_statement_as_of_a_past_date_shows_only_what_happened_by_then(self, ledger):
        _a_year_of_debt(ledger)
        statement = ledger.report("statement", "school:110001", ledger_date("2026-12-10"))
        assert [(e["kind"], e["balance_pence"]) for e in statement["entries"]] == [("invoice", 120000),
                                                                                   ("payment", 70000)]
        assert statement["balance_pence"] == 70000

    def test_sustainability_as_of_a_past_date_and_its_debt_trend(self, ledger):
        _a_year_of_debt(ledger)
        past = ledger.report("sustainability", ledger_date("2026-11-15"))
        assert past["revenue_pence"] == {"2026/27": {"school_improvement": 100000}}  # no credit note, no GOV yet
        assert past["paying_members"] == {"2026/27": 1}
        assert past["debt_pence"]["total"] == 120000
        assert past["debt_trend"] == {"academic_year": "2026/27", "month_ends": [
            {"as_of": "2026-09-30", "current": 120000, "1_30": 0, "31_60": 0, "61_90": 0, "over_90": 0,
             "total": 120000},
            {"as_of": "2026-10-31", "current": 0, "1_30": 120000, "31_60": 0, "61_90": 0, "over_90": 0,
             "total": 120000}]}
        # the metrics' gauges: everything in the books, debt aged on the day
        books = ledger.report("sustainability", ledger_date("2026-11-15"), known_by=ledger_date("9999-12-31"))
        assert books["revenue_pence"] == {"2026/27": {"governance": 7397, "school_improvement": 100000 - 24658}}
        assert books["debt_pence"]["total"] == 120000 - 50000 - 29590 + 7397
        later = ledger.report("sustainability", ledger_date("2027-02-28"))
        assert later["revenue_pence"] == {"2026/27": {"governance": 7397, "school_improvement": 100000 - 24658}}
        assert [(p["as_of"], p["total"]) for p in later["debt_trend"]["month_ends"]] == [
            ("2026-09-30", 120000), ("2026-10-31", 120000), ("2026-11-30", 120000), ("2026-12-31", 70000),
            ("2027-01-31", 70000 - 29590 + 7397), ("2027-02-28", 47807)]
        assert later["debt_trend"]["month_ends"][-1]["over_90"] == 40410

    def test_members_as_of_a_date_count_only_those_who_had_joined(self, ledger):
        ledger.join("110001", joined_on="2026-04-01")
        ledger.join("110002", joined_on="2027-01-10")
        assert ledger.report("sustainability", ledger_date("2026-12-01"))["members"] == 1
        assert ledger.report("sustainability", ledger_date("2027-02-01"))["members"] == 2


class TestBuyBackThroughLineage:
    def test_a_converted_school_is_a_kept_buyer_and_the_figure_is_the_catalogues(self, ledger):
        for urn in ("110001", "110002", "110003"):
            ledger.join(urn)
        first = ledger.buy("110001", purchased_on="2026-03-01")
        ledger.convert("110001", "149001", "Wing Academy", TRUST, "2027-01-01")
        ledger.end(first, "2027-01-01", "converted")
        ledger.buy("149001", price=365000, start="2027-01-01", end="2027-03-31", mat=TRUST,
                   continues=first["subscription_id"], purchased_on="2027-01-01")
        ledger.buy("149001", start="2027-09-01", end="2028-08-31", mat=TRUST, purchased_on="2027-06-01")
        kept = ledger.buy("110002", purchased_on="2026-03-01")
        ledger.renew(kept, purchased_on="2027-03-01")
        ledger.buy("110003", purchased_on="2026-03-01")
        picture = ledger.report("sustainability", ledger_date("2027-09-30"))
        # held 2026: 149001 (as 110001), 110002, 110003; held 2027: 149001, 110002
        assert picture["buy_back"] == {"2027/28": {"bought_last_year": 3, "bought_again": 2, "rate": "0.6667"}}
        assert picture["buy_back_by_service_area"] == [
            {"service_area": "school_improvement", "year": 2027, "eligible": 3, "renewing": 2,
             "buy_back_rate": "0.6667"}]
        # as of 1 February 2027 neither the renewal (bought 1 March) nor the academy's year (June) was known
        assert ledger.report("sustainability", ledger_date("2027-02-01"))["buy_back"] == {}

    def test_a_renewal_undone_before_it_began_is_not_bought_back(self, ledger):
        ledger.join("110001")
        sla = ledger.buy("110001", purchased_on="2026-03-01")
        renewal = ledger.renew(sla, purchased_on="2027-01-15")
        ledger.cancel(renewal, "2027-04-01", cancelled_on="2027-03-10")
        assert ledger.report("sustainability", ledger_date("2027-03-01"))["buy_back"]["2027/28"]["rate"] == "1.0000"
        assert ledger.report("sustainability", ledger_date("2027-04-30"))["buy_back"]["2027/28"]["rate"] == "0.0000"


def ledger_date(text):
    import datetime as dt

    return dt.date.fromisoformat(text)
