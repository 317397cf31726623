"""What the HTTP entrypoint's object-level checks need from membership's own records: the MAT a
school belonged to on a date, replayed from its dated history."""
from __future__ import annotations

import datetime as dt

from membership.adapters import repository
from membership.domain import model


def mat_of(session, urn: str, on: dt.date) -> str | None:
    mat = model.mat_on(repository.history_of(session, urn), on)
    return mat.get("id") if isinstance(mat, dict) else None
