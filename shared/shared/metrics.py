"""Prometheus metrics of one service, named `<service>_<thing>_<unit>`.

One registry per service name (created once per process), so a test that runs
several services in one process never collides. Labels are low-cardinality:
entrypoint names, event types and outcomes; never a school or invoice id.

RED per entrypoint (calls by outcome, duration), event counters by type
(published, consumed, duplicate, retried, deferred, dead-lettered), handler duration,
outbox backlog gauges. Services add business gauges with `gauge()`.
"""
from __future__ import annotations

import threading
import time
from typing import Callable

from nameko.extensions import DependencyProvider
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import CONTENT_TYPE_LATEST  # noqa: F401  (re-exported for HTTP)

_registries: dict[str, "ServiceMetrics"] = {}
_lock = threading.Lock()

DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class ServiceMetrics:
    """All metrics of one service; get it with `metrics_for(service_name)`."""

    def __init__(self, service: str):
        self.service = service
        self.registry = CollectorRegistry(auto_describe=True)
        prefix = service
        r = self.registry
        self.entrypoint_calls = Counter(
            f"{prefix}_entrypoint_calls_total", "Entrypoint calls by kind and outcome (ok, client_error, error).",
            ["entrypoint", "kind", "outcome"], registry=r)
        self.entrypoint_duration = Histogram(
            f"{prefix}_entrypoint_duration_seconds", "Time spent in an entrypoint's worker.",
            ["entrypoint", "kind"], buckets=DURATION_BUCKETS, registry=r)
        self.http_responses = Counter(
            f"{prefix}_http_responses_total", "HTTP responses by entrypoint and status class.",
            ["entrypoint", "status"], registry=r)
        self.events_published = Counter(
            f"{prefix}_events_published_total", "Events confirmed by the broker, by type.",
            ["type"], registry=r)
        self.events_unroutable = Counter(
            f"{prefix}_events_unroutable_total", "Events the broker returned because no queue was bound; kept in the outbox.",
            ["type"], registry=r)
        self.events_consumed = Counter(
            f"{prefix}_events_consumed_total", "Upstream events handled, by type and outcome (applied, duplicate, retried, dead_lettered).",
            ["type", "outcome"], registry=r)
        self.events_duplicate = Counter(
            f"{prefix}_events_duplicate_total", "Deliveries recognised by the inbox and skipped.",
            ["type"], registry=r)
        self.events_retried = Counter(
            f"{prefix}_events_retried_total", "Failed deliveries scheduled for another attempt.",
            ["type"], registry=r)
        self.events_deferred = Counter(
            f"{prefix}_events_deferred_total", "Deliveries kept (not acked, not counted as an attempt) after a "
            "transient failure (database or broker outage) and tried again after a backoff.",
            ["type"], registry=r)
        self.events_dead_lettered = Counter(
            f"{prefix}_events_dead_lettered_total", "Events moved to a dead-letter queue.",
            ["type", "reason"], registry=r)
        self.handler_duration = Histogram(
            f"{prefix}_event_handler_duration_seconds", "Time to handle one upstream event.",
            ["type"], buckets=DURATION_BUCKETS, registry=r)
        self.outbox_backlog = Gauge(
            f"{prefix}_outbox_backlog_events", "Outbox rows not yet confirmed by the broker.", registry=r)
        self.outbox_oldest_age = Gauge(
            f"{prefix}_outbox_oldest_unsent_age_seconds", "Age of the oldest unsent outbox row (0 when empty).", registry=r)
        self.relay_errors = Counter(
            f"{prefix}_outbox_relay_errors_total", "Relay rounds that failed (broker unreachable and the like).", registry=r)
        self._gauges: dict[str, Gauge] = {}

    def gauge(self, name: str, documentation: str, labels: tuple[str, ...] = ()) -> Gauge:
        """A business gauge `<service>_<name>`, created once."""
        full = f"{self.service}_{name}"
        if full not in self._gauges:
            self._gauges[full] = Gauge(full, documentation, list(labels), registry=self.registry)
        return self._gauges[full]

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def metrics_for(service: str) -> ServiceMetrics:
    with _lock:
        if service not in _registries:
            _registries[service] = ServiceMetrics(service)
        return _registries[service]


def _kind_of(entrypoint) -> str:
    name = type(entrypoint).__name__.lower()
    for kind in ("http", "rpc", "event", "timer"):
        if kind in name:
            return kind
    return name


class Metrics(DependencyProvider):
    """Times and counts every entrypoint of its service (RED); `self.metrics` in the service."""

    def setup(self):
        self.service_metrics = metrics_for(self.container.service_name)
        self._started: dict = {}

    def get_dependency(self, worker_ctx):
        return self.service_metrics

    def worker_setup(self, worker_ctx):
        self._started[worker_ctx] = time.perf_counter()

    def worker_result(self, worker_ctx, result=None, exc_info=None):
        started = self._started.pop(worker_ctx, None)
        entrypoint = worker_ctx.entrypoint
        name = entrypoint.method_name
        kind = _kind_of(entrypoint)
        m = self.service_metrics
        if started is not None:
            m.entrypoint_duration.labels(name, kind).observe(time.perf_counter() - started)
        outcome = "ok"
        if exc_info is not None:
            # Refusals the entrypoint expects (bad input, rule broken) are the
            # client's errors, not the service's; RED's error rate counts the latter.
            outcome = "client_error" if issubclass(exc_info[0], entrypoint.expected_exceptions) else "error"
        elif isinstance(result, tuple) and result and isinstance(result[0], int) and result[0] >= 500:
            outcome = "error"
        m.entrypoint_calls.labels(name, kind, outcome).inc()

    def worker_teardown(self, worker_ctx):
        self._started.pop(worker_ctx, None)


def timed(observe: Callable[[float], None]):
    """Context manager that reports elapsed seconds to `observe`."""
    class _Timer:
        def __enter__(self):
            self.start = time.perf_counter()
            return self

        def __exit__(self, *exc):
            observe(time.perf_counter() - self.start)
            return False

    return _Timer()
