"""Handing one function (one service) to another operator, without loss.

The cut-over, in order (`partnership-ops handover` runs steps 1-5; see docs/handover.md):

0. Optionally (`--quiesce-url`), the running old instance stops consuming
   (`POST /ops/quiesce`: nameko cancels each reliable handler's consumer) and
   its own relay drains its outbox until `GET /ops/outbox` says `drained`.
1. The old instance stops (SIGTERM: nameko finishes its workers, acks what it
   committed and stops its relay). Its durable quorum queues stay bound and
   keep collecting every upstream event from then on.
2. Nothing consumes the service's handler queues any more: checked on the
   broker (consumer count 0 on every queue), refused otherwise.
3. The old outbox is drained to the broker with `OutboxRelay`, run here
   against the old database, until no row is unsent or the drain time is up;
   rows the broker still refuses (unroutable: no queue bound) stay unsent and
   travel in the archive, so the new instance publishes them.
4. Export (`partnership_ops.archive`): state, inbox, unsent outbox, revision.
5. Import into the new operator's empty database. In the same transaction the
   `function_handed_over` event is written to the new outbox, so the new
   instance publishes it exactly once, after the old operator's last events.
6. The new instance starts with its new `OPERATOR` configuration, migrates,
   publishes its outbox and consumes the backlog from the same queues (same
   broker), or from the queues a shovel fills (new broker: `partnership_ops.links`).

The event itself (`function_handed_over` v1: schema and example) is
`shared.handover`'s, since every service publishes it; this module builds it
and writes it to the new outbox.
"""
from __future__ import annotations

import dataclasses

import datetime as dt
import os
import signal
import time
from pathlib import Path
from typing import Any, Mapping

import pika
from sqlalchemy import MetaData

from partnership_ops import topology
from partnership_ops.archive import export_service, import_service, redacted
from shared.db import Database
from shared.envelope import Envelope
from shared.handover import EVENT_TYPE, PUBLISHED
from shared.messaging_tables import define_messaging_tables, utcnow
from shared.unit_of_work import outbox_row, take_sequences


class StillConsuming(Exception):
    """The old instance (or another) still consumes the service's queues."""


def handed_over_envelope(service: str, from_operator: str, to_operator: str, effective_date: dt.date) -> Envelope:
    payload = PUBLISHED.build(EVENT_TYPE, 1, {"function": service, "from_operator": from_operator,
                                              "to_operator": to_operator, "effective_date": effective_date})
    return Envelope.new(type=EVENT_TYPE, version=1, payload=payload, producer=service, operator=to_operator,
                        aggregate=f"function:{service}")


def outbox_writer(envelope: Envelope):
    """`extra_rows` for `import_service`: the event goes into the new outbox in the loading transaction."""

    def write(connection, tables) -> dict:
        sequence = take_sequences(connection, {envelope.aggregate: 1})[envelope.aggregate]
        connection.execute(tables["outbox"].insert(),
                           outbox_row(dataclasses.replace(envelope, sequence=sequence), utcnow()))
        return {"handover_event": {"event_id": envelope.event_id, **envelope.payload}}

    return write


# -- stopping the old instance ---------------------------------------------------------------------
def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:  # a stopped child its parent has not reaped yet is gone for our purpose
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state in ("Z", "X")
    except (OSError, IndexError):
        return False


def stop_process(pid: int, timeout: float = 30.0) -> dict:
    """SIGTERM the old instance and wait until it has exited (nameko stops gracefully on SIGTERM)."""
    started = time.monotonic()
    if _gone(pid):
        return {"pid": pid, "stopped": "already"}
    os.kill(pid, signal.SIGTERM)
    while time.monotonic() - started < timeout:
        if _gone(pid):
            return {"pid": pid, "stopped": "sigterm", "seconds": round(time.monotonic() - started, 1)}
        time.sleep(0.1)
    raise TimeoutError(f"process {pid} did not exit within {timeout:.0f}s of SIGTERM; stop it, then re-run")


def queue_consumers(amqp_uri: str, queues: list[str]) -> dict[str, dict]:
    """Consumers and ready messages per queue (a queue that does not exist is reported as such)."""
    found = {}
    connection = pika.BlockingConnection(topology.pika_parameters(amqp_uri))
    try:
        for queue in queues:
            channel = connection.channel()
            try:
                ok = channel.queue_declare(queue, passive=True).method
                found[queue] = {"consumers": ok.consumer_count, "messages": ok.message_count}
                channel.close()
            except pika.exceptions.ChannelClosedByBroker:
                found[queue] = {"consumers": 0, "messages": 0, "missing": True}
    finally:
        connection.close()
    return found


