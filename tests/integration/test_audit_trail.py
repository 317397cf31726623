"""The audit trail (issue 15): every state-changing request and every refusal of access is a row in the
service's own `audit_log`, with who, what, when, outcome and correlation id; operations and finance read
it by object and by person, nobody else."""
from __future__ import annotations

import sqlalchemy as sa

from tests import factories, tokens
from tests.conftest import eventually, http_json


def test_changes_and_refusals_are_recorded_and_read_by_object_and_by_person(stack_factory, sqlite_databases):
    stack = stack_factory(sqlite_databases).start("membership")
    base = stack.url("membership")
    school, other = factories.school(), factories.school()
    assert http_json("POST", f"{base}/members", school, headers={"X-Correlation-ID": "corr-join-1"})[0] == 201
    assert http_json("POST", f"{base}/members", other)[0] == 201
    assert http_json("POST", f"{base}/members", school, token=None)[0] == 401
    head_of_other = tokens.school_staff(other["urn"])
    assert http_json("GET", f"{base}/members/{school['urn']}/contacts", token=head_of_other)[0] == 404
    assert http_json("GET", f"{base}/members", token=head_of_other)[0] == 403
    assert http_json("GET", f"{base}/members/{school['urn']}")[0] == 200  # a read: not recorded

    as_operations = tokens.token("ops-person", ["operations"])
    # appended after each answer, in its own green thread: read once all five are there
    eventually(lambda: len(http_json("GET", f"{base}/audit", token=as_operations)[1]["entries"]) >= 5,
               message="the audit trail's rows")
    status, found = http_json("GET", f"{base}/audit?object_id={school['urn']}", token=as_operations)
    assert status == 200, found
    assert [(e["method"], e["route"], e["status"], e["outcome"], e["subject"]) for e in found["entries"]] == [
        ("GET", "/members/<string:urn>/contacts", 404, "refused", f"test-head_teacher-{other['urn']}")]
    assert found["entries"][0]["organisation"] == f"school:{other['urn']}"

    status, by_person = http_json("GET", f"{base}/audit?subject=test-trust-staff", token=tokens.token("f", ["finance"]))
    assert status == 200
    joined = [e for e in by_person["entries"] if e["route"] == "/members" and e["status"] == 201]
    assert len(joined) == 2 and "corr-join-1" in {e["correlation_id"] for e in joined}
    assert all(e["method"] == "POST" and e["outcome"] == "done" for e in joined)

    engine = sa.create_engine(stack.database_urls["membership"])
    with engine.connect() as connection:
        rows = connection.execute(sa.text("SELECT method, route, status, subject FROM audit_log ORDER BY id")).all()
    engine.dispose()
    # reads that were answered (the member, the trail itself) are not recorded
    assert [(m, r, s) for m, r, s, _ in rows] == [
        ("POST", "/members", 201), ("POST", "/members", 201), ("POST", "/members", 401),
        ("GET", "/members/<string:urn>/contacts", 404), ("GET", "/members", 403)]
    assert rows[2][3] is None  # anonymous

    assert http_json("GET", f"{base}/audit?subject=x", token=head_of_other)[0] == 403
