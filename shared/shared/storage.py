"""`Storage`: the dependency provider that gives a nameko service its database.

On container setup it connects to `DATABASE_URL` and applies the service's
Alembic migrations; on start it runs the outbox relay in a managed green
thread; on stop it lets the relay finish its round. Workers see
`self.uow` (a `UnitsOfWork`): `with self.uow() as uow: ...; uow.commit()`.
A unit of work opened by an event handler's worker is bound to that event
(inbox, correlation and causation), one opened by a batched handler's worker to
its batch (`shared.batch_unit_of_work`), one opened by an HTTP worker carries the
request's correlation id.
"""
from __future__ import annotations

import logging

from nameko.extensions import DependencyProvider
from sqlalchemy import MetaData

from shared.batch_unit_of_work import BatchUnitsOfWork, EventBatch
from shared.config import events_settings, operator_of
from shared.db import Database
from shared.envelope import PayloadSchemas, ReceivedEvent
from shared.idempotency import IdempotencyKeys
from shared.messaging_tables import define_messaging_tables
from shared.metrics import metrics_for
from shared.relay import OutboxRelay
from shared.tls import amqp_ssl_of
from shared.unit_of_work import Origin, OutboxSignal, Producer, UnitsOfWork

log = logging.getLogger(__name__)


class SchemaNotAtHead(RuntimeError):
    """The service must not start on a database its migrations have not reached."""


def migrate_on_start(config) -> bool:
    """MIGRATE_ON_START (default true, as `make run` wants): false where a migration job runs first."""
    value = config.get("MIGRATE_ON_START", True)
    return value if isinstance(value, bool) else str(value).strip().lower() not in ("false", "0", "no", "off")


class Storage(DependencyProvider):
    """The service's own database, unit of work, inbox and outbox relay."""

    def __init__(self, *, migrations: str, published: PayloadSchemas, outbox=None, inbox=None,
                 idempotency_keys=None):
        """`idempotency_keys`: the service's `idempotency_keys` table, when it has routes declared
        `idempotent=True` (shared.idempotency)."""
        self.migrations = migrations
        self.idempotency_keys = idempotency_keys
        self.idempotency: IdempotencyKeys | None = None
        self.published = published
        if outbox is None or inbox is None:
            outbox, inbox = define_messaging_tables(MetaData())
        self.outbox, self.inbox = outbox, inbox
        self.database: Database | None = None
        self.relay: OutboxRelay | None = None

    def setup(self):
        config = self.container.config
        service = self.container.service_name
        self.database = Database(config["DATABASE_URL"])
        if migrate_on_start(config):
            self.database.upgrade(self.migrations)
        else:
            # Production: a migration job ran `partnership-ops migrate` before the rollout.
            current, head = self.database.revisions(self.migrations)
            if current != head:
                raise SchemaNotAtHead(
                    f"{service}: the database is at migration {current or 'none'} and this code needs {head}; "
                    f"run `partnership-ops migrate --service {service}` (the migration job) first, or set "
                    "MIGRATE_ON_START=true")
        if self.idempotency_keys is not None:
            self.idempotency = IdempotencyKeys(self.database, self.idempotency_keys)
        self.producer = Producer(service=service, operator=operator_of(config)["name"], schemas=self.published)
        self.signal = OutboxSignal()
        self.relay = OutboxRelay(service=service, database=self.database, outbox=self.outbox,
                                 amqp_uri=config["AMQP_URI"], ssl=amqp_ssl_of(config), metrics=metrics_for(service),
                                 settings=events_settings(config), signal=self.signal)
        # Read at each scrape, not by the relay: the gauges stay true while the relay is stopped.
        metrics_for(service).watch_outbox(self.relay.backlog)
        self._relay_thread = None
        faults = config.get("FAULTS") or {}
        self.delay_before_commit = float(faults.get("delay_before_commit_seconds") or 0)
        self.relay_paused = bool(faults.get("relay_paused"))

    def start(self):
        if self.relay_paused:
            log.warning("FAULTS.relay_paused: the outbox relay of %s is not started", self.container.service_name)
            return
        self._relay_thread = self.container.spawn_managed_thread(self.relay.run, identifier="outbox_relay")

    def stop(self):
        if self.relay is not None:
            self.relay.stopping = True
            self.signal.notify()
        if self._relay_thread is not None:
            try:
                self._relay_thread.wait()
            except Exception:  # noqa: BLE001 - stopping; the error was logged by the relay
                pass
        if self.database is not None:
            self.database.dispose()

    def kill(self):
        if self.database is not None:
            self.database.dispose()

    def get_dependency(self, worker_ctx):
        if worker_ctx.args and isinstance(worker_ctx.args[0], EventBatch):  # a batched handler's worker
            return BatchUnitsOfWork(self.database, self.producer, self.outbox, self.inbox, worker_ctx.args[0],
                                    self.signal.notify, self.delay_before_commit)
        event = worker_ctx.args[0] if worker_ctx.args and isinstance(worker_ctx.args[0], ReceivedEvent) else None
        origin = Origin(correlation_id=worker_ctx.data.get("correlation_id") or worker_ctx.call_id, event=event)
        return UnitsOfWork(self.database, self.producer, self.outbox, self.inbox, origin, self.signal.notify,
                           self.delay_before_commit)
