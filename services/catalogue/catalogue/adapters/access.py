"""What the HTTP entrypoint's object-level checks need from the catalogue's own tables: the school an
SLA is for, and the MAT a school belongs to (the catalogue keeps a member's MAT as it stands now,
from membership's events)."""
from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from catalogue.adapters.tables import members, subscriptions


def mat_of(session, urn: str, on: dt.date) -> str | None:
    row = session.execute(sa.select(members.c.mat_id).where(members.c.urn == urn)).first()
    return row.mat_id if row is not None else None


def subscription_owner(session, request, subscription_id: str) -> set[str]:
    return {f"school:{row.urn}" for row in session.execute(
        sa.select(subscriptions.c.urn).where(subscriptions.c.id == subscription_id))}
