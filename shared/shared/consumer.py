"""`consumes`: nameko's event handler made reliable.

nameko 2.14.1 acks a message whose handler raised (it is lost) or, with
`requeue_on_error`, requeues it at once and forever. This entrypoint instead:

- validates the envelope and the payload (the consumer's own marshmallow
  schema, unknown fields excluded) before any worker runs; an invalid message
  goes straight to the handler's dead-letter queue with the validation errors;
- an event whose id is already in the service's inbox is acked without
  effect: the handler's unit of work inserts the inbox row first and raises
  `EventAlreadyHandled` (no separate look-up per message, which cost a fifth
  of the consumer's time);
- acks only after the worker returned, i.e. after its unit of work committed;
- tells transient failures from permanent ones (`shared.failures`). A transient
  one (database unreachable, locked or failing over; a socket or broker error;
  `TransientFailure`) keeps the message unacked and uncopied and pauses the
  handler: its messages wait at an `OutageGate` while one of them at a time
  tries again after an exponential, capped, jittered backoff, for as long as
  the outage lasts; they never count as attempts. Waiting happens in green
  threads, never in nameko's consumer thread; held messages count towards
  prefetch only, not towards the queue's delivery limit (only redeliveries
  do). On stop or a kill they stay unacked and go back to the queue with the
  consumer's connection, and so does a message that reaches a handler already
  stopping: handing it back at once would have the broker push it straight back
  to the consumer still being cancelled, each time counting towards the delivery
  limit, until a healthy event was dead-lettered by a graceful stop;
- on a permanent failure, parks a copy in the service's delay queue for the
  next backoff step (attempt count in `x-attempt`) and acks the original, so
  the messages behind it keep flowing; after the last step the copy goes to
  the dead-letter queue with the error, the attempt count and the time
  recorded in headers;
- copies are published with confirms (bounded wait) and `mandatory`
  (`shared.republish`); if one cannot be published (broker trouble, no route)
  the original is kept, never acked, and the copy published again after a
  backoff, so no hop loses a message;
- consumes from a quorum queue whose policy sets a delivery limit, so even a
  message that kills the process every time ends in the dead-letter queue
  (RabbitMQ dead-letters it at least once); the queues, exchanges and policies
  are provisioned beforehand (`partnership-ops topology apply`), the handler declares only
  its own queue, with the provisioned arguments.
"""
from __future__ import annotations

import datetime as dt
import logging
import threading
import time
import traceback
from functools import partial

from marshmallow import EXCLUDE, Schema, ValidationError
from nameko.events import EventHandler
from nameko.exceptions import ContainerBeingKilled
from eventlet.event import Event as GreenEvent
from nameko.messaging import QueueConsumer, QueueConsumerStopped

from shared.config import events_settings
from shared.envelope import Envelope, ReceivedEvent
from shared.failures import Attempt, OutageGate, TransientFailure, backoff_delay, is_transient
from shared.republish import Republisher, RepublishFailed, republisher_for
from shared.metrics import metrics_for
from shared.topology import (dead_letter_exchange, dead_letter_queue_name, handler_queue_arguments, retry_name,
                             routing_key)
from shared.tls import amqp_ssl_of
from shared.unit_of_work import EventAlreadyHandled

log = logging.getLogger(__name__)

MAX_ERROR_HEADER = 2000


class ReliableQueueConsumer(QueueConsumer):
    """nameko's queue consumer, but an undecodable message is dead-lettered instead of
    breaking the consume loop (kombu would otherwise raise inside `drain_events`), and an
    ack or requeue on a connection the broker just dropped does not kill the container."""

    def ack_message(self, message):
        try:
            super().ack_message(message)
        except OSError as exc:
            # The broker redelivers an unacked message; the inbox makes that harmless.
            log.warning("ack lost with the connection (%s); the message will be redelivered", exc)

    def requeue_message(self, message):
        try:
            super().requeue_message(message)
        except OSError as exc:
            log.warning("requeue lost with the connection (%s); the broker requeues it itself", exc)

    def unregister_provider(self, provider):
        """Safe while the consumer is still starting, however many handlers unregister then.

        nameko answers every unregistration that comes before the consumers are ready by sending
        "last provider unregistered" again; the second send raises in eventlet, that handler's
        `stop` fails, and the container's stop never finishes: a SIGTERM in the first moments of
        a start (a billing run already going, the consumers still declaring their queues under
        load) left the process running until it was killed. Here it is sent once; the queue
        consumer's own `stop` then ends the unfinished start (nameko's `QueueConsumerStopped`)."""
        if not self._consumers_ready.ready():
            if not self._last_provider_unregistered.ready():
                self._last_provider_unregistered.send()
            return
        super().unregister_provider(provider)

    def stop(self):
        """nameko's stop, which also ends a consume loop whose handlers unregistered while it was
        still starting: they could not cancel their consumers then (only the consumer thread can,
        once it runs), and the loop only ends when no consumer is left, so a start that became
        ready after the handlers stopped left `stop` waiting for ever. Their cancellation is
        asked for here; a start that never became ready is ended as nameko does."""
        if not self._consumers_ready.ready():
            self._gt.kill(QueueConsumerStopped())
        else:
            for provider in list(self._consumers):
                self._pending_remove_providers.setdefault(provider, GreenEvent())
        self.wait_for_providers()
        try:
            self._gt.wait()
        except QueueConsumerStopped:
            pass
        super(QueueConsumer, self).stop()  # past nameko's own stop, which would wait as above

    def get_consumers(self, consumer_cls, channel):
        consumers = super().get_consumers(consumer_cls, channel)
        for provider, consumer in self._consumers.items():
            consumer.on_decode_error = provider.handle_undecodable
        return consumers


