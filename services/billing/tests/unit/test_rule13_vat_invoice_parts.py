"""Rule 13 (issue 14), the pure parts: the operator's identity outside development has no placeholder
defaults; who an invoice is addressed to (address, contact) and that an erased person is never named."""
from __future__ import annotations

import datetime as dt

import pytest

from billing.domain import customers
from billing.domain.customers import ContactRole, Place
from billing.operator_identity import ConfigurationError, operator_identity

D = dt.date
REAL = {"name": "buckinghamshire-council", "legal_name": "Buckinghamshire Council",
        "address": "The Gateway, Gatehouse Road, Aylesbury HP19 8FF", "vat_number": "GB 987 6543 21",
        "bank_account_name": "Buckinghamshire Council", "bank_sort_code": "40-11-62",
        "bank_account_number": "71234567", "invoice_prefix": "BC-", "payment_terms_days": 30}
EMPTY = {"name": "bucks-learning-trust", "legal_name": "", "address": "", "vat_number": "", "bank_account_name": "",
         "bank_sort_code": "", "bank_account_number": "", "invoice_prefix": "BLT-", "payment_terms_days": 30}


class TestOperatorIdentityOutsideDevelopment:
    def test_production_without_the_vat_number_address_and_bank_details_refuses_naming_each(self):
        with pytest.raises(ConfigurationError) as refused:
            operator_identity({"ENVIRONMENT": "production", "OPERATOR": EMPTY})
        message = str(refused.value)
        for variable in ("OPERATOR_LEGAL_NAME", "OPERATOR_ADDRESS", "OPERATOR_VAT_NUMBER",
                         "OPERATOR_BANK_ACCOUNT_NAME", "OPERATOR_BANK_SORT_CODE", "OPERATOR_BANK_ACCOUNT_NUMBER"):
            assert f"{variable} (OPERATOR." in message
        assert "'production'" in message and "PARTNERSHIP_ENV" in message

    def test_any_environment_but_development_is_held_to_the_same_rule(self):
        with pytest.raises(ConfigurationError, match="OPERATOR_VAT_NUMBER"):
            operator_identity({"ENVIRONMENT": "staging", "OPERATOR": {**REAL, "vat_number": None}})

    def test_the_development_placeholders_are_refused_outside_development(self):
        placeholders = {**REAL, "vat_number": "GB123456789", "bank_sort_code": "30-00-00",
                        "bank_account_number": "00012345"}
        with pytest.raises(ConfigurationError) as refused:
            operator_identity({"ENVIRONMENT": "production", "OPERATOR": placeholders})
        assert str(refused.value).count("development placeholder") == 3

    def test_production_with_every_setting_gives_the_operator_printed_on_invoices(self):
        operator = operator_identity({"ENVIRONMENT": "production", "OPERATOR": REAL})
        assert (operator.legal_name, operator.vat_number, operator.address) == (
            "Buckinghamshire Council", "GB987654321", REAL["address"])
        assert operator.bank_details == {"account_name": "Buckinghamshire Council", "sort_code": "40-11-62",
                                         "account_number": "71234567"}

    def test_development_fills_an_empty_setting_with_its_placeholder(self):
        operator = operator_identity({"OPERATOR": EMPTY})  # no ENVIRONMENT: development
        assert operator.vat_number == "GB123456789" and operator.bank_details["account_number"] == "00012345"

    def test_a_vat_number_or_account_of_the_wrong_shape_is_refused_in_any_environment(self):
        with pytest.raises(ConfigurationError, match="OPERATOR_VAT_NUMBER .*GB followed by 9 digits"):
            operator_identity({"ENVIRONMENT": "development", "OPERATOR": {**REAL, "vat_number": "123456789"}})
        with pytest.raises(ConfigurationError, match="OPERATOR_BANK_ACCOUNT_NUMBER .*eight digits"):
            operator_identity({"ENVIRONMENT": "production", "OPERATOR": {**REAL, "bank_account_number": "5349"}})


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
