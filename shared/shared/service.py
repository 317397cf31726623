"""`ObservableService`: what every partnership service exposes besides its domain.

- At startup it waits for the broker, saying so, for at most
  `EVENTS.broker_startup_timeout_seconds`, then fails clearly (`shared.broker`).
- `GET /health`: the process is alive (always 200 while it serves HTTP).
- `GET /ready`: 200 when its own database and the broker answer, 503 naming
  the one that does not.
- `GET /metrics`: Prometheus text format (see `shared.metrics`).
- `GET /openapi.json`: the OpenAPI 3 document of the service's routes (`shared.openapi`), any role.
- `POST /ops/quiesce`: stop consuming every reliable event handler's queue (the
  queues stay bound and keep collecting), so the relay can drain the outbox
  before a handover; HTTP keeps serving. Irreversible short of a restart.
- `GET /ops/outbox`: unsent outbox rows, their oldest age, whether each handler
  still consumes, and handler workers still running: `drained` is true once
  the service is quiesced, no handler worker runs and nothing is unsent.
Every other route needs a bearer token and a role (`shared.auth`); `/ops/*` needs `operations`,
`/metrics` the scrape credential. A service subclasses it, declares `uow = Storage(...)` and, so
that MAT staff reach the schools of their MAT, `authentication = Authentication(mat_of=...)`.
"""
from __future__ import annotations

import datetime as dt
import logging
import time
from typing import Callable

from kombu import Connection
from marshmallow import RAISE, Schema, fields, validate
from nameko.dependency_providers import Config
from nameko.extensions import DependencyProvider
from werkzeug.wrappers import Response

from shared import audit, auth
from shared.broker import BrokerAtStartup
from shared.broker_addresses import connect_any
from shared.config import check_production_settings, operator_of
from shared.consumer import ReliableEventHandler
from shared.http import http
from shared.logs import LogContext
from shared.metrics import CONTENT_TYPE_LATEST, Metrics, metrics_for
from shared.storage import Storage
from shared.tls import amqp_ssl_of

_BROKER_CHECK_TTL = 2.0


class BrokerProbe:
    """Checks the broker answers, at most every couple of seconds per process."""

    def __init__(self):
        self._checked_at = 0.0
        self._error: str | None = None

    def error(self, amqp_uri: str, ssl: dict | None = None) -> str | None:
        now = time.monotonic()
        if now - self._checked_at > _BROKER_CHECK_TTL:
            try:
                with Connection(amqp_uri, connect_timeout=2, ssl=ssl or False) as connection:
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
        broker_error = _broker.error(self.container.config["AMQP_URI"], amqp_ssl_of(self.container.config))
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


class Authentication(DependencyProvider):
    """The container's token settings and verifier (one key cache per process), and what the HTTP
    entrypoint needs for object-level checks: a read session and `mat_of(session, urn, on)`, the MAT
    a school belonged to on a date as this service learnt it from membership's events."""

    def __init__(self, mat_of: Callable[..., str | None] | None = None, audit=None):
        self._mat_of = mat_of
        self.audit_table = audit  # the service's `audit_log` (shared.audit); None: no trail
        self.settings: auth.AuthSettings | None = None
        self.verifier: auth.TokenVerifier | None = None

    def setup(self):
        # Refuses at start settings that would accept forged tokens, or the development issuer
        # without AUTH_DEVELOPMENT=1.
        self.settings = auth.AuthSettings.from_config(self.container.config)
        self.verifier = auth.TokenVerifier(self.settings)
        if not self.settings.configured:
            logging.getLogger(__name__).warning(
                "no token issuer configured (AUTH_ISSUER, AUTH_AUDIENCE): every route but /health and "
                "/ready answers 401")

    def get_dependency(self, worker_ctx):
        return self

    def _database(self):
        return next((d for d in self.container.dependencies if isinstance(d, Storage)), None).database

    def reader(self):
        return self._database().reader()

    def record(self, **entry) -> None:
        """Append to the audit trail (shared.audit.record), when this service keeps one."""
        if self.audit_table is not None:
            audit.record(self._database(), self.audit_table, **entry)

    def mat_of(self, session, urn: str, on: dt.date) -> str | None:
        return self._mat_of(session, urn, on) if self._mat_of is not None else None


class AuditQuery(Schema):
    """`GET /audit`: by object id or by person."""

    class Meta:
        unknown = RAISE

    object_id = fields.String(validate=validate.Length(min=1, max=100))
    subject = fields.String(validate=validate.Length(min=1, max=200))


class ObservableService:
    """Base class of the four services: health, readiness and metrics endpoints."""

    metrics = Metrics()
    config = Config()
    operations = Operations()
    broker_at_startup = BrokerAtStartup()  # waits for the broker in setup, bounded and logged
    log_context = LogContext()  # every log line names the service and the work's correlation id
    production_settings = ProductionSettings()  # billing adds its VAT and bank settings
    authentication = Authentication()  # a service with MAT-owned objects passes its own `mat_of`

    @http("GET", "/health", public=True)
    def health(self, request):
        return {"status": "alive", "service": self.name, "operator": operator_of(self.config)["name"]}

    @http("GET", "/ready", public=True, responses={200: "done", 503: "not ready"})
    def ready(self, request):
        problems = self.operations.problems()
        if problems:
            return 503, {"status": "not_ready", "service": self.name, "problems": problems}
        return {"status": "ready", "service": self.name}

    @http("POST", "/ops/quiesce", allow=(auth.OPERATIONS,))
    def ops_quiesce(self, request):
        newly = self.operations.quiesce()
        return {"service": self.name, "quiesced_now": newly, **self.operations.outbox()}

    @http("GET", "/ops/outbox", allow=(auth.OPERATIONS,))
    def ops_outbox(self, request):
        return {"service": self.name, **self.operations.outbox()}

    @http("GET", "/audit", allow=(auth.OPERATIONS, auth.FINANCE), query=AuditQuery)
    def audit_trail(self, request):
        """The audit trail by object id (`?object_id=`) or by person (`?subject=`), newest first (500 at most)."""
        query = request.query_args
        table = self.authentication.audit_table
        if table is None:
            return {"entries": [], "count": 0}
        with self.authentication.reader() as session:
            entries = audit.query(session, table, object_id=query.get("object_id"), subject=query.get("subject"))
        return {"entries": entries, "count": len(entries)}

    @http("GET", "/openapi.json", allow=tuple(auth.ANYONE))
    def openapi_document(self, request):
        """This service's OpenAPI 3 document, generated from its route declarations (`shared.openapi`)."""
        from shared import openapi

        return openapi.cached_document(type(self))

    @http("GET", "/metrics", scrape=True, produces="text/plain")
    def prometheus_metrics(self, request):
        return Response(metrics_for(self.name).exposition(), mimetype=None,
                        headers={"Content-Type": CONTENT_TYPE_LATEST})
