"""Rule 13 (issue 14), the pure parts: the operator's identity outside development has no placeholder
defaults; who an invoice is addressed to (address, contact) and that an erased person is never named."""
from __future__ import annotations

import datetime as dt

from billing.domain import customers
from billing.domain.customers import ContactRole, Place

D = dt.date
def role(contact_id, role_name, active=True, since=D(2020, 9, 1), organisation="school:110001", email=None):
    return ContactRole(contact_id, organisation, role_name, f"Person {contact_id}", email, active, since)


class TestInvoiceContact:
    def test_a_school_invoice_is_for_its_business_manager_else_its_head_teacher(self):
        head, manager = role("c-head", "head_teacher"), role("c-bm", "business_manager")
        assert customers.invoice_contact("school", [head, manager], D(2026, 9, 1)).contact_id == "c-bm"
        assert customers.invoice_contact("school", [head], D(2026, 9, 1)).contact_id == "c-head"
        left = role("c-bm", "business_manager", active=False)
        assert customers.invoice_contact("school", [head, left], D(2026, 9, 1)).contact_id == "c-head"
        later = role("c-bm", "business_manager", since=D(2026, 10, 1))
        assert customers.invoice_contact("school", [head, later], D(2026, 9, 1)).contact_id == "c-head"
        assert customers.invoice_contact("school", [role("c-senco", "senco")], D(2026, 9, 1)) is None

    def test_a_mat_invoice_is_for_its_finance_contact_never_its_ceo(self):
        ceo = role("c-ceo", "ceo", organisation="mat:TR100")
        finance = role("c-fin", "finance_contact", organisation="mat:TR100", email="finance@trust.example")
        chosen = customers.invoice_contact("mat", [ceo, finance], D(2026, 9, 1))
        assert (chosen.contact_id, chosen.email, chosen.role) == ("c-fin", "finance@trust.example", "finance_contact")
        assert customers.invoice_contact("mat", [ceo], D(2026, 9, 1)) is None

    def test_no_role_change_brings_an_erased_person_back(self):
        assert not customers.role_change_applies(None, erased=True, effective_date=D(2027, 1, 1), sequence=99)
        recorded = role("c-bm", "business_manager")
        assert customers.role_change_applies(recorded, erased=False, effective_date=D(2027, 1, 1), sequence=None)
        assert not customers.role_change_applies(dataclass_with_version(recorded, 5), erased=False,
                                                 effective_date=D(2027, 1, 1), sequence=4)


def dataclass_with_version(recorded, version):
    import dataclasses

    return dataclasses.replace(recorded, version=version)


class TestCustomerAddress:
    PLACES = {"110001": Place("110001", "Wing School", "LU7 0NY", "Buckinghamshire"),
              "140007": Place("140007", "Juniper Academy", "HP19 8FF", "Buckinghamshire"),
              "140003": Place("140003", "Ash Academy", "HP5 1AA", "Buckinghamshire")}

    def test_a_school_is_addressed_with_what_membership_publishes_its_la_and_postcode(self):
        assert customers.customer_address("school", "110001", self.PLACES, ["110001"]) == "Buckinghamshire\nLU7 0NY"

    def test_a_mat_billed_centrally_is_addressed_care_of_its_lowest_urn_academy_on_the_invoice(self):
        assert customers.customer_address("mat", "TR100", self.PLACES, ["140007", "140003", "140007"]) == (
            "c/o Ash Academy\nBuckinghamshire\nHP5 1AA")
        assert customers.customer_address("mat", "TR100", self.PLACES, ["999999"]) == ""
