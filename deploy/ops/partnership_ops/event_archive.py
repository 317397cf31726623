"""Reading the event archive: every producer's stream `<producer>.events.archive` (`partnership_ops.topology`).

The archive keeps every event a producer published, in publish order, for the retention
the topology's policy gives it (13 months by default), whether or not anyone consumed it.
Two uses:

- `tail()`: print events live, or from a point (an offset, a time, `first`), filtered by
  producer and type; read-only, it changes nothing on the broker.
- `replay()`: re-send archived events from a point to **one** handler queue, through
  that service's `<service>.requeue` exchange (bound to each of its handler queues by
  name), with publisher confirms and `mandatory`: for a subscriber added after the
  events, or after a fix. The handler's inbox drops any event it already applied, so a
  replay over events already handled changes nothing. Every archived `contact_erased` is
  then re-sent to the service's erasure handler, so a replay never brings back an erased
  person (`replay`).

Reading stops at the end of the stream as it was when the read started (no new event for
`idle_seconds`), or at `until` (a time), whichever comes first, unless following; every read
is bounded by `max_messages` and `timeout`. A stream does not say where it ends over AMQP, so
"the end" is a quiet spell; the first delivery, which waits for the broker to open the stream's
segments, gets a longer one (`first_delivery_seconds`) so that a busy broker does not end a
replay before it began.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import time
from typing import Callable, Iterable, Iterator

import pika

from partnership_ops import topology
from shared.topology import archive_name, requeue_exchange, service_of_queue

STREAM_PREFETCH = 200
#: How long a read waits for its first event before it takes the archive to be empty from `start`.
FIRST_DELIVERY_SECONDS = 5.0


@dataclasses.dataclass(frozen=True)
class ArchivedEvent:
    """One event read from an archive, with its position there."""

    producer: str
    offset: int
    routing_key: str
    body: bytes
    properties: pika.BasicProperties

    @property
    def envelope(self) -> dict:
        try:
            return json.loads(self.body)
        except ValueError:
            return {}

    @property
    def event_type(self) -> str:
        return self.properties.type or self.routing_key.split(".", 1)[0]

    @property
    def event_version(self) -> int:
        """The payload version: the `x-event-version` header, else the body's `version` (1 if neither)."""
        header = (self.properties.headers or {}).get("x-event-version")
        try:
            return int(header if header is not None else self.envelope.get("version", 1))
        except (TypeError, ValueError):
            return 1

    def summary(self) -> dict:
        envelope = self.envelope
        return {"producer": self.producer, "offset": self.offset, "type": self.event_type,
                "event_id": self.properties.message_id, "occurred_at": envelope.get("occurred_at"),
                "aggregate": envelope.get("aggregate"), "sequence": envelope.get("sequence"),
                "operator": envelope.get("operator"), "payload": envelope.get("payload")}


def parse_start(text: str | None):
    """`first`, `last`, `next`, an offset (integer), or an ISO 8601 time -> an `x-stream-offset` value."""
    if text is None or text in ("first", "last", "next"):
        return text or "first"
    if text.isdigit():
        return int(text)
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"--from {text!r}: expected first, last, next, an offset or an ISO 8601 time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return moment


def read(amqp_uri: str, producer: str, *, start="first", follow: bool = False, idle_seconds: float = 2.0,
         timeout: float = 300.0, max_messages: int = 1_000_000, until: dt.datetime | None = None,
         first_delivery_seconds: float | None = None) -> Iterator[ArchivedEvent]:
    """Events of one producer's archive from `start` (see `parse_start`), in archive order, until
    `idle_seconds` pass without one (`first_delivery_seconds`, by default the larger of that and
    FIRST_DELIVERY_SECONDS, before the first)."""
    first_wait = max(idle_seconds, FIRST_DELIVERY_SECONDS) if first_delivery_seconds is None else first_delivery_seconds
    started = time.monotonic()
    connection = pika.BlockingConnection(topology.pika_parameters(amqp_uri))
    try:
        channel = connection.channel()
        channel.basic_qos(prefetch_count=STREAM_PREFETCH)
        offset_argument = start
        if isinstance(start, dt.datetime):
            # pika sends a datetime as an AMQP timestamp, which is what a stream takes
            offset_argument = start.astimezone(dt.timezone.utc).replace(tzinfo=None)
        deadline = time.monotonic() + timeout
        count = 0
        for method, properties, body in channel.consume(
                archive_name(producer), auto_ack=False, arguments={"x-stream-offset": offset_argument},
                inactivity_timeout=idle_seconds):
            if method is None:  # nothing new for idle_seconds: the end of the stream, unless following
                if follow and time.monotonic() < deadline:
                    continue
                if count == 0 and time.monotonic() - started < first_wait:
                    continue  # the broker may still be opening the stream
                break
            channel.basic_ack(method.delivery_tag)
            offset = int((properties.headers or {}).get("x-stream-offset", -1))
            event = ArchivedEvent(producer, offset, method.routing_key, body, properties)
            if until is not None:
                occurred = event.envelope.get("occurred_at")
                if occurred and dt.datetime.fromisoformat(occurred.replace("Z", "+00:00")) > until:
                    break
            yield event
            count += 1
            if count >= max_messages or time.monotonic() >= deadline:
                break
        channel.cancel()
    finally:
        if connection.is_open:
            connection.close()


