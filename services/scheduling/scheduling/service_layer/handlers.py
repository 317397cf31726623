"""Scheduling use cases: each takes a unit of work and an event payload."""
from __future__ import annotations

from scheduling.adapters import repository
from scheduling.domain import model


def record_member_joined(uow, payload: dict) -> None:
    with uow:
        mat = payload.get("mat")
        repository.upsert_school(uow.session, {"urn": payload["urn"], "name": payload["name"],
                                               "phase": payload["phase"], "mat_id": mat["id"] if mat else None,
                                               "postcode": payload["postcode"], "active": True})
        uow.commit()


def record_eligibility(uow, payload: dict) -> model.Eligibility:
    with uow:
        item = model.eligibility_from_subscription(payload)
        repository.add_eligibility(uow.session, item)
        uow.commit()
    return item
