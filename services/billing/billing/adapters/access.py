"""What the HTTP entrypoint's object-level checks need from billing's own tables: who owns an
invoice or credit note, and which MAT a school belonged to on a date (from membership's events)."""
from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from billing.adapters.tables import documents, member_affiliations, members


def mat_of(session, urn: str, on: dt.date) -> str | None:
    """The MAT the school belonged to on `on` (its standing from the latest date not after it)."""
    row = session.execute(
        sa.select(member_affiliations.c.mat_id)
        .where(member_affiliations.c.urn == urn, member_affiliations.c.effective_from <= on)
        .order_by(member_affiliations.c.effective_from.desc()).limit(1)).first()
    if row is not None:
        return row.mat_id
    row = session.execute(sa.select(members.c.mat_id).where(members.c.urn == urn)).first()
    return row.mat_id if row is not None else None


def document_owner(session, request, number: str) -> set[str]:
    """The payer (`school:<urn>` or `mat:<id>`) of the invoice or credit note numbered `number`."""
    return {row.payer_key for row in session.execute(
        sa.select(documents.c.payer_key).where(documents.c.number == number))}


def payer_owner(session, request, kind: str, payer_id: str) -> set[str]:
    return {f"{kind}:{payer_id}"} if kind in ("school", "mat") else set()