def tail(amqp_uri: str, producers: Iterable[str], *, start="first", types: set[str] | None = None,
         follow: bool = False, idle_seconds: float = 2.0, timeout: float = 300.0, limit: int = 1_000_000,
         emit: Callable[[dict], None] = print) -> int:
    """Emit a summary of each archived event of `producers` (one after another unless following
    a single one) whose type is in `types` (all when None); returns how many were emitted."""
    emitted = 0
    for producer in producers:
        for event in read(amqp_uri, producer, start=start, follow=follow, idle_seconds=idle_seconds,
                          timeout=timeout):
            if types and event.event_type not in types:
                continue
            emit(event.summary())
            emitted += 1
            if emitted >= limit:
                return emitted
    return emitted


#: The event that erases a person everywhere (membership's), re-applied after every replay.
ERASURE = ("membership", "contact_erased", 1)


def erasure_queue_of(service: str) -> str | None:
    """The handler queue of `service`'s `contact_erased` consumer, or None if it has none."""
    from partnership_ops import links

    source, event_type, version = ERASURE
    return next((h.queue for h in links.handlers_of(service)
                 if (h.source, h.event_type, h.version) == (source, event_type, version)), None)


def replay(amqp_uri: str, handler_queue: str, *, source: str, event_type: str, version: int = 1, start="first",
           until: dt.datetime | None = None, idle_seconds: float = 2.0, timeout: float = 600.0,
           reapply_erasures: bool = True) -> dict:
    """Re-send `source`'s archived `event_type` events of payload `version` (the one the handler reads)
    from `start` to one handler queue; each is confirmed by the broker (and routed: `mandatory`)
    before the next. Returns counts.

    Then, when the handler's service consumes `contact_erased` (and this was not that queue), every
    archived erasure, from the first to now whatever `start` and `until` were, is re-sent to its
    erasure handler (`erasures_reapplied`): a replay into a rebuilt or restored database, whose
    inbox no longer knows the events, would otherwise bring back the name of a person erased since.
    Re-applying is harmless where it is not needed (the inbox drops an erasure already applied), and
    the order the two queues are consumed in does not matter: each consumer keeps a tombstone that no
    role change, earlier or later, undoes. The archive itself still holds the person's data until
    its retention ends (docs/retention.md): it cannot be rewritten, so it is re-erased on every read."""
    report = _replay_one(amqp_uri, handler_queue, source=source, event_type=event_type, version=version,
                         start=start, until=until, idle_seconds=idle_seconds, timeout=timeout)
    if reapply_erasures:
        try:
            erasures = erasure_queue_of(service_of_queue(handler_queue))
        except LookupError as exc:  # its code is not installed here: say so rather than guess its queue
            report["erasures_reapplied"] = None
            report["erasures_not_reapplied"] = f"{exc}: replay its contact_erased handler queue too"
            return report
        report["erasures_reapplied"] = 0
        if erasures is not None and erasures != handler_queue:
            erasure_source, erasure_type, erasure_version = ERASURE
            report["erasures_reapplied"] = _replay_one(
                amqp_uri, erasures, source=erasure_source, event_type=erasure_type, version=erasure_version,
                start="first", until=None, idle_seconds=idle_seconds, timeout=timeout)["replayed"]
            report["erasure_queue"] = erasures
    return report


def _replay_one(amqp_uri: str, handler_queue: str, *, source: str, event_type: str, version: int, start,
                until: dt.datetime | None, idle_seconds: float, timeout: float) -> dict:
    service = service_of_queue(handler_queue)
    exchange = requeue_exchange(service)
    until = until or dt.datetime.now(dt.timezone.utc)  # never chase events published during the replay
    publisher = pika.BlockingConnection(topology.pika_parameters(amqp_uri))
    sent = skipped = 0
    first_offset = last_offset = None
    try:
        channel = publisher.channel()
        channel.confirm_delivery()
        for event in read(amqp_uri, source, start=start, until=until, idle_seconds=idle_seconds, timeout=timeout):
            if event.event_type != event_type or event.event_version != version:
                skipped += 1
                continue
            headers = dict(event.properties.headers or {})
            headers.pop("x-stream-offset", None)
            headers["x-replayed-from"] = f"{archive_name(source)}@{event.offset}"
            properties = pika.BasicProperties(
                content_type=event.properties.content_type, content_encoding=event.properties.content_encoding,
                message_id=event.properties.message_id, type=event.properties.type, delivery_mode=2,
                correlation_id=event.properties.correlation_id, app_id=event.properties.app_id, headers=headers)
            # raises UnroutableError / NackError: nothing is counted as sent that the broker did not take
            channel.basic_publish(exchange, handler_queue, event.body, properties, mandatory=True)
            sent += 1
            first_offset = event.offset if first_offset is None else first_offset
            last_offset = event.offset
    finally:
        if publisher.is_open:
            publisher.close()
    return {"queue": handler_queue, "archive": archive_name(source), "type": event_type, "version": version,
            "replayed": sent,
            "other_types_skipped": skipped, "first_offset": first_offset, "last_offset": last_offset}
