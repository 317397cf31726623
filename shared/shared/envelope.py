"""The one envelope every event travels in, on the wire and in the outbox.

An envelope is JSON: `event_id` (UUID), `type` (past-tense snake_case),
`version` (schema version of the payload), `occurred_at` (UTC, ISO 8601),
`producer` (service), `operator` (organisation running the producer),
`correlation_id`, `causation_id`, `payload`, and (added in a compatible way:
`version` of existing events stays 1) `aggregate` and `sequence`: the identity
of the thing the event is about (`school:100000`, `contact:C-1`,
`payer:school:100000`) and that aggregate's strictly increasing number, given
by the producer in the same transaction as the change. A consumer compares
sequences of one aggregate to tell an older event from a newer one whatever
the delivery order. Events written before sequencing carry neither (None).

The same facts are copied into AMQP properties and headers (`message_id`,
`type`, `content_type`, `x-event-version`, `x-producer`, `x-operator`,
`x-correlation-id`, `x-causation-id`, `x-occurred-at`, `x-aggregate`,
`x-sequence`) so a consumer that is not nameko can route, de-duplicate and
order without parsing the body.

They are also carried as CloudEvents 1.0 attributes in the AMQP protocol binding's binary
content mode (application properties prefixed `cloudEvents:`; `datacontenttype` is the AMQP
`content_type` property, as the binding says), so tooling that reads CloudEvents understands
the message without knowing this envelope (`cloudevents_attributes`): `id` = `event_id`,
`source` = `/operators/<operator>/services/<producer>` (a URI reference naming who published
it), `type` = `uk.org.partnership.<producer>.<type>.v<version>` (reverse DNS; the version is
part of the type because a new version is a different payload), `specversion` 1.0, `time` =
`occurred_at`, `subject` = `aggregate`, and the extensions `correlationid`, `causationid`,
`operator`, `sequence`, `eventversion`. The data is the whole envelope body, unchanged.

The routing key is `<type>.v<version>` (`routing_key`): a consumer binds to the versions it
reads, so a v2 published beside v1 never reaches a v1 handler.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import uuid
from typing import Any, Mapping

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

from shared.bulk_payloads import BulkBuilder
from shared.topology import routing_key  # noqa: F401 - re-exported: the key an envelope is published with

CONTENT_TYPE = "application/json"
EVENT_TYPE_PATTERN = r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$"
CLOUDEVENTS_SPECVERSION = "1.0"
CLOUDEVENTS_PREFIX = "cloudEvents:"  # the AMQP binding's application-property prefix
CLOUDEVENTS_TYPE_NAMESPACE = "uk.org.partnership"


def cloudevents_source(operator: str, producer: str) -> str:
    """The CloudEvents `source` of what `producer` publishes when run by `operator` (a URI reference)."""
    return f"/operators/{operator}/services/{producer}"


def cloudevents_type(producer: str, event_type: str, version: int) -> str:
    """The CloudEvents `type`, reverse-DNS: `uk.org.partnership.membership.member_joined.v1`."""
    return f"{CLOUDEVENTS_TYPE_NAMESPACE}.{producer}.{event_type}.v{int(version)}"


def cloudevents_attributes(envelope: Mapping[str, Any]) -> dict[str, Any]:
    """The envelope's CloudEvents 1.0 context attributes (all but `datacontenttype`, which travels
    as the AMQP `content_type`); optional ones only when the envelope has a value for them."""
    attributes: dict[str, Any] = {
        "specversion": CLOUDEVENTS_SPECVERSION,
        "id": envelope["event_id"],
        "source": cloudevents_source(envelope["operator"], envelope["producer"]),
        "type": cloudevents_type(envelope["producer"], envelope["type"], envelope["version"]),
        "time": envelope["occurred_at"],
        "correlationid": envelope["correlation_id"],
        "operator": envelope["operator"],
        "eventversion": int(envelope["version"]),
    }
    if envelope.get("aggregate"):
        attributes["subject"] = envelope["aggregate"]
    if envelope.get("causation_id"):
        attributes["causationid"] = envelope["causation_id"]
    if envelope.get("sequence") is not None:
        attributes["sequence"] = int(envelope["sequence"])
    return attributes


def amqp_headers(envelope: Mapping[str, Any]) -> dict[str, Any]:
    """The envelope's facts as AMQP headers (everything but the payload): the `x-` headers, then the
    same facts as CloudEvents attributes (`cloudEvents:<attribute>`)."""
    return {
        "x-event-id": envelope["event_id"],
        "x-event-type": envelope["type"],
        "x-event-version": envelope["version"],
        "x-producer": envelope["producer"],
        "x-operator": envelope["operator"],
        "x-correlation-id": envelope["correlation_id"],
        "x-causation-id": envelope.get("causation_id") or "",
        "x-occurred-at": envelope["occurred_at"],
        **({"x-aggregate": envelope["aggregate"]} if envelope.get("aggregate") else {}),
        **({"x-sequence": envelope["sequence"]} if envelope.get("sequence") is not None else {}),
        **{CLOUDEVENTS_PREFIX + name: value for name, value in cloudevents_attributes(envelope).items()},
    }


def amqp_properties(envelope: Mapping[str, Any]) -> dict[str, Any]:
    """AMQP basic properties for an envelope (as a dict): persistent, identified, typed, with headers."""
    return {
        "message_id": envelope["event_id"],
        "type": envelope["type"],
        "content_type": CONTENT_TYPE,
        "content_encoding": "utf-8",
        "delivery_mode": 2,
        "app_id": envelope["producer"],
        "correlation_id": envelope["correlation_id"],
        "application_headers": amqp_headers(envelope),
    }


class EnvelopeSchema(Schema):
    """Strict schema of the envelope itself (the payload is checked by the event's own schema)."""

    class Meta:
        unknown = EXCLUDE

    event_id = fields.UUID(required=True)
    type = fields.String(required=True, validate=validate.Regexp(EVENT_TYPE_PATTERN))
    version = fields.Integer(required=True, strict=True, validate=validate.Range(min=1))
    occurred_at = fields.AwareDateTime(required=True, default_timezone=dt.timezone.utc)
    producer = fields.String(required=True, validate=validate.Length(min=1))
    operator = fields.String(required=True, validate=validate.Length(min=1))
    correlation_id = fields.String(required=True, validate=validate.Length(min=1))
    causation_id = fields.String(required=True, allow_none=True)
    payload = fields.Dict(required=True)
    aggregate = fields.String(load_default=None, allow_none=True, validate=validate.Length(min=1, max=200))
    sequence = fields.Integer(load_default=None, allow_none=True, strict=True, validate=validate.Range(min=1))


_ENVELOPE_SCHEMA = EnvelopeSchema()  # stateless; built once, not per received message

# What every producer here writes (`Envelope.to_dict`): a canonical UUID and an ISO 8601 UTC time.
_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_PLAIN_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})")
_TYPE = re.compile(EVENT_TYPE_PATTERN)


