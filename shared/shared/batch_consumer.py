"""`consumes_batch`: the reliable consumer (`shared.consumer`), handing its handler up to N events at once.

A handler decorated with `consumes_batch(source, event_type, schema)` is a plain
function over a list of typed events (an `EventBatch` of `ReceivedEvent`). Its worker's
`self.uow()` is a `shared.batch_unit_of_work.BatchUnitOfWork`: one transaction, one
inbox row per event, the events already handled left out of `fresh`.

Guarantees, on top of everything `ReliableEventHandler` guarantees for one message
(validation and dead-lettering before any worker runs, the outage gate, retry and
dead-letter copies with confirms, the quorum queue and its delivery limit):

- a batch closes when it holds `max_events` messages or `linger_ms` after its first
  message arrived, whichever comes first (both from the decorator, else the config's
  `EVENTS.batch_max_events` / `EVENTS.batch_linger_ms`); the handler's prefetch
  (nameko's `max_workers`) must be at least `max_events`, or the service refuses to
  start saying so (a batch could otherwise never fill, and would wait out its linger
  every time);
- the batch's messages are acked together, after the worker returned, i.e. after the
  batch's single commit; nothing of the batch is acked before;
- events already in the inbox (a redelivery, a second copy in the same batch) are
  skipped without failing the batch, and acked with it;
- a transient failure (`shared.failures`) keeps every message of the batch unacked
  and uncopied and pauses the handler at its `OutageGate`; the whole batch tries again
  after the backoff, exactly as a single message does;
- a permanent failure of a batch of two or more rolls the whole batch back and then
  runs each of its messages again alone (a batch of one, its own transaction): the
  others are applied once, and only the poison message takes the retry and
  dead-letter path of a single message (its `x-attempt` counts only its own failures);
- a process killed, or a service stopped, mid-batch leaves every message of the batch
  unacked: the broker delivers them again and the inbox applies each once.

Order tolerance holds within a batch as across batches: the events are handed over in
delivery order, and each event's use case runs in the batch's transaction, seeing the
effects (and sequence numbers) of the events before it.
"""
from __future__ import annotations

import logging
import threading
import time
import traceback
from functools import partial

from nameko.exceptions import ContainerBeingKilled

from shared.batch_unit_of_work import EventBatch
from shared.config import events_settings
from shared.consumer import MAX_ERROR_HEADER, ReliableEventHandler, _alive
from shared.envelope import ReceivedEvent
from shared.failures import Attempt, is_transient
from shared.unit_of_work import EventAlreadyHandled

log = logging.getLogger(__name__)

__all__ = ["BatchedEventHandler", "EventBatch", "consumes_batch", "takes_batches"]


class BatchTooLargeForPrefetch(ValueError):
    """A batch of `max_events` needs at least that many unacked messages from the broker."""


