"""Fault-injection helpers: direct counts in a service's own database, hand-made events
published with plain pika, dead-letter queue inspection. (A broker restart is the
`private_broker` fixture's `restart()`, tests/brokers.py: never the shared broker.)"""
from __future__ import annotations

import datetime as dt
import json
import uuid

import pika
import sqlalchemy as sa

from shared.topology import routing_key


def count(database_url: str, table: str, where: str = "") -> int:
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as connection:
            return connection.execute(sa.text(f"SELECT count(*) FROM {table} {where}")).scalar_one()
    finally:
        engine.dispose()


def envelope(event_type: str, payload: dict, *, producer: str, event_id: str | None = None, version: int = 1):
    event_id = event_id or str(uuid.uuid4())
    return {
        "event_id": event_id, "type": event_type, "version": version,
        "occurred_at": dt.datetime.now(dt.timezone.utc).isoformat().replace("+00:00", "Z"),
        "producer": producer, "operator": "fault-injection", "correlation_id": event_id, "causation_id": None,
        "payload": payload,
    }


def pika_parameters(amqp_uri: str) -> pika.URLParameters:
    return pika.URLParameters(amqp_uri)


def publish_raw(amqp_uri: str, exchange: str, event_type: str, body: bytes | str | dict, *, version: int = 1,
                message_id: str | None = None, content_type: str = "application/json") -> None:
    """Publish like a foreign producer would (plain pika, persistent, confirmed), with the routing key
    of `event_type` at `version` (`<type>.v<version>`), whatever the body holds."""
    if isinstance(body, dict):
        message_id = message_id or body.get("event_id")
        body = json.dumps(body)
    connection = pika.BlockingConnection(pika_parameters(amqp_uri))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        channel.basic_publish(exchange, routing_key(event_type, version),
                              body.encode() if isinstance(body, str) else body,
                              pika.BasicProperties(content_type=content_type, delivery_mode=2,
                                                   message_id=message_id, type=event_type),
                              mandatory=True)
    finally:
        connection.close()


def queue_messages(amqp_uri: str, queue: str) -> list[tuple[dict, bytes]]:
    """Browse a queue without consuming it: (headers, body) of each message."""
    connection = pika.BlockingConnection(pika_parameters(amqp_uri))
    found = []
    try:
        channel = connection.channel()
        for _ in range(10000):
            method, properties, body = channel.basic_get(queue, auto_ack=False)
            if method is None:
                break
            found.append((dict(properties.headers or {}), body))
        channel.close()  # unacked messages go back to the queue
    finally:
        connection.close()
    return found


def purge(amqp_uri: str, queue: str) -> int:
    connection = pika.BlockingConnection(pika_parameters(amqp_uri))
    try:
        return connection.channel().queue_purge(queue).method.message_count
    finally:
        connection.close()


def queue_consumers(amqp_uri: str, queue: str) -> int:
    connection = pika.BlockingConnection(pika_parameters(amqp_uri))
    try:
        return connection.channel().queue_declare(queue, passive=True).method.consumer_count
    finally:
        connection.close()


def queue_depth(amqp_uri: str, queue: str) -> int:
    connection = pika.BlockingConnection(pika_parameters(amqp_uri))
    try:
        return connection.channel().queue_declare(queue, passive=True).method.message_count
    finally:
        connection.close()
