"""Every operation of every service's OpenAPI document, fuzzed against the running service (schemathesis).

Each service is started as in the other integration tests (real broker, its own database, the tests'
token issuer); its document is read from its own `GET /openapi.json`, and each operation is called
with requests schemathesis generates from it: valid ones (positive) and invalid ones (negative),
each with the token of one of several roles (trust staff, a school's head teacher, MAT staff, a
council officer). Every answer must be no 5xx, have a status, media type and body the document
declares for that operation, and (negative) refuse invalid data with a 4xx.

`FUZZ_EXAMPLES` (default 4) bounds the examples per operation and mode, so `make test` stays quick;
`make fuzz` runs many more, with new random examples each run (`FUZZ_RANDOM=1`).
"""
from __future__ import annotations

import json
import os
import time
import urllib.request

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings, strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from shared import auth
from tests import tokens
from tests.conftest import Databases

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "4"))
RANDOM = os.environ.get("FUZZ_RANDOM") == "1"
# PostgreSQL (as deployed) by default; FUZZ_BACKENDS=sqlite,postgresql for both.
BACKENDS = tuple(os.environ.get("FUZZ_BACKENDS", "postgresql").split(","))
SERVICES = ("membership", "catalogue", "billing", "scheduling")
URN, MAT, CONTACT = "100001", "MAT-1", "C-1"
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# Operations not fuzzed, and why.
SKIPPED = {
    ("POST", "/ops/quiesce"),  # stops the service's event consumers for good: nothing about input
}


ROLES = {"trust staff": auth.TRUST_STAFF, "head teacher": {auth.HEAD_TEACHER}, "MAT staff": {auth.MAT_STAFF_MEMBER},
         "council officer": {auth.COUNCIL_OFFICER}}


def role_tokens() -> dict[str, str]:
    return {
        "trust staff": tokens.trust_staff(),
        "head teacher": tokens.contact(URN, CONTACT),
        "MAT staff": tokens.mat_staff(MAT),
        "council officer": tokens.token("test-council", [auth.COUNCIL_OFFICER]),
    }


def callers(operation) -> list[str]:
    """The roles to call an operation as: three in four calls by a role it allows (`x-roles`), so
    most cases reach its validation; the rest by every role, allowed or not (403 as documented)."""
    allowed = set(operation.definition.raw.get("x-roles") or ())
    fitting = sorted(name for name, roles in ROLES.items() if not allowed or roles & allowed) or sorted(ROLES)
    return fitting * 3 + sorted(ROLES)


def load_document(base_url: str) -> dict:
    request = urllib.request.Request(f"{base_url}/openapi.json", headers=tokens.bearer(tokens.trust_staff()))
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
        return json.loads(response.read())


def fuzz_operation(operation, base_url: str, mode: GenerationMode, roles: dict[str, str]) -> list[str]:
    """Run one operation with at most EXAMPLES generated cases; the failures found (empty: none)."""
    failures: list[str] = []
    checks = CHECKS + ([negative_data_rejection] if mode == GenerationMode.NEGATIVE else [])

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=not RANDOM,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck),
              report_multiple_bugs=False)
    @given(case=operation.as_strategy(generation_mode=mode), role=st.sampled_from(callers(operation)))
    def run(case, role):
        headers = {**(case.headers or {}), **tokens.bearer(roles[role])}
        case.headers = headers
        response = case.call(base_url=base_url, timeout=15)
        try:
            case.validate_response(response, checks=checks, headers=headers)
        except (AssertionError, FailureGroup) as exc:  # each check's failure, collected and reported together
            found = "; ".join(getattr(e, "title", type(e).__name__) for e in getattr(exc, "exceptions", [exc]))
            failures.append(f"{operation.method.upper()} {operation.path} [{mode.value}, {role}] -> "
                            f"{response.status_code} {response.text[:300]!r}: {found}\n"
                            f"    {case.as_curl_command(headers={'Authorization': '<token>'})}")

    try:
        run()
    except Unsatisfiable:
        # negative: an operation with nothing to get wrong (no parameters, no body) has no invalid request
        assert mode == GenerationMode.NEGATIVE, f"{operation.method.upper()} {operation.path}: no valid request"
    return failures


@pytest.fixture(params=BACKENDS)
def fuzz_databases(request, tmp_path):
    databases = Databases(request.param, tmp_path)
    yield databases
    databases.drop_all()  # after the stack's processes stopped (stack_factory is set up later, torn down first)


@pytest.mark.timeout(900)
@pytest.mark.parametrize("service", SERVICES)
def test_every_operation_answers_as_documented_and_never_5xx(service, fuzz_databases, stack_factory):
    stack = stack_factory(fuzz_databases).start(service)
    base_url = stack.url(service).rstrip("/")
    document = load_document(base_url)
    schema = schemathesis.openapi.from_dict(document)
    roles = role_tokens()
    failures: list[str] = []
    fuzzed = 0
    started = time.monotonic()
    for result in schema.get_all_operations():
        operation = result.ok()
        if (operation.method.upper(), operation.path) in SKIPPED:
            continue
        fuzzed += 1
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            failures += fuzz_operation(operation, base_url, mode, roles)
    print(f"{service}: {fuzzed} operations, {EXAMPLES} examples each per mode, {time.monotonic() - started:.1f} s")
    assert fuzzed >= 5, f"{service}: only {fuzzed} operations in its document"
    assert not failures, (f"{len(failures)} failing cases:\n" + "\n".join(failures[:40])
                          + "\nthe service's errors:\n" + server_errors(stack.processes[service].log_path))


def server_errors(log_path) -> str:
    """The service log's unexpected errors (each with its traceback), to say what a 500 was."""
    found = []
    for line in log_path.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("level") == "ERROR":
            found.append(f"{entry.get('message')}\n{str(entry.get('exc_info', ''))[-1200:]}")
    return "\n".join(found[-10:])


def test_path_integers_out_of_bounds_are_refused_naming_the_field(stack_factory, sqlite_databases):
    """The fuzzer's first find: `PUT /calendars/LA/4187870280` was a 500 (no date has that year)."""
    from tests.conftest import http_json

    stack = stack_factory(sqlite_databases).start("scheduling")
    base_url = stack.url("scheduling").rstrip("/")
    periods = {"periods": [{"term": "autumn", "start": "2026-09-02", "end": "2026-12-18"}]}
    for year in (4187870280, 1999, 2101):
        status, body = http_json("PUT", f"{base_url}/calendars/BUCKS/{year}", periods)
        assert status == 400 and set(body["fields"]) == {"year"}, (year, body)
    # an <int:...> value no schema bounds: at most what a database integer holds
    status, body = http_json("GET", f"{base_url}/peer-review-cycles/{2**31}")
    assert status == 400 and body["fields"] == {"cycle": [f"at most {2**31 - 1}"]}, body
    status, body = http_json("GET", f"{base_url}/peer-review-cycles/{2**31 - 1}")
    assert status == 404, body
