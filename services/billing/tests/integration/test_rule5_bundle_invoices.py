"""Rule 5, billing's side (issue 14, interface A) on SQLite and PostgreSQL: a bundle SLA, as the catalogue
publishes it (`components` on subscription_started / subscription_renewed), is invoiced one line per
component with that component's VAT treatment; a credit of it is split the same way; revenue counts each
component in its own service area. `components` missing or empty: not a bundle."""
from __future__ import annotations

BUNDLE = ("BUNDLE-PRIMARY", "Primary bundle", "school_improvement", "standard")
COMPONENTS = [
    {"offering_code": "SI-CORE", "offering_name": "School improvement core offer",
     "service_area": "school_improvement", "vat_treatment": "standard",
     "entitlements": [{"kind": "in_house_session", "quantity": 2}], "annual_price_pence": 60000},
    {"offering_code": "GOV-TRAIN", "offering_name": "Governor training", "service_area": "governance",
     "vat_treatment": "exempt", "entitlements": [], "annual_price_pence": 25000},
    {"offering_code": "EY-SEND", "offering_name": "Early years SEND", "service_area": "early_years_and_inclusion",
     "vat_treatment": "zero", "entitlements": [], "annual_price_pence": 15000},
]


class TestBundleInvoice:
    def test_one_line_per_component_each_with_its_vat_and_a_credit_split_alike(self, ledger):
        ledger.join("110001")
        sla = ledger.buy("110001", BUNDLE, 100000, components=COMPONENTS, po_number="PO-77")
        ledger.run("2026/27 autumn", "2026-09-01", "termly")
        [invoice] = ledger.docs()
        view = ledger.view(invoice["number"])
        assert [(l["offering_code"], l["vat_code"], l["net_pence"], l["vat_pence"], l["po_number"])
                for l in view["lines"]] == [("SI-CORE", "S", 60000, 12000, "PO-77"),
                                            ("GOV-TRAIN", "E", 25000, 0, "PO-77"),
                                            ("EY-SEND", "Z", 15000, 0, "PO-77")]
        assert (view["net_pence"], view["vat_pence"], view["gross_pence"]) == (100000, 12000, 112000)
        assert [c["amount_pence"] for c in ledger.charges(urn="110001")] == [100000]  # one charge, three lines
        # cancelled from 1 January: 90 of 365 days = 24,658, split 14,795 / 6,164 / 3,699 (largest remainder)
        ledger.cancel(sla, "2027-01-01", cancelled_on="2026-12-01")
        ledger.run("2026/27 spring", "2027-01-04", "termly")
        [note] = ledger.docs(kind="credit_note")
        lines = ledger.view(note["number"])["lines"]
        assert [(l["vat_code"], l["net_pence"], l["vat_pence"]) for l in lines] == [
            ("S", 14795, 2959), ("E", 6164, 0), ("Z", 3699, 0)]
        assert (note["net_pence"], note["vat_pence"]) == (24658, 2959)
        picture = ledger.report("sustainability", _date("2027-01-31"))
        assert picture["revenue_pence"]["2026/27"] == {"early_years_and_inclusion": 15000 - 3699,
                                                      "governance": 25000 - 6164,
                                                      "school_improvement": 60000 - 14795}

    def test_a_renewed_bundle_and_a_late_one_are_split_too_and_nets_cancel_exactly(self, sqlite_ledger):
        ledger = sqlite_ledger
        ledger.join("110001")
        first = ledger.buy("110001", BUNDLE, 100000, "2027-01-01", "2027-03-31", components=COMPONENTS)
        ledger.renew(first, price=100000)
        renewal = ledger.charges(urn="110001")[-1]
        ledger.cancel({"subscription_id": renewal["subscription_id"], "urn": "110001"}, "2027-04-01")
        ledger.run("2026/27", "2027-04-01")
        [invoice] = ledger.docs()
        lines = ledger.view(invoice["number"])["lines"]
        # the late bundle (3 lines), the renewal (3) and its whole credit (3 negative lines, same split)
        assert len(lines) == 9 and invoice["net_pence"] == 24658
        by_component = {}
        for line in lines:
            by_component[line["offering_code"]] = by_component.get(line["offering_code"], 0) + line["net_pence"]
        assert by_component == {"SI-CORE": 14795, "GOV-TRAIN": 6164, "EY-SEND": 3699}
        assert sorted(l["net_pence"] for l in lines if l["net_pence"] < 0) == [-60000, -25000, -15000]

    def test_missing_or_empty_components_is_not_a_bundle(self, sqlite_ledger):
        ledger = sqlite_ledger
        ledger.join("110001")
        ledger.buy("110001", BUNDLE, 100000)  # no `components` at all (an older catalogue)
        ledger.buy("110001", BUNDLE, 50000, components=[])
        ledger.run()
        lines = ledger.view("BLT-000001")["lines"]
        assert sorted((l["offering_code"], l["net_pence"]) for l in lines) == [("BUNDLE-PRIMARY", 50000),
                                                                               ("BUNDLE-PRIMARY", 100000)]


def _date(text):
    import datetime as dt

    return dt.date.fromisoformat(text)
