"""Upstream events for billing's integration tests, as membership, catalogue and scheduling
publish them (docs/events.md): well-formed envelopes on `<service>.events`, routing key `<type>.v<version>`."""
from __future__ import annotations

import json
import uuid

import pika

from shared.envelope import Envelope
from tests.archive_tap import ArchiveTap


def publish(amqp_uri: str, producer: str, event_type: str, payload: dict, *, event_id: str | None = None) -> str:
    envelope = Envelope.new(type=event_type, payload=payload, producer=producer, operator="bucks-learning-trust")
    body = envelope.to_dict()
    if event_id:
        body["event_id"] = event_id
    properties = envelope.amqp_properties()
    headers = properties.pop("application_headers")
    headers["x-event-id"] = body["event_id"]
    properties["message_id"] = body["event_id"]
    connection = pika.BlockingConnection(pika.URLParameters(amqp_uri))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        channel.basic_publish(f"{producer}.events", envelope.routing_key, json.dumps(body).encode(),
                              pika.BasicProperties(headers=headers, **properties), mandatory=True)
    finally:
        connection.close()
    return body["event_id"]


class Upstream:
    """Publishes what the other three services would, with realistic defaults."""

    def __init__(self, amqp_uri: str):
        self.amqp_uri = amqp_uri

    def member_joined(self, urn: str, name: str, *, mat: dict | None = None, joined_on: str = "2020-09-01",
                      **overrides) -> str:
        payload = {"urn": urn, "dfe_number": f"825/{urn[-4:]}", "name": name, "kind": "school",
                   "establishment_type": "academy_converter" if mat else "community", "phase": "primary",
                   "is_academy": mat is not None, "mat": mat, "local_authority": "Buckinghamshire",
                   "postcode": "HP19 8FF", "number_on_roll": 210, "census_date": "2025-10-02", "joined_on": joined_on}
        payload.update(overrides)
        return publish(self.amqp_uri, "membership", "member_joined", payload)

    def member_left(self, urn: str, name: str, effective_date: str, reason: str = "resigned") -> str:
        return publish(self.amqp_uri, "membership", "member_left",
                       {"urn": urn, "name": name, "effective_date": effective_date, "reason": reason})

    def school_converted(self, old_urn: str, old_name: str, new_urn: str, new_name: str, mat: dict, day: str) -> str:
        return publish(self.amqp_uri, "membership", "school_converted_to_academy", {
            "conversion_date": day, "predecessor": {"urn": old_urn, "dfe_number": f"825/{old_urn[-4:]}", "name": old_name},
            "successor": {"urn": new_urn, "dfe_number": f"825/{new_urn[-4:]}", "name": new_name,
                          "establishment_type": "academy_converter", "phase": "primary",
                          "local_authority": "Buckinghamshire", "postcode": "HP19 8FF", "number_on_roll": 210,
                          "census_date": "2025-10-02"},
            "mat": mat})

    @staticmethod
    def sla(urn: str, name: str, offering: tuple[str, str, str, str], price: int, start: str, end: str, *,
            mat: dict | None = None, subscription_id: str | None = None, continues: str | None = None) -> dict:
        code, offering_name, area, vat = offering
        return {"subscription_id": subscription_id or str(uuid.uuid4()), "urn": urn, "school_name": name,
                "is_academy": mat is not None, "mat": mat, "payer_type": "academy" if mat else "maintained",
                "offering_code": code, "offering_name": offering_name, "service_area": area, "vat_treatment": vat,
                "edition_year": int(start[:4]), "period_start": start, "period_end": end, "years": 1, "quantity": 1,
                "annual_price_pence": price, "price_breakdown": [], "census": {"date": "2025-10-02", "number_on_roll": 210},
                "po_number": None, "purchased_on": start, "entitlements": [], "continues_subscription_id": continues}

    def subscription_started(self, sla: dict, *, event_id: str | None = None) -> str:
        return publish(self.amqp_uri, "catalogue", "subscription_started", sla, event_id=event_id)

    def subscription_renewed(self, sla: dict, renewal_of: str) -> str:
        return publish(self.amqp_uri, "catalogue", "subscription_renewed",
                       {**sla, "continues_subscription_id": renewal_of, "renewal_of": renewal_of})

    def subscription_cancelled(self, subscription_id: str, urn: str, cancelled_on: str, effective_date: str) -> str:
        return publish(self.amqp_uri, "catalogue", "subscription_cancelled", {
            "subscription_id": subscription_id, "urn": urn, "cancelled_on": cancelled_on,
            "effective_date": effective_date, "reason": "no longer needed"})

    def subscription_ended(self, subscription_id: str, urn: str, effective_date: str, reason: str) -> str:
        return publish(self.amqp_uri, "catalogue", "subscription_ended", {
            "subscription_id": subscription_id, "urn": urn, "effective_date": effective_date, "reason": reason})

    def attendance_recorded(self, urn: str, session_date: str, *, chargeable: bool, price: int,
                            course_code: str = "SENCO-NET", service_area: str = "inclusion",
                            vat: str = "exempt") -> str:
        return publish(self.amqp_uri, "scheduling", "attendance_recorded", {
            "attendance_id": str(uuid.uuid4()), "booking_id": str(uuid.uuid4()), "session_id": str(uuid.uuid4()),
            "course_code": course_code, "offering_code": None, "service_area": service_area, "urn": urn,
            "contact_id": str(uuid.uuid4()), "session_date": session_date, "attended": True, "chargeable": chargeable,
            "price_basis": "non_subscriber" if chargeable else "free", "unit_price_pence": price if chargeable else 0,
            "vat_treatment": vat})


def EventTap(amqp_uri: str) -> ArchiveTap:
    """Everything billing publishes during a test, read from its event archive."""
    return ArchiveTap(amqp_uri, ["billing"])
