"""`ObservableService`: what every partnership service exposes besides its domain.

- At startup it waits for the broker, saying so, for at most
  `EVENTS.broker_startup_timeout_seconds`, then fails clearly (`shared.broker`).
- `GET /health`: the process is alive (always 200 while it serves HTTP).
- `GET /ready`: 200 when its own database and the broker answer, 503 naming
  the one that does not.
- `GET /metrics`: Prometheus text format (see `shared.metrics`).
- `POST /ops/quiesce`: stop consuming every reliable event handler's queue (the
  queues stay bound and keep collecting), so the relay can drain the outbox
  before a handover; HTTP keeps serving. Irreversible short of a restart.
- `GET /ops/outbox`: unsent outbox rows, their oldest age, whether each handler
  still consumes, and handler workers still running: `drained` is true once
  the service is quiesced, no handler worker runs and nothing is unsent.
A service subclasses it and declares `uow = Storage(...)`.
"""
from __future__ import annotations

import time

from kombu import Connection
from nameko.dependency_providers import Config
from nameko.extensions import DependencyProvider
from werkzeug.wrappers import Response

from shared.broker import BrokerAtStartup
from shared.broker_addresses import connect_any
from shared.config import check_production_settings, operator_of
from shared.consumer import ReliableEventHandler
from shared.http import http
from shared.logs import LogContext
from shared.metrics import CONTENT_TYPE_LATEST, Metrics, metrics_for
from shared.storage import Storage

_BROKER_CHECK_TTL = 2.0


class BrokerProbe:
    """Checks the broker answers, at most every couple of seconds per process."""

    def __init__(self):
        self._checked_at = 0.0
        self._error: str | None = None

    def error(self, amqp_uri: str) -> str | None:
        now = time.monotonic()
        if now - self._checked_at > _BROKER_CHECK_TTL:
            try:
                with Connection(amqp_uri, connect_timeout=2) as connection:
                    connect_any(connection)  # ready while one node of a cluster answers
                self._error = None
            except Exception as exc:  # noqa: BLE001 - reported, not raised
                self._error = f"{type(exc).__name__}: {exc}"
            self._checked_at = now
        return self._error


_broker = BrokerProbe()


class Operations(DependencyProvider):
    """The container seen from an HTTP worker: its reliable handlers, its outbox relay, its readiness."""

    def setup(self):
        # Readiness is exported at each scrape too (`partnership_ready`), so an alert sees what /ready sees.
        metrics_for(self.container.service_name).watch_readiness(self.problems)

    def get_dependency(self, worker_ctx):
        return self

    def problems(self) -> dict[str, str]:
        """What keeps the service from being ready: {"database"|"broker": error}; empty when ready."""
        problems = {}
        storage = self.storage()
        try:
            storage.database.ping()
        except Exception as exc:  # noqa: BLE001 - reported as not ready
            problems["database"] = f"{type(exc).__name__}: {exc}"
        broker_error = _broker.error(self.container.config["AMQP_URI"])
        if broker_error:
            problems["broker"] = broker_error
        return problems

    def handlers(self):
        return sorted((e for e in self.container.entrypoints if isinstance(e, ReliableEventHandler)),
                      key=lambda h: h.queue.name)

    def storage(self):
        return next((d for d in self.container.dependencies if isinstance(d, Storage)), None)

    def quiesce(self) -> list[str]:
        """Quiesce every reliable handler at once: each cancel waits for the consumer thread's next
        turn (about a second), so one after another a service with a dozen handlers took over 10 s."""
        from eventlet.greenpool import GreenPool

        handlers = self.handlers()
        done = list(GreenPool(max(1, len(handlers))).imap(lambda handler: handler.quiesce(), handlers))
        return [h.queue.name for h, newly in zip(handlers, done) if newly]

    def outbox(self) -> dict:
        handlers = self.handlers()
        running = sum(1 for ctx in list(self.container._worker_threads)
                      if isinstance(ctx.entrypoint, ReliableEventHandler))
        storage = self.storage()
        unsent, age = storage.relay.backlog() if storage is not None and storage.relay is not None else (0, 0.0)
        quiesced = bool(handlers) and all(h.quiesced for h in handlers)
        return {"unsent": unsent, "oldest_unsent_age_seconds": round(age, 1), "quiesced": quiesced,
                "handler_workers_running": running,
                "handlers": {h.queue.name: "quiesced" if h.quiesced else "consuming" for h in handlers},
                "drained": (quiesced or not handlers) and running == 0 and unsent == 0}


class ProductionSettings(DependencyProvider):
    """Refuses to start a production service on development defaults (see
    shared.config.check_production_settings); a service names its own extra required settings."""

    def __init__(self, *required: str):
        self.required = required

    def setup(self):
        check_production_settings(self.container.service_name, self.required)


class ObservableService:
    """Base class of the four services: health, readiness and metrics endpoints."""

    metrics = Metrics()
    config = Config()
    operations = Operations()
    broker_at_startup = BrokerAtStartup()  # waits for the broker in setup, bounded and logged
    log_context = LogContext()  # every log line names the service and the work's correlation id
    production_settings = ProductionSettings()  # billing adds its VAT and bank settings

    @http("GET", "/health")
    def health(self, request):
        return {"status": "alive", "service": self.name, "operator": operator_of(self.config)["name"]}

    @http("GET", "/ready")
    def ready(self, request):
        problems = self.operations.problems()
        if problems:
            return 503, {"status": "not_ready", "service": self.name, "problems": problems}
        return {"status": "ready", "service": self.name}

    @http("POST", "/ops/quiesce")
    def ops_quiesce(self, request):
        newly = self.operations.quiesce()
        return {"service": self.name, "quiesced_now": newly, **self.operations.outbox()}

    @http("GET", "/ops/outbox")
    def ops_outbox(self, request):
        return {"service": self.name, **self.operations.outbox()}

    @http("GET", "/metrics")
    def prometheus_metrics(self, request):
        return Response(metrics_for(self.name).exposition(), mimetype=None,
                        headers={"Content-Type": CONTENT_TYPE_LATEST})
