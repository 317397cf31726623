"""Prometheus metrics of one service, in one naming scheme across the four.

Every metric the services share is named once, `partnership_<thing>_<unit>`, and carries a
`service` label, so one query sums or compares across services
(`sum by (service) (rate(partnership_events_published_total[5m]))`). A service's own business
figures are `partnership_<service>_<thing>` (see `gauge()`). The registry of a service also
exports the process and Python runtime collectors and `partnership_build_info`.

One registry per service name (created once per process), so a test that runs several services
in one process never collides. Labels are low-cardinality: entrypoint names, event types and
outcomes; never a school or invoice id.

RED per entrypoint (calls by outcome, duration, HTTP responses by status class), event counters by
type (published, unroutable, consumed, duplicate, retried, deferred, dead-lettered), handler
duration, relay errors, and the outbox backlog and oldest unsent age, which are read from the
database when scraped (not when the relay last ran), so they tell the truth while the relay is
stopped or failing.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from importlib import metadata
from typing import Callable

from nameko.extensions import DependencyProvider
from prometheus_client import (CollectorRegistry, Counter, Gauge, Histogram, GCCollector, PlatformCollector,
                               ProcessCollector, generate_latest)
from prometheus_client import CONTENT_TYPE_LATEST  # noqa: F401  (re-exported for HTTP)
from prometheus_client.core import GaugeMetricFamily

log = logging.getLogger(__name__)

_registries: dict[str, "ServiceMetrics"] = {}
_lock = threading.Lock()

PREFIX = "partnership"
DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class _OfService:
    """A metric whose first label is `service`, bound to one service: call sites name only the rest."""

    def __init__(self, metric, service: str):
        self._metric = metric
        self._service = service

    def labels(self, *values, **named):
        if named:
            return self._metric.labels(service=self._service, **named)
        return self._metric.labels(self._service, *values)

    def __getattr__(self, name):  # inc, set, observe on a metric with no other label
        return getattr(self._metric.labels(self._service), name)


class _OutboxCollector:
    """Reads the outbox backlog from the database at each scrape.

    A failed read (database down) yields no backlog samples and sets
    `partnership_outbox_readable` to 0, so an alert can tell "unknown" from "empty"."""

    def __init__(self, service: str):
        self.service = service
        self.source: Callable[[], tuple[int, float]] | None = None

    def describe(self):
        return []

    def collect(self):
        if self.source is None:
            return
        readable = GaugeMetricFamily(f"{PREFIX}_outbox_readable", "1 when the outbox could be read at this scrape.",
                                     labels=["service"])
        try:
            count, age = self.source()
        except Exception as exc:  # noqa: BLE001 - a scrape must not fail because the database did
            log.warning("outbox not readable at scrape: %s: %s", type(exc).__name__, exc)
            readable.add_metric([self.service], 0)
            yield readable
            return
        readable.add_metric([self.service], 1)
        yield readable
        backlog = GaugeMetricFamily(f"{PREFIX}_outbox_backlog_events", "Outbox rows not yet confirmed by the broker.",
                                    labels=["service"])
        backlog.add_metric([self.service], count)
        yield backlog
        oldest = GaugeMetricFamily(f"{PREFIX}_outbox_oldest_unsent_age_seconds",
                                   "Age of the oldest unsent outbox row (0 when empty).", labels=["service"])
        oldest.add_metric([self.service], age)
        yield oldest


class _ReadinessCollector:
    """`partnership_ready` (1 or 0) and `partnership_dependency_up` per dependency, checked at each scrape."""

    DEPENDENCIES = ("database", "broker")

    def __init__(self, service: str):
        self.service = service
        self.source: Callable[[], dict[str, str]] | None = None

    def describe(self):
        return []

    def collect(self):
        if self.source is None:
            return
        try:
            problems = self.source()
        except Exception as exc:  # noqa: BLE001 - a check that fails is a service that is not ready
            problems = {"check": f"{type(exc).__name__}: {exc}"}
        ready = GaugeMetricFamily(f"{PREFIX}_ready", "1 when the service's database and broker answer (as /ready).",
                                  labels=["service"])
        ready.add_metric([self.service], 0 if problems else 1)
        yield ready
        up = GaugeMetricFamily(f"{PREFIX}_dependency_up", "1 when the dependency answered at this scrape.",
                               labels=["service", "dependency"])
        for dependency in self.DEPENDENCIES:
            up.add_metric([self.service, dependency], 0 if dependency in problems else 1)
        yield up


def _version_of(service: str) -> str:
    for distribution in (f"partnership-{service}", service, "partnership-shared"):
        try:
            return metadata.version(distribution)
        except metadata.PackageNotFoundError:
            continue
    return "unknown"


class ServiceMetrics:
    """All metrics of one service; get it with `metrics_for(service_name)`."""

    def __init__(self, service: str):
        self.service = service
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        GCCollector(registry=r)

        def shared(kind, name, documentation, labels=(), **kw):
            return _OfService(kind(f"{PREFIX}_{name}", documentation, ["service", *labels], registry=r, **kw), service)

        build = Gauge(f"{PREFIX}_build_info", "Always 1: the service's version and the git revision it was built from.",
                      ["service", "version", "revision"], registry=r)
        build.labels(service, _version_of(service), os.environ.get("GIT_REVISION", "unknown")).set(1)
        self.entrypoint_calls = shared(
            Counter, "entrypoint_calls_total", "Entrypoint calls by kind and outcome (ok, client_error, error).",
            ("entrypoint", "kind", "outcome"))
        self.entrypoint_duration = shared(
            Histogram, "entrypoint_duration_seconds", "Time spent in an entrypoint's worker.",
            ("entrypoint", "kind"), buckets=DURATION_BUCKETS)
        self.http_responses = shared(
            Counter, "http_responses_total", "HTTP responses by entrypoint and status class (2xx, 4xx, 5xx).",
            ("entrypoint", "status"))
        self.events_published = shared(
            Counter, "events_published_total", "Events confirmed by the broker, by type.", ("type",))
        self.events_unroutable = shared(
            Counter, "events_unroutable_total",
            "Events the broker returned because no queue was bound; kept in the outbox.", ("type",))
        self.events_consumed = shared(
            Counter, "events_consumed_total",
            "Upstream events handled, by type and outcome (applied, duplicate, retried, dead_lettered).",
            ("type", "outcome"))
        self.events_duplicate = shared(
            Counter, "events_duplicate_total", "Deliveries recognised by the inbox and skipped.", ("type",))
        self.events_retried = shared(
            Counter, "events_retried_total", "Failed deliveries scheduled for another attempt.", ("type",))
        self.events_deferred = shared(
            Counter, "events_deferred_total", "Deliveries kept (not acked, not counted as an attempt) after a "
            "transient failure (database or broker outage) and tried again after a backoff.", ("type",))
        self.events_dead_lettered = shared(
            Counter, "events_dead_lettered_total", "Events moved to a dead-letter queue.", ("type", "reason"))
        self.handler_duration = shared(
            Histogram, "event_handler_duration_seconds", "Time to handle one upstream event.", ("type",),
            buckets=DURATION_BUCKETS)
        self.relay_errors = shared(
            Counter, "outbox_relay_errors_total", "Relay rounds that failed (broker unreachable and the like).")
        self.relay_errors.inc(0)  # exported from the start, so `increase()` sees the first error
        self._outbox = _OutboxCollector(service)
        r.register(self._outbox)
        self._readiness = _ReadinessCollector(service)
        r.register(self._readiness)
        self.job_runs = shared(
            Counter, "job_runs_total", "Runs of a long job (billing run, renewal round) by outcome.", ("job", "outcome"))
        self.job_progress = shared(
            Gauge, "job_progress_ratio", "Share of the running job's work done (0 to 1).", ("job",))
        self.job_last_success = shared(
            Gauge, "job_last_success_timestamp_seconds", "When a job last finished successfully (Unix time).",
            ("job",))
        self._gauges: dict[str, Gauge] = {}

    def watch_outbox(self, backlog: Callable[[], tuple[int, float]]) -> None:
        """Read the outbox with `backlog()` -> (unsent rows, oldest unsent age in seconds) at each scrape."""
        self._outbox.source = backlog

    def watch_readiness(self, problems: Callable[[], dict[str, str]]) -> None:
        """Export `partnership_ready` from `problems()` -> {dependency: error} (empty when ready) at each scrape."""
        self._readiness.source = problems

    def job_finished(self, job: str, outcome: str) -> None:
        """Count one run of `job` ("ok" or "failed"); a successful one also stamps its finishing time."""
        self.job_runs.labels(job, outcome).inc()
        if outcome == "ok":
            self.job_last_success.labels(job).set_to_current_time()

    def gauge(self, name: str, documentation: str, labels: tuple[str, ...] = ()) -> Gauge:
        """A business gauge `partnership_<service>_<name>`, created once."""
        full = f"{PREFIX}_{self.service}_{name}"
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


def _status_class(result, exc_info, outcome: str) -> str:
    """2xx/4xx/5xx of an HTTP entrypoint's answer: its status, or what nameko makes of an exception."""
    status = None
    if isinstance(result, tuple) and result and isinstance(result[0], int):
        status = result[0]
    elif hasattr(result, "status_code"):
        status = result.status_code
    elif exc_info is None:
        status = 200
    if status is None:
        return "4xx" if outcome == "client_error" else "5xx"
    return f"{status // 100}xx"


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
        if kind == "http":
            m.http_responses.labels(name, _status_class(result, exc_info, outcome)).inc()

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