def assert_not_consuming(amqp_uri: str, queues: list[str], wait: float = 15.0) -> dict[str, dict]:
    """Wait (a connection closes asynchronously) until no queue has a consumer; else `StillConsuming`."""
    deadline = time.monotonic() + wait
    while True:
        state = queue_consumers(amqp_uri, queues)
        busy = {q: s["consumers"] for q, s in state.items() if s["consumers"]}
        if not busy:
            return state
        if time.monotonic() >= deadline:
            raise StillConsuming(f"still consumed: {busy}; stop the old instance before handing over")
        time.sleep(0.3)


# -- quiescing a running instance -----------------------------------------------------------------
QUIESCE_ANSWER_SECONDS = 60.0


def _http_json(method: str, url: str, timeout: float = 10.0) -> dict:
    import json
    import urllib.request

    # /ops/* needs a bearer token with the `operations` role (from the identity provider, e.g. a
    # client-credentials token), given to the tooling as PARTNERSHIP_OPS_TOKEN.
    token = os.environ.get("PARTNERSHIP_OPS_TOKEN", "").strip()
    request = urllib.request.Request(url, data=b"{}" if method == "POST" else None, method=method,
                                     headers={"Content-Type": "application/json",
                                              **({"Authorization": f"Bearer {token}"} if token else {})})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


def quiesce_instance(url: str, timeout: float = 30.0) -> dict:
    """Ask the running old instance to stop consuming (`POST /ops/quiesce`), then wait until its own
    relay has drained its outbox and no handler worker runs (`GET /ops/outbox` says `drained`).

    Its HTTP entrypoints keep serving, so it must still be stopped before the export. Not
    drained in time is reported, not refused: the stopped instance's outbox is drained next.
    """
    base = url.rstrip("/")
    started = time.monotonic()
    # The instance answers once every handler's consumer is cancelled, one after another (about a
    # second each in nameko): a dozen handlers outlast a 10 s read.
    first = _http_json("POST", f"{base}/ops/quiesce", timeout=max(timeout, QUIESCE_ANSWER_SECONDS))
    state = first
    while not state.get("drained") and time.monotonic() - started < timeout:
        time.sleep(0.2)
        state = _http_json("GET", f"{base}/ops/outbox")
    return {"url": base, "quiesced": first.get("quiesced_now", []), "drained": bool(state.get("drained")),
            "unsent": state.get("unsent"), "handler_workers_running": state.get("handler_workers_running"),
            "seconds": round(time.monotonic() - started, 1)}


# -- draining the old outbox -----------------------------------------------------------------------
def drain_outbox(service: str, database_url: str, amqp_uri: str, timeout: float = 30.0) -> dict:
    """Publish the stopped instance's unsent outbox with the service's own relay; report what is left.

    Rows waiting on a backoff are made due first. Rows the broker keeps
    returning (no queue bound for their type) are left unsent: they travel in
    the archive and the new instance publishes them.
    """
    from shared.config import events_settings
    from shared.metrics import metrics_for
    from shared.relay import OutboxRelay

    outbox, _ = define_messaging_tables(MetaData())
    database = Database(database_url)
    settings = events_settings({"EVENTS": {"relay_max_backoff_seconds": 1.0}})
    relay = OutboxRelay(service=service, database=database, outbox=outbox, amqp_uri=amqp_uri,
                        metrics=metrics_for(service), settings=settings)
    try:
        return relay.drain(timeout)
    finally:
        relay.close()
        database.dispose()


# -- the whole cut-over ----------------------------------------------------------------------------
def handover(*, service: str, from_database: str, from_amqp: str, to_database: str, archive: str | Path,
             from_operator: Mapping[str, Any], to_operator: str, effective_date: dt.date,
             handler_queues: list[str], stop_pid: int | None = None, drain_timeout: float = 30.0,
             quiesce_url: str | None = None) -> dict:
    """Steps 1-5 of the module docstring; returns a report of each.

    With `quiesce_url` (the old instance's HTTP address) the running instance first stops
    consuming and lets its own relay drain its outbox (`quiesce_instance`), then it is stopped.
    """
    report: dict[str, Any] = {"service": service, "from_operator": from_operator["name"],
                              "to_operator": to_operator, "effective_date": effective_date.isoformat()}
    if quiesce_url is not None:
        report["quiesce"] = quiesce_instance(quiesce_url, drain_timeout)
    if stop_pid is not None:
        report["stopped"] = stop_process(stop_pid)
    report["queues"] = assert_not_consuming(from_amqp, handler_queues)
    report["drain"] = drain_outbox(service, from_database, from_amqp, drain_timeout)
    manifest = export_service(service, from_database, archive, operator=from_operator)
    report["export"] = {"archive": str(archive), "from_database": redacted(from_database),
                        "alembic_revision": manifest["alembic_revision"], "row_counts": manifest["row_counts"]}
    envelope = handed_over_envelope(service, from_operator["name"], to_operator, effective_date)
    report["import"] = import_service(service, to_database, archive, extra_rows=outbox_writer(envelope))
    return report
