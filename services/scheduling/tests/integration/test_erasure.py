"""`contact_erased` reaches what scheduling holds beside its contact copy (SQLite and PostgreSQL): the
peer-review reports that name the person, the outbox and the audit trail, in the erasure's transaction."""
from __future__ import annotations

import json

from sqlalchemy import insert, select

from scheduling.adapters import tables as t
from scheduling.domain.ordering import Position
from scheduling.messages.consumed import ContactErased, ContactRoleChanged
from scheduling.service_layer import handlers
from shared.messaging_tables import utcnow

URN = "330001"


def _person(store, contact_id, name):
    handlers.record_contact(store(), ContactRoleChanged().load({
        "contact_id": contact_id, "urn": URN, "display_name": name, "role": "head_teacher",
        "may_commit_spending": True, "active": True, "effective_date": "2026-01-05"}), Position(f"contact:{contact_id}", 1))


def _review(store, review_id, report):
    with store.database.transaction() as session:
        session.execute(insert(t.peer_reviews).values(review_id=review_id, cycle=2026, host_urn=URN, dates=[],
                                                      team=[], status="reported", report=report))
        session.commit()


def _erase(store, contact_id):
    handlers.erase_contact(store(), ContactErased().load({"contact_id": contact_id}), Position(f"contact:{contact_id}", 2))


def test_reports_naming_the_erased_person_are_redacted_and_others_untouched(store):
    _person(store, "c-ada", "Ada Lovelace")
    _person(store, "c-bob", "Bob Smith")
    _review(store, "r-1", "Led by Ada Lovelace; ADA LOVELACE met governors. Bob Smith took notes.")
    _review(store, "r-2", "Bob Smith led the review.")
    _review(store, "r-3", None)

    _erase(store, "c-ada")

    with store.database.reader() as session:
        reports = dict(session.execute(select(t.peer_reviews.c.review_id, t.peer_reviews.c.report)).all())
    assert reports == {"r-1": "Led by [erased]; [erased] met governors. Bob Smith took notes.",
                       "r-2": "Bob Smith led the review.", "r-3": None}


def test_outbox_bodies_and_audit_subjects_of_the_erased_person_are_blanked(store):
    _person(store, "c-ada", "Ada Lovelace")
    body = {"event_id": "e-1", "type": "x", "version": 1, "payload": {"leader_id": "c-ada", "leader_name": "Ada Lovelace",
                                                                      "email": "ada@example.org", "urn": URN}}
    with store.database.transaction() as session:
        session.execute(insert(t.outbox).values(event_id="e-1", event_type="x", version=1, aggregate="x",
                                                body=json.dumps(body), created_at=utcnow(), next_attempt_at=utcnow(),
                                                sent_at=utcnow()))
        session.execute(insert(t.audit_log).values(at=utcnow(), subject="idp|ada", contact_id="c-ada", method="POST",
                                                   route="/bookings", status=201, outcome="done"))
        session.commit()

    _erase(store, "c-ada")

    with store.database.reader() as session:
        stored = json.loads(session.execute(select(t.outbox.c.body).where(t.outbox.c.event_id == "e-1")).scalar())
        audit = session.execute(select(t.audit_log.c.subject, t.audit_log.c.contact_id, t.audit_log.c.route)).all()
    assert stored["payload"] == {"leader_id": "c-ada", "leader_name": "[erased]", "email": None, "urn": URN}
    assert [tuple(r) for r in audit] == [(None, "c-ada", "/bookings")]
