"""A person's erasure, end to end on the real broker and real processes: membership blanks the person in
its outbox, and scheduling, on `contact_erased`, redacts the peer-review reports that name them and blanks
their subject in its audit trail (what each store keeps: docs/retention.md)."""
from __future__ import annotations

import json

import sqlalchemy as sa

from tests import factories, tokens
from tests.conftest import eventually, http_json


def _query(url, sql, **params):
    engine = sa.create_engine(url)
    try:
        with engine.begin() as connection:
            result = connection.execute(sa.text(sql), params)
            return result.all() if result.returns_rows else []
    finally:
        engine.dispose()


def test_erasure_reaches_the_outbox_the_audit_trail_and_the_reports_that_name_the_person(stack_factory,
                                                                                      sqlite_databases):
    stack = stack_factory(sqlite_databases).start("membership", "scheduling")
    members, scheduling = stack.url("membership"), stack.url("scheduling")
    school = factories.school()
    assert http_json("POST", f"{members}/members", school)[0] == 201
    status, head = http_json("POST", f"{members}/members/{school['urn']}/contacts", {
        "display_name": "Ada Lovelace", "email": "ada@example.org", "role": "head_teacher",
        "effective_date": school["joined_on"]})
    assert status == 201, head
    ada = head["contact_id"]
    scheduling_db, membership_db = stack.database_urls["scheduling"], stack.database_urls["membership"]
    eventually(lambda: _query(scheduling_db, "SELECT display_name FROM contacts WHERE contact_id = :c", c=ada)
               == [("Ada Lovelace",)], timeout=30, message="scheduling's copy of the head")
    # the head, as themself, tries something only schedulers may do: refused, and recorded with their id
    as_ada = tokens.contact(school["urn"], ada)
    assert http_json("POST", f"{scheduling}/courses", {"course_code": "X"}, token=as_ada)[0] == 403
    eventually(lambda: _query(scheduling_db, "SELECT subject FROM audit_log WHERE contact_id = :c", c=ada)
               == [(f"test-head_teacher-{school['urn']}",)], timeout=20, message="the refusal's audit row")
    # a report that names her (reports are filed by a review's lead; written here directly)
    _query(scheduling_db, "INSERT INTO peer_reviews (review_id, cycle, host_urn, dates, team, status, report) "
                          "VALUES ('r-1', 2026, :urn, '[]', '[]', 'reported', :report)",
           urn=school["urn"], report="Ada Lovelace showed us round; ada lovelace's plan is sound.")

    assert http_json("DELETE", f"{members}/contacts/{ada}")[0] == 200

    bodies = [body for (body,) in _query(membership_db, "SELECT body FROM outbox")]
    assert any(ada in body for body in bodies)  # the id stays: every tombstone is keyed on it
    assert not [body for body in bodies if "Ada Lovelace" in body or "ada@example.org" in body]
    eventually(lambda: _query(scheduling_db, "SELECT report FROM peer_reviews WHERE review_id = 'r-1'")
               == [("[erased] showed us round; [erased]'s plan is sound.",)], timeout=30,
               message="the report redacted on contact_erased")
    assert _query(scheduling_db, "SELECT subject, route, status FROM audit_log WHERE contact_id = :c", c=ada) == [
        (None, "/courses", 403)]
    assert _query(scheduling_db, "SELECT display_name, erased FROM contacts WHERE contact_id = :c", c=ada) == [
        (None, True)]
    assert not [b for (b,) in _query(scheduling_db, "SELECT body FROM outbox") if "Ada Lovelace" in json.dumps(b)]
