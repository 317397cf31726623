"""Reading a message as a CloudEvent with the official CloudEvents SDK for Python (`cloudevents`,
pinned in constraints.txt), as a consumer's CloudEvents tooling would: its AMQP protocol binding
(`cloudevents.core.bindings.amqp`) takes the `cloudEvents:` application properties, the content type
and the body, and builds a v1 `CloudEvent`, whose constructor validates every attribute (required
ones present and typed, `time` a timezone-aware timestamp, extension names lowercase alphanumeric)."""
from __future__ import annotations

from typing import Any, Mapping

from cloudevents.core.bindings import amqp as ce_amqp
from cloudevents.core.v1.event import CloudEvent


def read_with_sdk(content_type: str | None, headers: Mapping[str, Any], body: bytes) -> CloudEvent:
    """The CloudEvent the SDK reads from an AMQP message's content type, headers and body
    (raises the SDK's `CloudEventValidationError` if the attributes are not a valid CloudEvent)."""
    message = ce_amqp.AMQPMessage(properties={"content-type": content_type} if content_type else {},
                                  application_properties=dict(headers), application_data=body)
    return ce_amqp.from_amqp_event(message)
