"""Steps shared by the cross-service scenarios: everything goes through the services' own HTTP
APIs (membership, catalogue, billing, scheduling as separate processes on the real broker), and
an observer queue bound to the four exchanges sees every event they publish."""
from __future__ import annotations

import json
import uuid

import pika
import sqlalchemy as sa

from tests.conftest import eventually, http_json

EXCHANGES = ("membership.events", "catalogue.events", "billing.events", "scheduling.events")


class Observer:
    """A plain queue bound with `#` to every service's exchange: a copy of every event published."""

    def __init__(self, amqp_uri: str):
        self.amqp_uri = amqp_uri
        self.queue = f"e2e-observer-{uuid.uuid4().hex[:8]}"
        self.seen: list[dict] = []
        connection = pika.BlockingConnection(pika.URLParameters(amqp_uri))
        try:
            channel = connection.channel()
            channel.queue_declare(self.queue, durable=True)
            for exchange in EXCHANGES:
                channel.exchange_declare(exchange, "topic", durable=True)
                channel.queue_bind(self.queue, exchange, "#")
        finally:
            connection.close()

    def drain(self) -> list[dict]:
        """Every event seen so far (envelopes, with the exchange they came from)."""
        connection = pika.BlockingConnection(pika.URLParameters(self.amqp_uri))
        try:
            channel = connection.channel()
            while True:
                method, _, body = channel.basic_get(self.queue, auto_ack=True)
                if method is None:
                    break
                self.seen.append({"exchange": method.exchange, **json.loads(body)})
        finally:
            connection.close()
        return self.seen

    def of(self, event_type: str, **where) -> list[dict]:
        """Payloads of `event_type` seen so far whose top-level fields equal `where`."""
        return [e["payload"] for e in self.drain() if e["type"] == event_type
                and all(e["payload"].get(k) == v for k, v in where.items())]

    def wait_for(self, event_type: str, count: int = 1, timeout: float = 30.0, **where) -> list[dict]:
        return eventually(lambda: len(self.of(event_type, **where)) >= count and self.of(event_type, **where),
                          timeout=timeout, message=f"{count} x {event_type} {where or ''}")


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
    return ok(201, http_json("POST", f"{stack.url('catalogue')}/subscriptions", {
        "urn": urn, "offering_code": offering_code, "edition_year": 2026, "contact_id": contact_id, **extra}))


def charges(stack, **query) -> list[dict]:
    qs = "&".join(f"{k}={v}" for k, v in query.items())
    return http_json("GET", f"{stack.url('billing')}/charges?{qs}")[1]["charges"]


def offering(code: str, name: str, service_area: str, vat: str, terms: dict, **extra) -> dict:
    return {"code": code, "name": name, "service_area": service_area, "vat_treatment": vat,
            "edition": {"year": 2026, "terms": terms, **extra.pop("edition", {})}, **extra}
