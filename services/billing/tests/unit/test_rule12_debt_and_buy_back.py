"""Rule 12 (issue 14), the pure parts: debt on a date counts only what was known that day; the debt
trend is aged debt at each month end of the academic year; buy-back is the catalogue's figure,
counted through lineage."""
from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from billing.domain import demand, invoicing
from billing.domain.periods import month_ends_of_academic_year

D = dt.date


class TestDebtOnADate:
    INVOICES = [("inv-1", D(2026, 9, 1), D(2026, 10, 1), 120000), ("inv-2", D(2027, 1, 4), D(2027, 2, 3), 30000)]
    SETTLED = {"inv-1": [(D(2026, 12, 1), 50000), (D(2027, 1, 4), 29590)]}

    def test_payments_and_credit_notes_after_the_date_are_not_subtracted(self):
        on_15_november = invoicing.balances_on(self.INVOICES, self.SETTLED, D(2026, 11, 15))
        assert on_15_november == [(D(2026, 10, 1), 120000)]  # not 120000 - 50000 - 29590

    def test_invoices_raised_after_the_date_are_not_counted(self):
        assert [b for _, b in invoicing.balances_on(self.INVOICES, self.SETTLED, D(2027, 1, 3))] == [70000]
        assert [b for _, b in invoicing.balances_on(self.INVOICES, self.SETTLED, D(2027, 1, 4))] == [40410, 30000]

    def test_the_trend_is_aged_debt_at_each_month_end_each_as_it_stood_then(self):
        ends = month_ends_of_academic_year(2026, D(2027, 2, 28))
        trend = invoicing.debt_trend(self.INVOICES, self.SETTLED, ends)
        assert [(p["as_of"], p["total"]) for p in trend] == [
            (D(2026, 9, 30), 120000), (D(2026, 10, 31), 120000), (D(2026, 11, 30), 120000),
            (D(2026, 12, 31), 70000), (D(2027, 1, 31), 70410), (D(2027, 2, 28), 70410)]
        assert [p["current"] for p in trend][:2] == [120000, 0]
        assert trend[2]["31_60"] == 120000 and trend[3]["over_90"] == 70000  # 91 days late
        assert (trend[5]["over_90"], trend[5]["1_30"]) == (40410, 30000)

    def test_month_ends_run_september_to_august_and_stop_at_the_date(self):
        assert month_ends_of_academic_year(2026, D(2027, 8, 31))[::11] == [D(2026, 9, 30), D(2027, 8, 31)]
        assert len(month_ends_of_academic_year(2026, D(2027, 8, 31))) == 12
        assert month_ends_of_academic_year(2027, D(2028, 2, 29))[-1] == D(2028, 2, 29)
        assert month_ends_of_academic_year(2026, D(2026, 9, 29)) == []

    @given(st.lists(st.tuples(st.integers(0, 400), st.integers(1, 10_000)), max_size=6), st.integers(0, 400))
    def test_a_later_date_never_knows_less_settlement(self, settlements, day):
        start = D(2026, 9, 1)
        settled = {"i": [(start + dt.timedelta(days=n), amount) for n, amount in settlements]}
        invoice = [("i", start, start + dt.timedelta(days=30), 50_000)]
        earlier = invoicing.balances_on(invoice, settled, start + dt.timedelta(days=day))
        later = invoicing.balances_on(invoice, settled, start + dt.timedelta(days=day + 1))
        assert later[0][1] <= earlier[0][1]


class TestBuyBackThroughLineage:
    def test_the_same_figures_as_the_catalogue_for_the_catalogues_own_example(self):
        # services/catalogue/tests/unit/test_lifecycle.py::TestBuyBack: governance 2027, 4 eligible, 3 renewing
        facts = {("A", "governance", 2026), ("B", "governance", 2026), ("C", "governance", 2026),
                 ("D", "governance", 2026), ("A", "governance", 2027), ("B", "governance", 2027),
                 ("C", "governance", 2027), ("E", "governance", 2027), ("A", "school_improvement", 2027)}
        assert [(r.service_area, r.year, r.eligible, r.renewing, r.rate) for r in demand.buy_back(facts)] == [
            ("governance", 2027, 4, 3, "0.7500")]
        assert [(r.year, r.eligible, r.renewing, r.rate) for r in demand.buy_back_overall(facts)] == [
            (2027, 4, 3, "0.7500")]

    def test_years_held_count_the_payers_year_start_inside_the_cover_as_the_catalogue_does(self):
        assert demand.years_held(D(2026, 4, 1), D(2029, 3, 31), "maintained") == [2026, 2027, 2028]
        assert demand.years_held(D(2026, 9, 1), D(2027, 8, 31), "academy") == [2026]
        assert demand.years_held(D(2026, 4, 1), D(2026, 3, 31), "maintained") == []
        assert demand.years_held(D(2027, 1, 1), D(2027, 3, 31), "academy") == []

    def test_a_converted_school_is_a_kept_buyer_not_a_lost_one_and_a_new_one(self):
        holdings = [
            demand.Holding("110001", "school_improvement", "maintained", D(2026, 4, 1), D(2026, 12, 31)),
            demand.Holding("149001", "school_improvement", "academy", D(2027, 1, 1), D(2027, 3, 31)),
            demand.Holding("149001", "school_improvement", "academy", D(2027, 9, 1), D(2028, 8, 31)),
        ]
        facts = demand.holdings_facts(holdings, {"110001": "149001"})
        assert [(r.year, r.eligible, r.renewing) for r in demand.buy_back_overall(facts)] == [(2027, 1, 1)]
        # without the lineage: one lost buyer (110001) and one new one (149001)
        unlinked = demand.holdings_facts(holdings, {})
        assert [(r.year, r.eligible, r.renewing) for r in demand.buy_back_overall(unlinked)] == [(2027, 1, 0)]

    def test_lineage_follows_every_conversion_and_survives_a_cycle(self):
        assert demand.lineage("A", {"A": "B", "B": "C"}) == "C"
        assert demand.lineage("A", {"A": "B", "B": "A"}) in ("A", "B")

    def test_an_sla_that_covered_nothing_holds_no_year(self):
        undone = demand.Holding("110002", "governance", "maintained", D(2027, 4, 1), D(2027, 3, 31))
        assert demand.holdings_facts([undone], {}) == set()

    def test_a_year_in_which_nobody_bought_again_is_shown_at_zero_once_it_has_begun(self):
        facts = {("A", "governance", 2026), ("B", "governance", 2026)}
        assert demand.buy_back(facts) == [] == demand.buy_back(facts, demand.current_year(D(2027, 3, 31)))
        year = demand.current_year(D(2027, 4, 1))
        assert [(r.year, r.eligible, r.renewing, r.rate) for r in demand.buy_back(facts, year)] == [
            (2027, 2, 0, "0.0000")]
        assert [(r.year, r.rate) for r in demand.buy_back_overall(facts, year)] == [(2027, "0.0000")]