def _plainly_valid(data: Mapping[str, Any]) -> dict[str, Any] | None:
    """The envelope's fields if `data` has the plain shape every producer here writes, checked without
    marshmallow (which cost a consumer more per message than anything else but the broker's framing);
    None for anything else, which then goes through `EnvelopeSchema` (the same result for what both
    accept, and the schema's errors for what it refuses). Each check is as strict as the schema's or
    stricter: a canonical lowercase UUID, a `type` matching the whole pattern, an `int` version and
    sequence (not a bool), a time with seconds and an explicit offset, non-empty strings."""
    get = data.get
    event_id, type_, version, occurred_at = get("event_id"), get("type"), get("version"), get("occurred_at")
    producer, operator, correlation_id = get("producer"), get("operator"), get("correlation_id")
    causation_id, payload = get("causation_id", _MISSING), get("payload")
    aggregate, sequence = get("aggregate"), get("sequence")
    if not (type(event_id) is str and _CANONICAL_UUID.fullmatch(event_id)
            and type(type_) is str and _TYPE.fullmatch(type_) and "\n" not in type_
            and type(version) is int and version >= 1
            and type(occurred_at) is str and _PLAIN_TIME.fullmatch(occurred_at)
            and type(producer) is str and producer and type(operator) is str and operator
            and type(correlation_id) is str and correlation_id
            and (causation_id is None or type(causation_id) is str)
            and type(payload) is dict
            and (aggregate is None or (type(aggregate) is str and 1 <= len(aggregate) <= 200))
            and (sequence is None or (type(sequence) is int and sequence >= 1))):
        return None
    try:
        moment = dt.datetime.fromisoformat(occurred_at.replace("Z", "+00:00"))
    except ValueError:  # e.g. month 13: the schema says what is wrong
        return None
    return {"event_id": event_id, "type": type_, "version": version, "occurred_at": moment.astimezone(dt.timezone.utc),
            "producer": producer, "operator": operator, "correlation_id": correlation_id,
            "causation_id": causation_id, "payload": dict(payload), "aggregate": aggregate, "sequence": sequence}


_MISSING = object()


