"""Every HTTP route of every service, fed malformed input, answers a JSON 4xx, never a 500.

The routes are read off the service classes (nameko's `http` entrypoints), so a new
route is covered without being listed. Each gets bodies of the wrong shape (not
JSON, a list, an empty object, fields of the wrong type) and nonsense path and
query values; a refusal must be a 4xx whose JSON body says what was wrong. A few
routes legitimately accept some of these (a list ignoring an unknown filter, an
export answering its CSV); what is never allowed is a 5xx, or a refusal that is
not JSON or gives no reason.
"""
from __future__ import annotations

import inspect
import json
import re
import urllib.error
import urllib.request

from nameko.extensions import ENTRYPOINT_EXTENSIONS_ATTR
from nameko.web.handlers import HttpRequestHandler

import billing.entrypoints.service
import catalogue.entrypoints.service
import membership.entrypoints.service
import scheduling.entrypoints.service
from tests import tokens

SERVICE_CLASSES = {
    "membership": membership.entrypoints.service.MembershipService,
    "catalogue": catalogue.entrypoints.service.CatalogueService,
    "billing": billing.entrypoints.service.BillingService,
    "scheduling": scheduling.entrypoints.service.SchedulingService,
}
# Routes that are not about domain input.
SKIP = {"/health", "/ready", "/metrics"}
BAD_BODIES = [
    b"this is not json",
    b"[1, 2, 3]",
    b"{}",
    b'{"urn": 12, "effective_date": "yesterday", "amount_pence": 1.5, "year": "next", "code": null}',
    b'{"urn": "1234567", "effective_date": "2026-02-30", "amount_pence": -1, "currency": "EUR"}',
]
NONSENSE_PATH_VALUE = "not-a-thing"


def routes():
    for service, service_class in SERVICE_CLASSES.items():
        for _name, method in inspect.getmembers(service_class, inspect.isfunction):
            for entrypoint in getattr(method, ENTRYPOINT_EXTENSIONS_ATTR, ()):
                if isinstance(entrypoint, HttpRequestHandler) and entrypoint.url not in SKIP:
                    yield service, entrypoint.method.upper(), entrypoint.url


def concrete(url: str) -> str:
    """A path with every `<type:name>` placeholder replaced by a value that names nothing."""
    return re.sub(r"<(?:\w+:)?(\w+)>", lambda m: "999999" if "urn" in m.group(1) else NONSENSE_PATH_VALUE, url)


def send(method: str, url: str, body: bytes | None) -> tuple[int, bytes]:
    # As trust staff holding every trust role: this test is about input, not access (test_access_matrix).
    request = urllib.request.Request(url, data=body, method=method, headers={
        "Content-Type": "application/json", **tokens.bearer(tokens.trust_staff())})
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


ROUTES = sorted(set(routes()))


def test_every_service_has_routes_to_check():
    assert {service for service, _, _ in ROUTES} == set(SERVICE_CLASSES)


def test_malformed_input_to_any_route_is_a_json_client_error(stack_factory, sqlite_databases):
    stack = stack_factory(sqlite_databases).start()
    failures = []
    for service, method, url in ROUTES:
        path = concrete(url)
        bodies = BAD_BODIES if method in ("POST", "PUT", "PATCH") else [None]
        queries = [""] if method != "GET" else ["", "?on=someday&as_of=2026-13-01&year=abc&limit=-5&urn=x"]
        for body in bodies:
            for query in queries:
                status, raw = send(method, f"{stack.url(service)}{path}{query}", body)
                where = f"{service} {method} {path}{query} body={body!r}: {status}"
                if status < 400:
                    continue  # accepted (e.g. an export answers its CSV); only refusals must explain
                try:
                    answer = json.loads(raw) if raw else None
                except ValueError:
                    failures.append(f"{where} answered non-JSON {raw[:120]!r}")
                    continue
                if status >= 500:
                    failures.append(f"{where} {answer}")
                elif status >= 400 and not (isinstance(answer, dict) and (answer.get("message") or answer.get("error"))):
                    failures.append(f"{where} gave no reason: {answer}")
    assert not failures, "\n".join(failures)
    # and nothing above left a service broken
    for service in SERVICE_CLASSES:
        assert send("GET", f"{stack.url(service)}/ready", None)[0] == 200