def _copied_properties(message) -> dict:
    keep = ("content_type", "content_encoding", "message_id", "type", "correlation_id", "app_id", "timestamp")
    return {k: message.properties[k] for k in keep if message.properties.get(k) is not None}


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat().replace("+00:00", "Z")


def _alive(message) -> bool:
    """False once the message's channel is gone: the broker has taken the message back."""
    channel = getattr(message, "channel", None)
    return channel is None or getattr(channel, "connection", None) is not None


__all__ = ["ReliableEventHandler", "ReliableQueueConsumer", "Republisher", "RepublishFailed", "TransientFailure",
           "consumes"]


class ReliableEventHandler(EventHandler):
    """Handle one upstream event type exactly once in effect. See the module docstring."""

    queue_consumer = ReliableQueueConsumer()

    def __init__(self, source_service: str, event_type: str, schema: type[Schema] | Schema, version: int = 1,
                 **kwargs):
        self.schema = schema(unknown=EXCLUDE) if isinstance(schema, type) else schema
        self.version = version
        kwargs.setdefault("expected_exceptions", (EventAlreadyHandled,))
        super().__init__(source_service, event_type, requeue_on_error=False, **kwargs)

    def setup(self):
        super().setup()
        settings = events_settings(self.container.config)
        self.retry_delays_ms = settings["retry_delays_ms"]
        self.delivery_limit = settings["delivery_limit"]
        self.service_name = self.container.service_name
        # Declared exactly as provisioned (partnership_ops.topology): limits and dead-lettering are policies.
        self.queue.queue_arguments = handler_queue_arguments()
        # nameko binds the queue with the bare type; the provisioned binding is by type and version,
        # so a version this handler cannot read never reaches its queue.
        self.queue.routing_key = routing_key(self.event_type, self.version)
        self.metrics = metrics_for(self.service_name)
        self.amqp_uri = self.container.config["AMQP_URI"]
        self._setup_recovery(events_settings(self.container.config))
        self._quiesced = False
        self._stopped = False
        # Fault injection for the tests only (FAULTS.delay_consumer_cancel_seconds): a stopping handler
        # waits before cancelling its consumer, as the last of many handlers' cancellations does on a
        # busy broker, so that messages keep reaching it after it stopped.
        self._cancel_delay = float((self.container.config.get("FAULTS") or {}).get("delay_consumer_cancel_seconds")
                                   or 0)

    # -- quiescing (handover: stop consuming while the relay drains) ------------------------------
    @property
    def quiesced(self) -> bool:
        return self._quiesced

    def quiesce(self) -> bool:
        """Stop consuming this handler's queue; the queue stays bound and keeps collecting.

        nameko cancels the consumer (from its consumer thread) and returns once it is
        cancelled; workers already running finish and ack as usual. A message the
        broker had already pushed but no worker took stays unacked and goes back to
        the queue when the process stops. Idempotent: returns True the first time.
        """
        if self.quiesced:
            return False
        self._quiesced = True
        self.queue_consumer.unregister_provider(self)
        return True

    def stop(self):
        self._stopped = True
        self._stop_waiting()
        if self._cancel_delay:
            time.sleep(self._cancel_delay)  # FAULTS only (green under eventlet)
        if not self.quiesced:  # a quiesced handler is already unregistered (twice would fail)
            super().stop()

    # -- recovery: outages pause the handler, broker trouble keeps the original --------------------
    def _setup_recovery(self, settings: dict) -> None:
        self.backoff_initial = settings["transient_backoff_initial_seconds"]
        self.backoff_cap = settings["transient_backoff_max_seconds"]
        self.republisher = republisher_for(self.amqp_uri, settings["republish_confirm_timeout_seconds"],
                                           ssl=amqp_ssl_of(self.container.config))
        self.gate = OutageGate(f"{self.container.service_name}.{self.method_name}", initial=self.backoff_initial,
                               cap=self.backoff_cap, logger=log)
        self._stopping = threading.Event()  # green under eventlet: waits on it never block the hub

    def _stop_waiting(self) -> None:
        """Stopping: messages waiting out an outage (or a republish backoff) stop waiting and stay
        unacked; the broker requeues them when the consumer's connection closes, once. (Requeuing
        them here would have the broker push them straight back while the consumer still runs,
        each time counting a delivery towards the queue's limit.)"""
        self._stopping.set()
        if getattr(self, "gate", None) is not None:  # None if setup() failed before making it
            self.gate.stop()

    # -- receiving ----------------------------------------------------------------------------
    def handle_message(self, body, message):
        """Runs in its own green thread (nameko spawns one per message), so it may wait. A message
        that reaches a handler already stopped (its consumer was still being cancelled) is left
        unacked: the service is shutting down and must not start work, and the broker takes the
        message back once, when the consumer's connection closes. (Requeuing it here had the broker
        push it straight back to the same consumer, over and over until the cancellation went
        through, each time counting towards the queue's delivery limit: a handover's SIGTERM
        dead-lettered a healthy event.)"""
        if self._stopped:
            return
        try:
            envelope = Envelope.from_dict(body)
            if envelope.type != self.event_type:
                raise ValidationError({"type": [f"expected {self.event_type}, got {envelope.type}"]})
            if envelope.version != self.version:
                raise ValidationError({"version": [f"this handler reads version {self.version}"]})
            payload = self.schema.load(envelope.payload)
        except ValidationError as exc:
            self._dead_letter(message, reason="invalid", error=f"ValidationError: {exc.messages}",
                              event_type=self.event_type)
            return
        self._dispatch(message, ReceivedEvent(envelope=envelope, payload=payload))

    def _dispatch(self, message, event: ReceivedEvent) -> None:
        """Run a worker for the message once the gate lets it through (at once, unless in an outage)."""
        attempt = self.gate.enter(abandon=lambda: not _alive(message))
        if attempt is None:
            return  # stopping in an outage, or the broker took it back with its connection: left unacked
        if not _alive(message):
            self.gate.release(attempt)  # the broker has it back and will deliver it again
            return
        context_data = {"correlation_id": event.envelope.correlation_id, "causation_id": event.envelope.event_id}
        started = time.perf_counter()
        try:
            self.container.spawn_worker(self, (event,), {}, context_data=context_data,
                                        handle_result=partial(self._handle_outcome, message, event, attempt,
                                                              started))
        except ContainerBeingKilled:
            self.gate.release(attempt)
            self.queue_consumer.requeue_message(message)

    def handle_undecodable(self, message, exc) -> None:
        self._dead_letter(message, reason="undecodable", error=f"{type(exc).__name__}: {exc}",
                          event_type=self.event_type)

    # -- outcome ------------------------------------------------------------------------------
    def _handle_outcome(self, message, event, attempt, started, worker_ctx, result=None, exc_info=None):
        elapsed = time.perf_counter() - started
        self.metrics.handler_duration.labels(self.event_type).observe(elapsed)
        log.debug("handled %s event %s from %s in %.1f ms: %s", self.event_type, event.envelope.event_id,
                  event.envelope.producer, elapsed * 1000, "ok" if exc_info is None else exc_info[0].__name__)
        if exc_info is None:
            self.gate.succeeded(attempt)
            self.metrics.events_consumed.labels(self.event_type, "applied").inc()
            self.queue_consumer.ack_message(message)
        elif issubclass(exc_info[0], EventAlreadyHandled):
            self.gate.succeeded(attempt)
            self.metrics.events_duplicate.labels(self.event_type).inc()
            self.metrics.events_consumed.labels(self.event_type, "duplicate").inc()
            self.queue_consumer.ack_message(message)
        elif is_transient(exc_info[1]):
            error = "".join(traceback.format_exception_only(exc_info[0], exc_info[1])).strip()
            self._defer(message, event, attempt, error)
        else:
            self.gate.release(attempt)
            error = "".join(traceback.format_exception_only(exc_info[0], exc_info[1])).strip()
            self._retry_or_dead_letter(message, error)
        return result, exc_info

    def _defer(self, message, event, attempt: Attempt, error: str) -> None:
        """A transient failure: keep the message (no ack, no copy, no attempt counted) and run it
        again once the gate lets it, from a new green thread (this one is a worker's)."""
        self.metrics.events_deferred.labels(self.event_type).inc()
        self.gate.failed(attempt, error[:MAX_ERROR_HEADER])
        if self._stopping.is_set():
            return  # left unacked: back to the queue with the connection (see `_stop_waiting`)
        self.container.spawn_managed_thread(partial(self._dispatch, message, event),
                                            identifier=f"{self.queue.name}.deferred")

    def _retry_or_dead_letter(self, message, error: str) -> None:
        attempt = int(message.headers.get("x-attempt", 1))
        if attempt <= len(self.retry_delays_ms):
            delay = self.retry_delays_ms[attempt - 1]
            headers = dict(message.headers)
            headers.update({"x-attempt": attempt + 1, "x-last-error": error[:MAX_ERROR_HEADER],
                            "x-original-queue": self.queue.name})

            def parked():
                self.metrics.events_retried.labels(self.event_type).inc()
                self.metrics.events_consumed.labels(self.event_type, "retried").inc()
                self.queue_consumer.ack_message(message)

            self._republish(message, what="park for retry", exchange=retry_name(self.service_name, delay),
                            routing_key=self.queue.name, headers=headers, then=parked)
        else:
            self._dead_letter(message, reason="exhausted", error=error, event_type=self.event_type,
                              attempts=attempt)

    def _dead_letter(self, message, *, reason: str, error: str, event_type: str, attempts: int | None = None):
        headers = dict(message.headers or {})
        headers.update({
            "x-dead-letter-reason": reason,
            "x-error": error[:MAX_ERROR_HEADER],
            "x-dead-lettered-at": _now(),
            "x-attempts": attempts if attempts is not None else int(headers.get("x-attempt", 1)),
            "x-original-queue": self.queue.name,
            "x-original-exchange": message.delivery_info.get("exchange", ""),
            "x-original-routing-key": message.delivery_info.get("routing_key", ""),
        })

        def dead_lettered():
            log.error("dead-lettered %s from %s (%s): %s", event_type, self.queue.name, reason, error)
            self.metrics.events_dead_lettered.labels(event_type, reason).inc()
            self.metrics.events_consumed.labels(event_type, "dead_lettered").inc()
            self.queue_consumer.ack_message(message)

        self._republish(message, what="dead-letter", exchange=dead_letter_exchange(self.service_name),
                        routing_key=dead_letter_queue_name(self.queue.name),
                        headers=headers, then=dead_lettered)

    def _republish(self, message, *, what: str, exchange: str, routing_key: str, headers: dict, then) -> None:
        """Publish a copy of `message` (confirmed, mandatory), then call `then` (which acks the original).

        If the copy cannot be published the original is kept unacked and the copy is
        published again after a backoff, from a green thread of its own, until it is
        confirmed, the handler stops or the broker takes the original back with its
        connection (either way the original is delivered again)."""
        publish = partial(self.republisher.publish, message.body, exchange=exchange, routing_key=routing_key,
                          properties=_copied_properties(message), headers=headers)
        try:
            publish()
        except Exception as exc:  # noqa: BLE001 - RepublishFailed, or anything the broker raised
            self.metrics.events_deferred.labels(self.event_type).inc()
            log.warning("could not %s %s from %s (%s); the original is kept and the copy retried",
                        what, self.event_type, self.queue.name, exc)
            self.container.spawn_managed_thread(partial(self._republish_later, message, what, publish, then),
                                                identifier=f"{self.queue.name}.republish")
            return
        then()

    def _republish_later(self, message, what: str, publish, then) -> None:
        step = 0
        while True:  # ends on success, on stop (left unacked), or once the broker has the original back
            step += 1
            self._stopping.wait(backoff_delay(step, initial=self.backoff_initial, cap=self.backoff_cap))
            if self._stopping.is_set() or not _alive(message):
                return
            try:
                publish()
            except Exception as exc:  # noqa: BLE001 - still failing: next step
                self.metrics.events_deferred.labels(self.event_type).inc()
                log.warning("could not %s %s from %s (step %d: %s); retrying", what, self.event_type,
                            self.queue.name, step, exc)
                continue
            then()
            return


consumes = ReliableEventHandler.decorator
