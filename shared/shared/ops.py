"""Operator commands for the event plumbing of one service.

    partnership-ops dead-letters  --config services/billing/config.yml --service billing.entrypoints.service:BillingService
    partnership-ops redeliver     --config ... --service ... [--queue QUEUE.dead] [--event-id ID ...] [--all]
    partnership-ops outbox        --config services/billing/config.yml

`dead-letters` lists every dead-lettered event of the service's handlers with
its reason, error, attempts and time, without consuming anything.
`redeliver` moves dead-lettered events back to the queue of the handler that
failed (and only that handler), with a fresh attempt count; each is removed
from the dead-letter queue only after the broker confirmed the redelivery.
`outbox` shows the unsent backlog, the age of the oldest unsent row and the
rows the broker returned or refused, with their last error.
"""
from __future__ import annotations

import argparse
import importlib
import inspect
import json
import sys

import pika
from sqlalchemy import MetaData, func, select

from shared.config import load_config
from shared.db import Database
from shared.messaging_tables import define_messaging_tables, utcnow
from shared.topology import dead_letter_queue_name


def handler_queues(service_path: str) -> list[str]:
    """Queue names of a service class's reliable handlers, e.g. `billing.entrypoints.service:BillingService`."""
    from shared.consumer import ReliableEventHandler
    from shared.topology import handler_queue_name

    module_name, _, class_name = service_path.partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    queues = []
    for method_name, method in inspect.getmembers(cls, inspect.isfunction):
        for entrypoint in getattr(method, "nameko_entrypoints", ()):
            if isinstance(entrypoint, ReliableEventHandler):
                queues.append(handler_queue_name(entrypoint.source_service, entrypoint.event_type, cls.name,
                                                 method_name))
    return sorted(queues)


def _channel(amqp_uri: str):
    connection = pika.BlockingConnection(pika.URLParameters(amqp_uri))
    return connection, connection.channel()


def list_dead_letters(amqp_uri: str, queues: list[str]) -> list[dict]:
    found = []
    connection, channel = _channel(amqp_uri)
    try:
        for queue in queues:
            dead = dead_letter_queue_name(queue)
            for _ in range(100000):
                method, properties, body = channel.basic_get(dead, auto_ack=False)
                if method is None:
                    break
                headers = dict(properties.headers or {})
                death = (headers.get("x-death") or [{}])[0]
                found.append({
                    "queue": dead, "event_id": properties.message_id, "type": properties.type,
                    "reason": headers.get("x-dead-letter-reason") or death.get("reason", "broker"),
                    "error": headers.get("x-error") or "dead-lettered by RabbitMQ (delivery limit)",
                    "attempts": headers.get("x-attempts") or headers.get("x-delivery-count"),
                    "dead_lettered_at": headers.get("x-dead-lettered-at"),
                })
            channel.close()  # returns everything browsed to its queue
            channel = connection.channel()
    finally:
        connection.close()
    return found


def redeliver(amqp_uri: str, queues: list[str], event_ids: set[str] | None) -> int:
    """Move dead letters back to their handler's queue; returns how many moved."""
    moved = 0
    connection, channel = _channel(amqp_uri)
    channel.confirm_delivery()
    try:
        for queue in queues:
            dead = dead_letter_queue_name(queue)
            depth = channel.queue_declare(dead, passive=True).method.message_count
            for _ in range(depth):
                method, properties, body = channel.basic_get(dead, auto_ack=False)
                if method is None:
                    break
                if event_ids is not None and properties.message_id not in event_ids:
                    channel.basic_nack(method.delivery_tag, requeue=True)
                    continue
                headers = {k: v for k, v in (properties.headers or {}).items()
                           if not k.startswith("x-") or k.startswith("x-event") or k in (
                               "x-producer", "x-operator", "x-correlation-id", "x-causation-id", "x-occurred-at")}
                headers["x-redelivered-from"] = dead
                properties.headers = headers
                # The default exchange routes by queue name: back to this handler only.
                channel.basic_publish("", queue, body, properties, mandatory=True)
                channel.basic_ack(method.delivery_tag)
                moved += 1
    finally:
        connection.close()
    return moved


def outbox_report(database_url: str) -> dict:
    outbox, _ = define_messaging_tables(MetaData())
    database = Database(database_url)
    try:
        with database.reader() as session:
            count, oldest = session.execute(
                select(func.count(), func.min(outbox.c.created_at)).where(outbox.c.sent_at.is_(None))).one()
            failing = session.execute(
                select(outbox.c.event_id, outbox.c.event_type, outbox.c.attempts, outbox.c.last_error,
                       outbox.c.next_attempt_at)
                .where(outbox.c.sent_at.is_(None), outbox.c.last_error.is_not(None))
                .order_by(outbox.c.id).limit(50)).all()
    finally:
        database.dispose()
    return {
        "unsent": int(count),
        "oldest_unsent_age_seconds": round((utcnow() - oldest).total_seconds(), 1) if oldest else 0.0,
        "failing": [{"event_id": r.event_id, "type": r.event_type, "attempts": r.attempts,
                     "last_error": r.last_error, "next_attempt_at": r.next_attempt_at.isoformat()} for r in failing],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="partnership-ops", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("dead-letters", "redeliver"):
        sub = commands.add_parser(name)
        sub.add_argument("--config", required=True)
        sub.add_argument("--service", required=True, help="module:Class of the service, for its handlers' queues")
        sub.add_argument("--queue", action="append", help="only this handler queue (repeatable)")
        if name == "redeliver":
            sub.add_argument("--event-id", action="append", help="only this event (repeatable)")
            sub.add_argument("--all", action="store_true", help="redeliver every dead letter of the queues")
    sub = commands.add_parser("outbox")
    sub.add_argument("--config", required=True)
    args = parser.parse_args(argv)
    config = load_config(args.config)
    if args.command == "outbox":
        print(json.dumps(outbox_report(config["DATABASE_URL"]), indent=2))
        return 0
    queues = args.queue or handler_queues(args.service)
    if args.command == "dead-letters":
        letters = list_dead_letters(config["AMQP_URI"], queues)
        print(json.dumps({"dead_letters": letters, "count": len(letters)}, indent=2, default=str))
        return 0
    if not args.all and not args.event_id:
        parser.error("redeliver needs --event-id ID (repeatable) or --all")
    moved = redeliver(config["AMQP_URI"], queues, None if args.all else set(args.event_id))
    print(json.dumps({"redelivered": moved}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
