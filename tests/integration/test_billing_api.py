"""Billing's HTTP API on its real process, broker and both databases: corrections are credit + re-bill
(the issued invoice never changes), a new operator numbers in its own series, and bad input gets a clear
4xx naming the field and the rule, with nothing written."""
from __future__ import annotations

import json
import urllib.error
import urllib.request

from tests import tokens
from tests.conftest import billing_run, eventually, http_json
from tests.integration.billing_upstream import EventTap, Upstream

SI = ("SI-CORE", "School improvement core offer", "school_improvement", "standard")


def raw_post(url: str, data: bytes) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=data, method="POST", headers={
        "Content-Type": "application/json", **tokens.bearer(tokens.trust_staff())})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def invoiced_school(stack, amqp_uri, urn="110021", price=100000, period="2026/27", issue="2026-09-01"):
    billing = stack.url("billing")
    up = Upstream(amqp_uri)
    up.member_joined(urn, f"School {urn}")
    up.subscription_started(up.sla(urn, f"School {urn}", SI, price, "2026-04-01", "2027-03-31"))
    eventually(lambda: http_json("GET", f"{billing}/charges?urn={urn}&status=uninvoiced")[1]["count"] == 1,
               message="the charge")
    run = billing_run(billing, {"period": period, "issue_date": issue})
    assert run["rerun"] is False, run
    return run


class TestCorrections:
    def test_a_correction_credits_the_invoice_and_rebills_it_leaving_the_original_unchanged(
            self, stack_factory, databases, amqp_uri):
        stack = stack_factory(databases).start("billing")
        billing = stack.url("billing")
        tap = EventTap(amqp_uri)
        invoiced_school(stack, amqp_uri)
        original = http_json("GET", f"{billing}/invoices/BLT-000001")[1]
        assert (original["net_pence"], original["gross_pence"]) == (100000, 120000)

        status, body = http_json("POST", f"{billing}/invoices/BLT-000001/corrections", {
            "reason": "census figure was wrong", "issue_date": "2026-09-10",
            "lines": [{"line_no": 1, "net_pence": 80000}]})
        assert status == 201, body
        assert body == {"credit_note_number": "BLT-CN000001", "rebill_invoice_number": "BLT-000002"}
        after = http_json("GET", f"{billing}/invoices/BLT-000001")[1]
        assert {k: after[k] for k in ("net_pence", "vat_pence", "gross_pence", "lines")} == {
            k: original[k] for k in ("net_pence", "vat_pence", "gross_pence", "lines")}  # immutable
        assert after["balance_pence"] == 0 and after["credited_pence"] == 120000
        rebill = http_json("GET", f"{billing}/invoices/BLT-000002")[1]
        assert (rebill["net_pence"], rebill["vat_pence"], rebill["gross_pence"]) == (80000, 16000, 96000)
        note = http_json("GET", f"{billing}/invoices/BLT-CN000001")[1]
        assert note["credits_invoice_number"] == "BLT-000001" and note["reason"].startswith("correction")

        # refusals: each names its field and rule, and writes nothing
        status, body = http_json("POST", f"{billing}/invoices/BLT-000001/corrections", {
            "reason": "again", "issue_date": "2026-09-11", "lines": [{"line_no": 1, "net_pence": 1}]})
        assert status == 422 and body["field"] == "number"
        status, body = http_json("POST", f"{billing}/invoices/BLT-000002/corrections", {
            "reason": "no such line", "issue_date": "2026-09-11", "lines": [{"line_no": 7, "net_pence": 1}]})
        assert status == 422 and body["field"] == "lines"
        status, body = http_json("POST", f"{billing}/invoices/BLT-000002/corrections", {
            "reason": "negative", "issue_date": "2026-09-11", "lines": [{"line_no": 1, "net_pence": -5}]})
        assert status == 400 and "lines" in body["fields"]
        status, body = http_json("POST", f"{billing}/invoices/BLT-000404/corrections", {
            "reason": "unknown", "issue_date": "2026-09-11", "lines": [{"line_no": 1, "net_pence": 5}]})
        assert status == 404
        assert http_json("GET", f"{billing}/invoices/BLT-000404")[0] == 404
        status, body = raw_post(f"{billing}/payments", b"{not json")
        assert status == 400 and "_body" in body["fields"]
        status, body = http_json("POST", f"{billing}/payments", {"invoice_number": "BLT-000002", "amount_pence": 1.5,
                                                                 "received_on": "2026-09-12"})
        assert status == 400 and "amount_pence" in body["fields"]  # never a float
        status, body = http_json("POST", f"{billing}/payments", {"invoice_number": "BLT-000002", "amount_pence": 10,
                                                                 "received_on": "2026-09-12", "surprise": 1})
        assert status == 400 and "surprise" in body["fields"]
        status, body = http_json("POST", f"{billing}/billing-runs", {"period": "2026-27", "issue_date": "2026-09-01"})
        assert status == 422 and body["field"] == "period"
        status, body = http_json("POST", f"{billing}/billing-runs", {"period": "2026/27"})
        assert status == 400 and "issue_date" in body["fields"]
        assert http_json("GET", f"{billing}/payers/nobody/1/statement")[0] == 404
        assert http_json("GET", f"{billing}/invoices")[1]["count"] == 3
        assert http_json("GET", f"{billing}/payers/school/110021/statement")[1]["balance_pence"] == 96000

        eventually(lambda: tap.count("credit_note_issued") == 1 and tap.count("invoice_issued") == 2,
                   message="the correction's events on the broker")


class TestOperatorHandover:
    def test_a_new_operator_numbers_its_invoices_in_its_own_series_and_prints_its_identity(
            self, stack_factory, databases, amqp_uri):
        stack = stack_factory(databases).start("billing")
        invoiced_school(stack, amqp_uri, urn="110031")
        stack.extra_env.update({"OPERATOR_NAME": "buckinghamshire-council",
                                "OPERATOR_LEGAL_NAME": "Buckinghamshire Council",
                                "OPERATOR_VAT_NUMBER": "GB987654321", "OPERATOR_INVOICE_PREFIX": "BC-",
                                "OPERATOR_PAYMENT_TERMS_DAYS": "14"})
        stack.restart("billing")
        billing = stack.url("billing")
        up = Upstream(amqp_uri)
        up.subscription_started(up.sla("110031", "School 110031", SI, 100000, "2027-04-01", "2028-03-31"))
        eventually(lambda: http_json("GET", f"{billing}/charges?urn=110031&status=uninvoiced")[1]["count"] == 1,
                   message="the next year's charge")
        run = billing_run(billing, {"period": "2026/27", "issue_date": "2027-03-01"})
        assert not run["rerun"] and run["operator"] == "buckinghamshire-council" and run["invoices_issued"] == 1
        numbers = [d["number"] for d in http_json("GET", f"{billing}/invoices")[1]["documents"]]
        assert numbers == ["BLT-000001", "BC-000001"]
        council = http_json("GET", f"{billing}/invoices/BC-000001")[1]
        assert council["operator"]["legal_name"] == "Buckinghamshire Council"
        assert council["operator"]["vat_number"] == "GB987654321" and council["due_date"] == "2027-03-15"
        trust = http_json("GET", f"{billing}/invoices/BLT-000001")[1]
        assert trust["operator"]["legal_name"] == "Bucks Learning Trust"  # issued documents keep their issuer
        status, body = http_json("POST", f"{billing}/invoices/BLT-000001/corrections", {
            "reason": "not ours", "issue_date": "2027-03-02", "lines": [{"line_no": 1, "net_pence": 1}]})
        assert status == 422 and "bucks-learning-trust" in body["message"]
