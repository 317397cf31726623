"""`ObservableService`: what every partnership service exposes besides its domain.

- `GET /health`: the process is alive (always 200 while it serves HTTP).
- `GET /ready`: 200 when its own database and the broker answer, 503 naming
  the one that does not.
- `GET /metrics`: Prometheus text format (see `shared.metrics`).
A service subclasses it and declares `uow = Storage(...)`.
"""
from __future__ import annotations

import time

from kombu import Connection
from nameko.dependency_providers import Config
from werkzeug.wrappers import Response

from shared.config import operator_of
from shared.http import http
from shared.metrics import CONTENT_TYPE_LATEST, Metrics, metrics_for

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
                    connection.connect()
                self._error = None
            except Exception as exc:  # noqa: BLE001 - reported, not raised
                self._error = f"{type(exc).__name__}: {exc}"
            self._checked_at = now
        return self._error


_broker = BrokerProbe()


class ObservableService:
    """Base class of the four services: health, readiness and metrics endpoints."""

    metrics = Metrics()
    config = Config()

    @http("GET", "/health")
    def health(self, request):
        return {"status": "alive", "service": self.name, "operator": operator_of(self.config)["name"]}

    @http("GET", "/ready")
    def ready(self, request):
        problems = {}
        try:
            self.uow.database.ping()
        except Exception as exc:  # noqa: BLE001 - reported as not ready
            problems["database"] = f"{type(exc).__name__}: {exc}"
        broker_error = _broker.error(self.config["AMQP_URI"])
        if broker_error:
            problems["broker"] = broker_error
        if problems:
            return 503, {"status": "not_ready", "service": self.name, "problems": problems}
        return {"status": "ready", "service": self.name}

    @http("GET", "/metrics")
    def prometheus_metrics(self, request):
        return Response(metrics_for(self.name).exposition(), mimetype=None,
                        headers={"Content-Type": CONTENT_TYPE_LATEST})
