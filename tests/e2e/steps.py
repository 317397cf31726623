"""Steps shared by the cross-service scenarios: everything goes through the services' own HTTP
APIs (membership, catalogue, billing, scheduling as separate processes on the real broker), and
the event archive of each producer shows every event they publish."""
from __future__ import annotations

import sqlalchemy as sa

from tests import tokens
from tests.archive_tap import ArchiveTap
from tests.conftest import eventually, http_json

EXCHANGES = ("membership.events", "catalogue.events", "billing.events", "scheduling.events")


# Every event the four services publish, read from their archives (no observer queue is bound).
Observer = ArchiveTap


def rows(url: str, query: str, **params) -> list[dict]:
    """Read a service's own database directly (what it stored, not what its API chooses to show)."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            return [dict(r._mapping) for r in connection.execute(sa.text(query), params)]
    finally:
        engine.dispose()


def ok(expected: int, answer: tuple[int, dict]) -> dict:
    status, body = answer
    assert status == expected, (status, body)
    return body


def join(stack, school: dict) -> dict:
    body = ok(201, http_json("POST", f"{stack.url('membership')}/members", school))
    eventually(lambda: http_json("GET", f"{stack.url('catalogue')}/members/{school['urn']}")[0] == 200,
               message=f"catalogue learning of {school['urn']}")
    return body


def appoint(stack, urn: str, role: str = "head_teacher", name: str = "A. Head",
            effective_date: str = "2026-01-05") -> str:
    """Membership appoints a contact; returns its id once the catalogue knows it may buy."""
    body = ok(201, http_json("POST", f"{stack.url('membership')}/members/{urn}/contacts",
                             {"display_name": name, "role": role, "effective_date": effective_date}))
    contact_id = body["contact_id"]
    if body["may_commit_spending"]:
        eventually(lambda: contact_id in [b["contact_id"] for b in http_json(
            "GET", f"{stack.url('catalogue')}/members/{urn}")[1].get("authorised_buyers", [])],
            message=f"catalogue learning that {role} {contact_id} may buy")
    return contact_id


def publish_offering(stack, offering: dict) -> dict:
    return ok(201, http_json("POST", f"{stack.url('catalogue')}/offerings", offering))


def buy(stack, urn: str, offering_code: str, contact_id: str, **extra) -> dict:
    """The contact (their own token: a purchase is made by the person) buys an SLA for their school."""
    return ok(201, http_json("POST", f"{stack.url('catalogue')}/subscriptions", {
        "urn": urn, "offering_code": offering_code, "edition_year": 2026, **extra},
        token=tokens.contact(urn, contact_id)))


def charges(stack, **query) -> list[dict]:
    qs = "&".join(f"{k}={v}" for k, v in query.items())
    return http_json("GET", f"{stack.url('billing')}/charges?{qs}")[1]["charges"]


def offering(code: str, name: str, service_area: str, vat: str, terms: dict, **extra) -> dict:
    """An offering with a 2026 edition, sold only whole unless `sold_whole=False` (see `tests.factories`)."""
    return {"code": code, "name": name, "service_area": service_area, "vat_treatment": vat,
            "edition": {"year": 2026, "terms": terms, **extra.pop("edition", {})}, **{"sold_whole": True, **extra}}
