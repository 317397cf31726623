"""billing.domain.invoicing: lines, totals, numbering, aged debt, statements."""
import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing.domain.invoicing import (aged_debt, age_bucket, document_number, due_date, is_overdue, line_for,
                                      payment_status, statement, totals)
from billing.domain.model import Charge, Payer


def charge(amount, vat="standard", **kw):
    return Charge(id=kw.pop("id", "c1"), subscription_id="s", urn="110394", payer=Payer("school", "110394", "H"),
                  offering_code="SI", offering_name="School improvement", service_area="school_improvement",
                  period_start=dt.date(2026, 4, 1), period_end=dt.date(2027, 3, 31), amount_pence=amount,
                  vat_treatment=vat, census_date=dt.date(2025, 10, 2), number_on_roll=172, **kw)


class TestLines:
    def test_line_carries_net_vat_gross_and_the_census(self):
        line = line_for(charge(291900))
        assert (line.net_pence, line.vat_pence, line.gross_pence, line.vat_code) == (291900, 58380, 350280, "S")
        assert (line.census_date, line.number_on_roll) == (dt.date(2025, 10, 2), 172)

    def test_each_line_is_rounded_once_and_totals_are_sums_of_lines(self):
        lines = [line_for(charge(3, id=f"c{i}")) for i in range(3)]  # VAT 0.6 -> 1p each
        assert totals(lines).vat_pence == 3  # not round(1.8) = 2
        assert totals(lines).gross_pence == 12

    def test_a_credit_netted_on_the_same_invoice_is_a_negative_line(self):
        line = line_for(charge(90000), sign=-1)
        assert (line.net_pence, line.vat_pence) == (-90000, -18000)

    @given(st.lists(st.tuples(st.integers(0, 10**7), st.sampled_from(["standard", "zero", "exempt"])), max_size=30))
    def test_totals_are_exact_integer_sums(self, items):
        lines = [line_for(charge(a, v, id=str(i))) for i, (a, v) in enumerate(items)]
        t = totals(lines)
        assert t.net_pence == sum(a for a, _ in items)
        assert t.gross_pence == sum(line.gross_pence for line in lines) and type(t.gross_pence) is int


class TestNumbering:
    def test_invoice_and_credit_note_numbers_carry_the_operator_prefix(self):
        assert document_number("BLT-", "invoice", 7) == "BLT-000007"
        assert document_number("BLT-", "credit_note", 7) == "BLT-CN000007"

    def test_due_date_follows_payment_terms(self):
        assert due_date(dt.date(2026, 9, 1), 30) == dt.date(2026, 10, 1)


class TestAgedDebt:
    @pytest.mark.parametrize(("days_late", "bucket"), [
        (-5, "current"), (0, "current"), (1, "1_30"), (30, "1_30"), (31, "31_60"), (60, "31_60"),
        (61, "61_90"), (90, "61_90"), (91, "over_90")])
    def test_buckets(self, days_late, bucket):
        due = dt.date(2026, 10, 1)
        assert age_bucket(due, due + dt.timedelta(days=days_late)) == bucket

    def test_balances_are_summed_per_bucket_and_credits_are_not_debt(self):
        as_of = dt.date(2027, 1, 1)
        debt = aged_debt([(dt.date(2026, 12, 20), 100), (dt.date(2026, 10, 15), 250), (dt.date(2026, 9, 1), -40),
                          (dt.date(2027, 2, 1), 10)], as_of)
        assert debt == {"current": 10, "1_30": 100, "31_60": 0, "61_90": 250, "over_90": 0, "total": 360}

    def test_overdue_only_when_past_due_and_owing(self):
        due = dt.date(2026, 10, 1)
        assert is_overdue(due, 1, dt.date(2026, 10, 2))
        assert not is_overdue(due, 1, due) and not is_overdue(due, 0, dt.date(2027, 1, 1))

    @pytest.mark.parametrize(("gross", "balance", "status"), [
        (100, 100, "unpaid"), (100, 40, "part_paid"), (100, 0, "paid"), (100, -5, "overpaid")])
    def test_payment_status(self, gross, balance, status):
        assert payment_status(gross, balance) == status


class TestStatement:
    def test_running_balance_in_date_order(self):
        rows = statement([
            {"date": dt.date(2026, 10, 5), "kind": "payment", "reference": "P1", "amount_pence": -60},
            {"date": dt.date(2026, 9, 1), "kind": "invoice", "reference": "BLT-000001", "amount_pence": 100},
            {"date": dt.date(2026, 11, 1), "kind": "credit_note", "reference": "BLT-CN000001", "amount_pence": -10}])
        assert [(r["reference"], r["balance_pence"]) for r in rows] == [
            ("BLT-000001", 100), ("P1", 40), ("BLT-CN000001", 30)]