@dataclasses.dataclass(frozen=True)
class Envelope:
    """An event as produced or received; immutable."""

    event_id: str
    type: str
    version: int
    occurred_at: dt.datetime
    producer: str
    operator: str
    correlation_id: str
    causation_id: str | None
    payload: dict[str, Any]
    aggregate: str | None = None
    sequence: int | None = None

    @classmethod
    def new(
        cls,
        *,
        type: str,
        payload: Mapping[str, Any],
        producer: str,
        operator: str,
        version: int = 1,
        correlation_id: str | None = None,
        causation_id: str | None = None,
        occurred_at: dt.datetime | None = None,
        aggregate: str | None = None,
        sequence: int | None = None,
    ) -> "Envelope":
        """A new event with a fresh id; it starts its own correlation unless given one."""
        event_id = str(uuid.uuid4())
        return cls(
            event_id=event_id,
            type=type,
            version=version,
            occurred_at=(occurred_at or dt.datetime.now(dt.timezone.utc)).astimezone(dt.timezone.utc),
            producer=producer,
            operator=operator,
            correlation_id=correlation_id or event_id,
            causation_id=causation_id,
            payload=dict(payload),
            aggregate=aggregate,
            sequence=sequence,
        )

    def to_dict(self) -> dict[str, Any]:
        ordering = {"aggregate": self.aggregate, "sequence": self.sequence} if self.aggregate else {}
        return {
            "event_id": self.event_id,
            "type": self.type,
            "version": self.version,
            "occurred_at": self.occurred_at.isoformat().replace("+00:00", "Z"),
            "producer": self.producer,
            "operator": self.operator,
            "correlation_id": self.correlation_id,
            "causation_id": self.causation_id,
            "payload": self.payload,
            **ordering,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"), sort_keys=True)

    def amqp_properties(self) -> dict[str, Any]:
        return amqp_properties(self.to_dict())

    @property
    def routing_key(self) -> str:
        return routing_key(self.type, self.version)

    @classmethod
    def from_dict(cls, data: Any) -> "Envelope":
        """Parse a received envelope; raises `ValidationError` naming each bad field."""
        if isinstance(data, (bytes, bytearray)):
            data = data.decode("utf-8")
        if isinstance(data, str):
            try:
                data = json.loads(data)
            except ValueError as exc:
                raise ValidationError({"_body": [f"not JSON: {exc}"]}) from exc
        if not isinstance(data, Mapping):
            raise ValidationError({"_body": ["an event envelope must be a JSON object"]})
        fast = _plainly_valid(data)
        if fast is not None:
            return cls(**fast)
        loaded = _ENVELOPE_SCHEMA.load(data)
        return cls(
            event_id=str(loaded["event_id"]),
            type=loaded["type"],
            version=loaded["version"],
            occurred_at=loaded["occurred_at"].astimezone(dt.timezone.utc),
            producer=loaded["producer"],
            operator=loaded["operator"],
            correlation_id=loaded["correlation_id"],
            causation_id=loaded.get("causation_id"),
            payload=loaded["payload"],
            aggregate=loaded.get("aggregate"),
            sequence=loaded.get("sequence"),
        )


@dataclasses.dataclass(frozen=True)
class ReceivedEvent:
    """An upstream event after its payload passed the consumer's own schema."""

    envelope: Envelope
    payload: Any  # what the consumer's schema loads: a frozen dataclass of its own

    @property
    def event_id(self) -> str:
        return self.envelope.event_id

    @property
    def type(self) -> str:
        return self.envelope.type

    @property
    def aggregate(self) -> str | None:
        return self.envelope.aggregate

    @property
    def sequence(self) -> int | None:
        """The producer's sequence number of this event within its aggregate (None on events
        written before sequencing: they carry no order)."""
        return self.envelope.sequence


class PayloadSchemas:
    """The schemas a service publishes, by (type, version); publishing anything else fails.

    `build()` serialises a payload with its schema and then validates the
    serialised form, so what reaches the outbox is exactly what the contract says.
    `build_in_bulk()` returns the same and refuses the same for each of many payloads
    of a bulk job, running marshmallow once per shape of payload rather than for each
    (`shared.bulk_payloads` says how).
    """

    def __init__(self, schemas: Mapping[tuple[str, int], Schema]):
        self._schemas = dict(schemas)
        self._bulk = BulkBuilder(self._schemas, self.build)

    def __contains__(self, key: tuple[str, int]) -> bool:
        return key in self._schemas

    def items(self):
        return self._schemas.items()

    def build(self, event_type: str, version: int, payload: Mapping[str, Any]) -> dict[str, Any]:
        try:
            schema = self._schemas[(event_type, version)]
        except KeyError:
            raise LookupError(f"no published schema for {event_type} v{version}") from None
        try:
            dumped = schema.dump(payload)
        except (TypeError, ValueError) as exc:  # a value its field cannot serialise at all
            raise ValidationError({"payload": [f"cannot be serialised: {exc}"]}) from None
        errors = schema.validate(dumped)
        if errors:
            raise ValidationError({"payload": errors})
        return dumped

    def build_in_bulk(self, event_type: str, version: int, payload: Mapping[str, Any]) -> dict[str, Any]:
        return self._bulk.build(event_type, version, payload)
