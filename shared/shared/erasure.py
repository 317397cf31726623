"""Erasing a person from the plumbing a service keeps beside its own tables.

A person's erasure (membership's `contact_erased`, or membership's own erase use case) clears the
service's copies of their personal data in its domain tables; this module clears what the
messaging plumbing holds about them, in the same transaction:

- `outbox` rows, sent or not, whose body carries the person's id: in every object of the payload
  that is theirs (`contact_id`, or another person-id field, equal to theirs) names become
  `ERASED` and emails `None`, and any of their known values (name, email as held before the
  erasure) elsewhere in the payload, as a whole word in any string, becomes `ERASED`. The
  contact id stays: it is a pseudonymous key that every service's tombstone keeps, so that no later
  or replayed event brings the person back. A rewritten unsent row still validates against its
  schema (names stay strings, emails were already optional), so the relay publishes it as is.
- `inbox` rows hold only event ids, types and producers (no payload), so there is nothing of a
  person there to erase; `erase_person` checks that assumption rather than trusting it.
- `audit_log` rows of the person (they were the token's `contact_id`, or their contact id was the
  token's subject): `subject` becomes NULL; the row (what was done, when, with what outcome) stays.
- `idempotency_keys` (the stored answers to retried POSTs, kept without expiry): an answer that
  names the person is rewritten as an outbox payload is.

What stays in the broker (dead-letter queues, the event archive stream) is not a database's: see
`partnership-ops dead-letters --mentions` and docs/retention.md.
"""
from __future__ import annotations

import json
import re
from typing import Any, Iterable

import sqlalchemy as sa

#: What a blanked name reads (the services' own domain marker is the same text).
ERASED = "[erased]"
#: Keys holding a person's name in an event payload (blanked to `ERASED`).
NAME_FIELDS = frozenset({"display_name", "contact_name", "purchased_by_name", "person_name", "leader_name"})
#: Keys holding a person's email address (blanked to None).
EMAIL_FIELDS = frozenset({"email", "contact_email", "purchased_by_email"})
#: Keys whose value is a person's id: an object carrying one of these equal to the erased id is theirs.
PERSON_ID_FIELDS = frozenset({"contact_id", "person_id", "leader_id", "purchased_by"})


def redact_payload(value: Any, contact_id: str, known_values: Iterable[str] = ()) -> tuple[Any, bool]:
    """`value` with the person's personal fields blanked wherever it names them; and whether anything changed.

    An object names the person if one of its `PERSON_ID_FIELDS` equals `contact_id`: its name fields
    become `ERASED`, its email fields None. Elsewhere, each of `known_values` (their name or email as
    held before erasure) inside any string becomes `ERASED` (`redact_text`)."""
    known = {v for v in known_values if v}
    changed = False

    def walk(item):
        nonlocal changed
        if isinstance(item, dict):
            theirs = any(str(item.get(key)) == contact_id for key in PERSON_ID_FIELDS if key in item)
            out = {}
            for key, inner in item.items():
                if theirs and key in NAME_FIELDS and inner not in (None, ERASED):
                    out[key], changed = ERASED, True
                elif theirs and key in EMAIL_FIELDS and inner is not None:
                    out[key], changed = None, True
                else:
                    out[key] = walk(inner)
            return out
        if isinstance(item, list):
            return [walk(inner) for inner in item]
        if isinstance(item, str) and known:
            text, touched = redact_text(item, known)
            changed = changed or touched
            return text
        return item

    return walk(value), changed


def redact_text(text: str | None, names: Iterable[str]) -> tuple[str | None, bool]:
    """`text` with every occurrence of each of `names` (whole words, any case) replaced by `ERASED`.

    Free text can name a person in ways no store knows (a first name, a nickname): this removes the
    forms the service holds, which is what it can promise."""
    if not text:
        return text, False
    out = text
    for name in sorted({n.strip() for n in names if n and n.strip() and n.strip() != ERASED}, key=len, reverse=True):
        out = re.sub(rf"(?<!\w){re.escape(name)}(?!\w)", ERASED, out, flags=re.IGNORECASE)
    return out, out != text


def rewrite_outbox(session, outbox: sa.Table, contact_id: str, known_values: Iterable[str] = ()) -> int:
    """Rewrite every outbox row (sent or unsent) whose payload names the person; returns how many changed.

    Candidates are the rows whose body contains the person's id (a known value alone is not enough:
    another person may share a name); only the payload is rewritten, never the envelope (its event id,
    type, aggregate and sequence stay)."""
    known = [v for v in known_values if v]
    changed = 0
    candidates = sa.select(outbox.c.id, outbox.c.body).where(outbox.c.body.contains(contact_id, autoescape=True))
    for row in session.execute(candidates).all():
        envelope = json.loads(row.body)
        payload, touched = redact_payload(envelope.get("payload"), contact_id, known)
        if touched:
            envelope["payload"] = payload
            session.execute(outbox.update().where(outbox.c.id == row.id)
                            .values(body=json.dumps(envelope, separators=(",", ":"), sort_keys=True)))
            changed += 1
    return changed


def rewrite_stored_responses(session, idempotency_keys: sa.Table, contact_id: str,
                             known_values: Iterable[str] = ()) -> int:
    """Rewrite every stored answer to a retried request (`shared.idempotency`) that names the person, as
    `rewrite_outbox` does a payload; returns how many changed. A retry after the erasure is answered
    with the rewritten body: the person is no more named there than anywhere else."""
    known = [v for v in known_values if v]
    changed = 0
    candidates = sa.select(idempotency_keys.c.key, idempotency_keys.c.body).where(
        idempotency_keys.c.body.contains(contact_id, autoescape=True))
    for row in session.execute(candidates).all():
        try:
            body, touched = redact_payload(json.loads(row.body), contact_id, known)
            text = json.dumps(body) if touched else row.body
        except ValueError:
            text, touched = redact_text(row.body, known)
        if touched:
            session.execute(idempotency_keys.update().where(idempotency_keys.c.key == row.key).values(body=text))
            changed += 1
    return changed


def blank_audit_subject(session, audit_log: sa.Table, contact_id: str) -> int:
    """Blank `subject` on the person's audit rows (theirs by `contact_id`, or their id as the subject)."""
    theirs = audit_log.c.subject == contact_id
    if "contact_id" in audit_log.c:
        theirs = sa.or_(theirs, audit_log.c.contact_id == contact_id)
    return session.execute(audit_log.update().where(theirs, audit_log.c.subject.is_not(None))
                           .values(subject=None)).rowcount


def erase_person(session, *, contact_id: str, outbox: sa.Table, inbox: sa.Table, audit_log: sa.Table | None,
                 idempotency_keys: sa.Table | None = None, known_values: Iterable[str] = ()) -> dict[str, int]:
    """Erase the person from the outbox, inbox, audit trail and stored answers (see the module docstring),
    in `session`'s transaction; returns the counts changed per store."""
    payload_columns = {c.name for c in inbox.c} - {"event_id", "event_type", "producer", "handled_at"}
    if payload_columns:  # a future inbox that keeps bodies must be erased here too, not silently skipped
        raise AssertionError(f"inbox now holds {sorted(payload_columns)}: erase_person must clear them")
    known = list(known_values)
    return {"outbox": rewrite_outbox(session, outbox, contact_id, known),
            "audit_log": blank_audit_subject(session, audit_log, contact_id) if audit_log is not None else 0,
            "idempotency_keys": rewrite_stored_responses(session, idempotency_keys, contact_id, known)
            if idempotency_keys is not None else 0}