class BatchedEventHandler(ReliableEventHandler):
    """Handle one upstream event type a batch at a time, each event exactly once in effect.
    See the module docstring."""

    def __init__(self, source_service: str, event_type: str, schema, version: int = 1, *,
                 max_events: int | None = None, linger_ms: float | None = None, **kwargs):
        self._max_events_arg = max_events
        self._linger_ms_arg = linger_ms
        super().__init__(source_service, event_type, schema, version, **kwargs)

    def setup(self):
        super().setup()
        settings = events_settings(self.container.config)
        self.max_events = int(self._max_events_arg or settings["batch_max_events"])
        self.linger = float(self._linger_ms_arg if self._linger_ms_arg is not None
                            else settings["batch_linger_ms"]) / 1000.0
        prefetch = self.container.max_workers
        if self.max_events < 1:
            raise BatchTooLargeForPrefetch(f"{self.service_name}.{self.method_name}: batch_max_events must be >= 1")
        if prefetch < self.max_events:
            raise BatchTooLargeForPrefetch(
                f"{self.service_name}.{self.method_name}: a batch of up to {self.max_events} events needs a "
                f"prefetch of at least {self.max_events}, but max_workers (the prefetch) is {prefetch}: raise "
                f"max_workers or lower EVENTS.batch_max_events")
        self._pending: list[tuple[object, ReceivedEvent]] = []
        self._pending_lock = threading.Lock()  # green under eventlet
        self._generation = 0  # which open batch a linger timer was started for

    # -- collecting -------------------------------------------------------------------------------
    def _dispatch(self, message, event: ReceivedEvent) -> None:
        """A valid message (`handle_message` validated it, in its own green thread): join the open batch,
        closing it if full, or starting its linger timer if it is the first."""
        with self._pending_lock:
            self._pending.append((message, event))
            if len(self._pending) >= self.max_events:
                batch, self._pending = self._pending, []
                self._generation += 1
            else:
                batch = None
                if len(self._pending) == 1:
                    generation = self._generation
                    self.container.spawn_managed_thread(partial(self._linger_then_close, generation),
                                                        identifier=f"{self.queue.name}.linger")
        if batch:
            self._dispatch_batch(batch)

    def _linger_then_close(self, generation: int) -> None:
        if self._stopping.wait(self.linger):
            return  # stopping: what is pending stays unacked and goes back with the connection
        with self._pending_lock:
            if generation != self._generation or not self._pending:
                return  # that batch closed full in the meantime
            batch, self._pending = self._pending, []
            self._generation += 1
        self._dispatch_batch(batch)

    # -- running a batch ----------------------------------------------------------------------------
    def _dispatch_batch(self, items: list) -> None:
        """Run one worker for the batch once the gate lets it through (at once, unless in an outage).
        Messages the broker took back meanwhile (their connection closed) are left out: they come again."""
        attempt = self.gate.enter(abandon=lambda: not any(_alive(m) for m, _ in items))
        if attempt is None:
            return  # stopping in an outage, or all taken back: left unacked
        items = [(m, e) for m, e in items if _alive(m)]
        if not items:
            self.gate.release(attempt)
            return
        first = items[0][1].envelope
        context_data = {"correlation_id": first.correlation_id, "causation_id": first.event_id}
        events = EventBatch(e for _, e in items)
        started = time.perf_counter()
        try:
            self.container.spawn_worker(self, (events,), {}, context_data=context_data,
                                        handle_result=partial(self._handle_batch_outcome, items, events, attempt,
                                                              started))
        except ContainerBeingKilled:
            self.gate.release(attempt)
            for message, _ in items:
                self.queue_consumer.requeue_message(message)

    def _handle_batch_outcome(self, items, events: EventBatch, attempt: Attempt, started, worker_ctx,
                              result=None, exc_info=None):
        elapsed = time.perf_counter() - started
        self.metrics.handler_duration.labels(self.event_type).observe(elapsed)
        log.debug("handled a batch of %d %s events in %.1f ms: %s", len(items), self.event_type, elapsed * 1000,
                  "ok" if exc_info is None else exc_info[0].__name__)
        if exc_info is None or issubclass(exc_info[0], EventAlreadyHandled):
            self.gate.succeeded(attempt)
            duplicates = len(events.already_handled)
            if duplicates:
                self.metrics.events_duplicate.labels(self.event_type).inc(duplicates)
                self.metrics.events_consumed.labels(self.event_type, "duplicate").inc(duplicates)
            if len(items) > duplicates:
                self.metrics.events_consumed.labels(self.event_type, "applied").inc(len(items) - duplicates)
            for message, _ in items:  # after the commit: the worker has returned
                self.queue_consumer.ack_message(message)
        elif is_transient(exc_info[1]):
            error = "".join(traceback.format_exception_only(exc_info[0], exc_info[1])).strip()
            self._defer_batch(items, attempt, error)
        else:
            self.gate.release(attempt)
            error = "".join(traceback.format_exception_only(exc_info[0], exc_info[1])).strip()
            if len(items) == 1:
                self._retry_or_dead_letter(items[0][0], error)
            else:
                # Which event is the poison is unknown: each runs alone, in its own transaction, from
                # green threads of their own (this one is a worker's; spawning workers from it could
                # wait for a worker slot that only this worker would free).
                log.warning("a batch of %d %s events failed (%s); running them one at a time",
                            len(items), self.event_type, error[:500])
                for item in items:
                    self.container.spawn_managed_thread(partial(self._dispatch_batch, [item]),
                                                        identifier=f"{self.queue.name}.alone")
        return result, exc_info

    def _defer_batch(self, items, attempt: Attempt, error: str) -> None:
        """A transient failure: keep every message (no ack, no copy, no attempt counted) and run the batch
        again once the gate lets it, from a new green thread."""
        self.metrics.events_deferred.labels(self.event_type).inc(len(items))
        self.gate.failed(attempt, error[:MAX_ERROR_HEADER])
        if self._stopping.is_set():
            return  # left unacked: back to the queue with the connection
        self.container.spawn_managed_thread(partial(self._dispatch_batch, items),
                                            identifier=f"{self.queue.name}.deferred")


consumes_batch = BatchedEventHandler.decorator


def takes_batches(method) -> bool:
    """True if a service method (function or bound) is a `consumes_batch` handler: it takes an `EventBatch`,
    and its worker's `self.uow` is a `BatchUnitsOfWork` (what tests that call handlers directly need to know)."""
    return any(isinstance(entrypoint, BatchedEventHandler) for entrypoint in getattr(method, "nameko_entrypoints", ()))
