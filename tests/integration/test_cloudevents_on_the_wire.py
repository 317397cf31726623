"""A message membership published, taken off the real broker, read by the official CloudEvents SDK for
Python through its AMQP binding: the same id, type, source, time, subject and data as the envelope,
and the project's own headers and properties still there for the consumers that read them."""
from __future__ import annotations

import datetime as dt
import json

from partnership_ops import event_archive
from tests import factories
from tests.cloudevents_sdk import read_with_sdk
from tests.conftest import eventually, http_json


def test_a_published_event_is_a_cloudevent_the_sdk_reads(stack_factory, sqlite_databases):
    stack = stack_factory(sqlite_databases).start("membership")
    school = factories.school()
    status, body = http_json("POST", f"{stack.url('membership')}/members", school,
                             headers={"X-Correlation-ID": "req-cloudevents-1"})
    assert status == 201, body

    def joined():
        for message in event_archive.read(stack.amqp_uri, "membership", idle_seconds=0.5):
            envelope = json.loads(message.body)
            if envelope["type"] == "member_joined" and envelope["payload"]["urn"] == school["urn"]:
                return message, envelope
        return None

    message, envelope = eventually(joined, timeout=30, message="member_joined in membership's archive")
    properties = message.properties
    event = read_with_sdk(properties.content_type, properties.headers, message.body)

    assert event.get_id() == envelope["event_id"] == properties.message_id
    assert event.get_type() == "uk.org.partnership.membership.member_joined.v1"
    assert event.get_source() == f"/operators/{envelope['operator']}/services/membership"
    assert event.get_time() == dt.datetime.fromisoformat(envelope["occurred_at"].replace("Z", "+00:00"))
    assert event.get_data() == envelope
    assert event.get_subject() == envelope["aggregate"] == f"school:{school['urn']}"
    assert event.get_datacontenttype() == "application/json"
    assert event.get_extension("correlationid") == envelope["correlation_id"] == "req-cloudevents-1"
    assert event.get_extension("sequence") == envelope["sequence"]
    assert event.get_extension("operator") == envelope["operator"]
    # nothing a current consumer reads changed
    assert message.routing_key == "member_joined.v1"
    assert (properties.type, properties.correlation_id, properties.app_id) == (
        "member_joined", "req-cloudevents-1", "membership")
    assert properties.headers["x-event-id"] == envelope["event_id"]
    assert properties.headers["x-event-version"] == 1
    assert properties.headers["x-aggregate"] == envelope["aggregate"]
