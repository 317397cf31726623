"""What the HTTP entrypoint's object-level checks need from scheduling's own tables: the school that
hosts a peer review or made a booking, and the MAT a school belonged to on a date (membership's
events, kept dated in `school_mats`)."""
from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from scheduling.adapters.tables import bookings, peer_reviews, school_mats, schools


def mat_of(session, urn: str, on: dt.date) -> str | None:
    row = session.execute(
        sa.select(school_mats.c.mat_id)
        .where(school_mats.c.urn == urn, school_mats.c.effective_from <= on)
        .order_by(school_mats.c.effective_from.desc()).limit(1)).first()
    if row is not None:
        return row.mat_id
    row = session.execute(sa.select(schools.c.mat_id).where(schools.c.urn == urn)).first()
    return row.mat_id if row is not None else None


def review_owner(session, request, review_id: str) -> set[str]:
    return {f"school:{row.host_urn}" for row in session.execute(
        sa.select(peer_reviews.c.host_urn).where(peer_reviews.c.review_id == review_id))}


def booking_owner(session, request, booking_id: str) -> set[str]:
    return {f"school:{row.urn}" for row in session.execute(
        sa.select(bookings.c.urn).where(bookings.c.booking_id == booking_id))}
