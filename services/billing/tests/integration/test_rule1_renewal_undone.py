"""Rule 1, billing's side (issue 14, interface C): a renewal recorded early and then undone. The catalogue
publishes `subscription_cancelled` for the RENEWAL's subscription, effective from its period_start; billing
credits that renewal's whole charge: netted before it is invoiced, a credit note for all of it after, nothing
when the cancellation is consumed first. Through the service's own consumer methods, inbox included."""
from __future__ import annotations


def _renewed_early(ledger, years_end="2028-03-31"):
    ledger.join("110001")
    first = ledger.buy("110001", price=365000, purchased_on="2026-03-01")
    renewal = ledger.renew(first, price=372000, end=years_end, purchased_on="2027-01-11")
    return first, renewal


class TestRenewalUndone:
    def test_undone_before_invoicing_its_whole_charge_is_credited_and_nothing_is_billed(self, ledger):
        _, renewal = _renewed_early(ledger)
        ledger.run("2025/26", "2026-04-01")  # the first year, invoiced
        ledger.cancel(renewal, renewal["period_start"], cancelled_on="2027-03-10")
        renewal_charges = [c for c in ledger.charges(urn="110001") if c["period_start"] == "2027-04-01"]
        assert sorted((c["kind"], c["amount_pence"]) for c in renewal_charges) == [("charge", 372000),
                                                                                  ("credit", 372000)]
        result = ledger.run("2026/27", "2027-04-01")
        assert (result["invoices_issued"], result["credit_notes_issued"]) == (0, 0)
        assert {c["status"] for c in renewal_charges} <= {"uninvoiced"}
        assert {c["status"] for c in ledger.charges(urn="110001") if c["period_start"] == "2027-04-01"} == {"netted"}

    def test_undone_after_invoicing_a_credit_note_gives_back_the_whole_invoice(self, sqlite_ledger):
        ledger = sqlite_ledger
        _, renewal = _renewed_early(ledger)
        ledger.run("2026/27", "2027-04-01")  # the first year and the renewal, on one invoice
        [invoice] = ledger.docs(kind="invoice")
        assert invoice["net_pence"] == 365000 + 372000
        ledger.cancel(renewal, "2027-04-01", cancelled_on="2027-04-20")
        ledger.run("2027/28", "2027-09-01")
        [note] = ledger.docs(kind="credit_note")
        assert (note["net_pence"], note["vat_pence"], note["gross_pence"]) == (372000, 74400, 446400)
        assert ledger.view(note["number"])["credits_invoice_number"] == invoice["number"]

    def test_a_multi_year_renewal_undone_charges_none_of_its_later_years(self, sqlite_ledger):
        ledger = sqlite_ledger
        _, renewal = _renewed_early(ledger, years_end="2030-03-31")
        ledger.cancel(renewal, "2027-04-01", cancelled_on="2027-03-10")
        for period, issue in (("2026/27", "2027-04-01"), ("2027/28", "2027-09-01"), ("2028/29", "2028-09-01"),
                              ("2029/30", "2029-09-01")):
            ledger.run(period, issue)
        renewal_rows = [c for c in ledger.charges(urn="110001") if c["period_start"] >= "2027-04-01"]
        assert sorted((c["kind"], c["period_start"], c["amount_pence"]) for c in renewal_rows) == [
            ("charge", "2027-04-01", 372000), ("credit", "2027-04-01", 372000)]
        assert [d["net_pence"] for d in ledger.docs()] == [365000]  # only the year that was kept

    def test_the_cancellation_consumed_before_the_renewal_still_credits_all_of_it(self, sqlite_ledger):
        ledger = sqlite_ledger
        ledger.join("110001")
        first = ledger.buy("110001", price=365000)
        renewal = ledger.sla("110001", price=372000, start="2027-04-01", end="2028-03-31")
        renewal.update(continues_subscription_id=first["subscription_id"], renewal_of=first["subscription_id"])
        ledger.cancel(renewal, "2027-04-01", cancelled_on="2027-03-10")  # its own queue delivered it first
        ledger.deliver("subscription_renewed", renewal, "school:110001")
        ledger.run("2026/27", "2027-04-01")
        assert [d["net_pence"] for d in ledger.docs()] == [365000]
