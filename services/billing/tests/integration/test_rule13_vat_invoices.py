"""Rule 13 (issue 14) on SQLite and PostgreSQL: an invoice is a complete UK VAT invoice. It carries the
customer's name and address (a MAT's, c/o one of its academies, for central billing), the purchase order
given at purchase, the supplier's VAT number and address, the tax point, and the person it is for (a school's
business manager or head teacher, a MAT's finance contact), whose name goes when they are erased."""
from __future__ import annotations

import csv
import io

from billing.service_layer import reports

TRUST = {"id": "TR100", "name": "Chiltern Learning Trust"}


class TestSchoolInvoice:
    def test_the_invoice_shows_customer_address_purchase_order_tax_point_supplier_and_contact(self, ledger):
        ledger.join("110001", "Wing School", postcode="LU7 0NY")
        ledger.school_contact("c-head", "110001", "head_teacher", "A. Head")
        ledger.school_contact("c-bm", "110001", "business_manager", "B. Manager")
        ledger.buy("110001", price=100000, po_number="PO-4471")
        ledger.buy("110001", ("GOV-TRAIN", "Governor training", "governance", "exempt"), 60000)
        assert sorted(c["po_number"] or "" for c in ledger.charges(urn="110001")) == ["", "PO-4471"]
        ledger.run(issue="2026-09-01")
        view = ledger.view("BLT-000001")
        assert (view["payer_name"], view["customer_address"]) == ("Wing School", "Buckinghamshire\nLU7 0NY")
        assert (view["tax_point"], view["issue_date"]) == ("2026-09-01", "2026-09-01")
        assert (view["contact_id"], view["contact_name"]) == ("c-bm", "B. Manager")
        assert sorted((line["offering_code"], line["po_number"]) for line in view["lines"]) == [
            ("GOV-TRAIN", None), ("SI-CORE", "PO-4471")]
        assert (view["operator"]["vat_number"], view["operator"]["address"]) == (
            "GB123456789", "County Hall, Walton Street, Aylesbury HP20 1UA")
        page = reports.document_html(view)
        for shown in ("Wing School", "LU7 0NY", "Tax point: 2026-09-01", "For the attention of B. Manager",
                      "Your order number: PO-4471", "your order PO-4471", "VAT registration number: GB123456789",
                      "County Hall, Walton Street"):
            assert shown in page, shown

    def test_the_invoice_export_carries_the_new_fields(self, ledger):
        ledger.join("110001", "Wing School", postcode="LU7 0NY")
        ledger.school_contact("c-head", "110001", "head_teacher", "A. Head")
        ledger.buy("110001", price=100000, po_number="PO-4471")
        ledger.run(issue="2026-09-01")
        [row] = list(csv.DictReader(io.StringIO(ledger.report("invoices_csv"))))
        assert {k: row[k] for k in ("number", "tax_point", "customer_address", "contact_name", "po_number",
                                    "supplier_vat_number", "supplier_address", "supplier_legal_name")} == {
            "number": "BLT-000001", "tax_point": "2026-09-01", "customer_address": "Buckinghamshire\nLU7 0NY",
            "contact_name": "A. Head", "po_number": "PO-4471", "supplier_vat_number": "GB123456789",
            "supplier_address": "County Hall, Walton Street, Aylesbury HP20 1UA",
            "supplier_legal_name": "Bucks Learning Trust"}

    def test_a_correction_keeps_the_purchase_order_and_addresses_the_same_customer(self, sqlite_ledger):
        ledger = sqlite_ledger
        ledger.join("110001", "Wing School", postcode="LU7 0NY")
        ledger.buy("110001", price=100000, po_number="PO-4471")
        ledger.run(issue="2026-09-01")
        ledger.correct("BLT-000001", {1: 80000}, "2026-09-08")
        for number in ("BLT-CN000001", "BLT-000002"):
            view = ledger.view(number)
            assert ([line["po_number"] for line in view["lines"]], view["customer_address"], view["tax_point"]) == (
                ["PO-4471"], "Buckinghamshire\nLU7 0NY", "2026-09-08")


class TestCentralMatInvoice:
    def test_a_mat_invoice_is_addressed_to_the_mat_care_of_an_academy_for_its_finance_contact(self, ledger):
        ledger.join("140007", "Juniper Academy", mat=TRUST, postcode="HP19 8FF")
        ledger.join("140003", "Ash Academy", mat=TRUST, postcode="HP5 1AA")
        ledger.organisation_contact("c-ceo", "mat", "TR100", "ceo", "C. Executive", "ceo@trust.example")
        ledger.organisation_contact("c-fin", "mat", "TR100", "finance_contact", "F. Nance", "finance@trust.example")
        ledger.school_contact("c-head7", "140007", "head_teacher", "J. Head")  # not the MAT's invoice contact
        for urn in ("140007", "140003"):
            ledger.buy(urn, start="2026-09-01", end="2027-08-31", mat=TRUST, po_number=f"PO-{urn}")
        ledger.run(issue="2026-09-01")
        [invoice] = ledger.docs()
        view = ledger.view(invoice["number"])
        assert (view["payer_kind"], view["payer_name"]) == ("mat", "Chiltern Learning Trust")
        assert view["customer_address"] == "c/o Ash Academy\nBuckinghamshire\nHP5 1AA"
        assert (view["contact_name"], view["contact_email"]) == ("F. Nance", "finance@trust.example")
        page = reports.document_html(view)
        assert "Your order numbers: PO-140003, PO-140007" in page and "finance@trust.example" in page

    def test_a_finance_contact_who_left_is_not_named_and_an_erased_one_is_never_named_again(self, ledger):
        ledger.join("140007", "Juniper Academy", mat=TRUST)
        ledger.organisation_contact("c-fin", "mat", "TR100", "finance_contact", "F. Nance", "finance@trust.example")
        ledger.buy("140007", start="2026-09-01", end="2027-08-31", mat=TRUST)
        ledger.run("2026/27 autumn", "2026-09-01", "termly")
        assert ledger.view("BLT-000001")["contact_name"] == "F. Nance"
        ledger.erase("c-fin")
        erased = ledger.view("BLT-000001")
        assert (erased["contact_id"], erased["contact_name"], erased["contact_email"]) == (None, "(erased)", None)
        assert (erased["gross_pence"], erased["number"], len(erased["lines"])) == (438000, "BLT-000001", 1)
        # a role change of the erased person arriving late changes nothing
        ledger.organisation_contact("c-fin", "mat", "TR100", "finance_contact", "F. Nance", "finance@trust.example",
                                    effective_date="2026-12-01")
        ledger.organisation_contact("c-fin2", "mat", "TR100", "finance_contact", "G. Other",
                                    effective_date="2026-10-01", active=False)
        ledger.buy("140007", ("GOV-TRAIN", "Governor training", "governance", "exempt"), 60000,
                   "2027-01-01", "2027-08-31", mat=TRUST)
        ledger.run("2026/27 spring", "2027-01-04", "termly")
        assert ledger.view("BLT-000002")["contact_name"] is None
