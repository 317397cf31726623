"""`contact_erased` reaches billing's outbox and audit trail, in the erasure's own transaction (SQLite and
PostgreSQL); the documents and roles it clears are rule 13's (test_rule13_vat_invoices.py)."""
import json

from sqlalchemy import select

from billing.adapters.tables import audit_log, outbox
from shared.messaging_tables import utcnow


def test_an_erasure_blanks_the_persons_outbox_copies_and_audit_subject_and_keeps_the_facts(ledger):
    ledger.organisation_contact("c-fin", "mat", "TR100", "finance_contact", "F. Nance", "finance@trust.example")
    ledger.organisation_contact("c-other", "mat", "TR101", "finance_contact", "O. Ther", "other@trust.example")
    # billing's own events name no person today; a body that does (an older version, a future field) is
    # rewritten all the same, sent or unsent
    for event_id, sent in (("e-sent", utcnow()), ("e-unsent", None)):
        body = {"event_id": event_id, "type": "x", "version": 1, "payload": {
            "contact": {"contact_id": "c-fin", "contact_name": "F. Nance", "contact_email": "finance@trust.example"},
            "note": "F. Nance", "payer": {"kind": "mat", "id": "TR100"}}}
        with ledger.database.transaction() as session:
            session.execute(outbox.insert().values(event_id=event_id, event_type="x", version=1, aggregate="x",
                                                   body=json.dumps(body), created_at=utcnow(),
                                                   next_attempt_at=utcnow(), sent_at=sent))
            session.commit()
    with ledger.database.transaction() as session:
        for contact_id, subject in (("c-fin", "idp|fin"), ("c-other", "idp|other"), (None, "c-fin")):
            session.execute(audit_log.insert().values(at=utcnow(), subject=subject, contact_id=contact_id,
                                                      method="POST", route="/payments", status=201, outcome="done"))
        session.commit()

    ledger.erase("c-fin")

    with ledger.database.reader() as session:
        stored = {r.event_id: json.loads(r.body)["payload"] for r in session.execute(
            select(outbox.c.event_id, outbox.c.body).where(outbox.c.event_id.in_(["e-sent", "e-unsent"])))}
        audit = session.execute(select(audit_log.c.contact_id, audit_log.c.subject, audit_log.c.route)
                                .order_by(audit_log.c.id)).all()
    expected = {"contact": {"contact_id": "c-fin", "contact_name": "[erased]", "contact_email": None},
                "note": "[erased]", "payer": {"kind": "mat", "id": "TR100"}}
    assert stored == {"e-sent": expected, "e-unsent": expected}
    assert [tuple(r) for r in audit] == [("c-fin", None, "/payments"), ("c-other", "idp|other", "/payments"),
                                         (None, None, "/payments")]
