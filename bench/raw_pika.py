"""Raw pika baseline: persistent publishes with confirms, and consume with ack, on one durable queue.

Used in-process by `bench.event_path` and, for the end-to-end pipeline, as two
processes: `python -m bench.raw_pika consume ...` and `python -m bench.raw_pika publish ...`.

- `publish_per_message`: `BlockingConnection` with `confirm_delivery()`: each
  `basic_publish` waits for its own confirm (what a naive synchronous publisher does).
- `publish_windowed`: `SelectConnection` keeping up to `window` messages unconfirmed,
  settling the broker's (often `multiple`) acks as they come (the best a single
  publisher does with confirms).
- `consume`: `BlockingConnection`, `basic_qos(prefetch_count)`, one `basic_ack` per message.

The message body and properties are those of a real envelope of the same size as
the outbox path's, so the broker does the same work per message.
"""
from __future__ import annotations

import argparse
import functools
import time

import pika
from pika.exceptions import UnroutableError

from bench.common import EVENT_TYPE, emit
from shared.envelope import Envelope


def sample_message() -> tuple[bytes, pika.BasicProperties]:
    envelope = Envelope.new(type=EVENT_TYPE, payload={"run": "raw", "seq": 123456, "committed_at": time.time()},
                            producer="benchsrc", operator="bench")
    props = envelope.amqp_properties()
    properties = pika.BasicProperties(
        content_type=props["content_type"], content_encoding=props["content_encoding"], delivery_mode=2,
        message_id=props["message_id"], type=props["type"], app_id=props["app_id"],
        correlation_id=props["correlation_id"], headers=props["application_headers"])
    return envelope.to_json().encode("utf-8"), properties


def declare_queue(amqp_uri: str, queue: str, queue_type: str = "classic", purge: bool = True) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(amqp_uri))
    try:
        channel = connection.channel()
        channel.queue_declare(queue, durable=True, arguments={"x-queue-type": queue_type})
        if purge:
            channel.queue_purge(queue)
    finally:
        connection.close()


def delete_queue(amqp_uri: str, queue: str) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(amqp_uri))
    try:
        connection.channel().queue_delete(queue)
    finally:
        connection.close()


def queue_counts(amqp_uri: str, queue: str) -> tuple[int, int] | None:
    """(messages, consumers) of a queue, or None if it does not exist."""
    connection = pika.BlockingConnection(pika.URLParameters(amqp_uri))
    try:
        channel = connection.channel()
        try:
            ok = channel.queue_declare(queue, passive=True)
        except pika.exceptions.ChannelClosedByBroker:
            return None
        return ok.method.message_count, ok.method.consumer_count
    finally:
        if connection.is_open:
            connection.close()


def publish_per_message(amqp_uri: str, queue: str, count: int, timeout: float) -> dict:
    body, properties = sample_message()
    connection = pika.BlockingConnection(pika.URLParameters(amqp_uri))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        deadline = time.monotonic() + timeout
        started = time.time()
        sent = 0
        for _ in range(count):
            try:  # blocks until this message is confirmed
                channel.basic_publish("", queue, body, properties, mandatory=True)
            except UnroutableError:
                raise RuntimeError(f"queue {queue} does not exist") from None
            sent += 1
            if time.monotonic() > deadline:
                break
        finished = time.time()
    finally:
        connection.close()
    return {"published": sent, "started": started, "finished": finished,
            "rate": sent / (finished - started), "complete": sent == count}


class WindowedPublisher:
    """Publishes `count` persistent messages keeping at most `window` unconfirmed."""

    def __init__(self, amqp_uri: str, queue: str, count: int, window: int, timeout: float):
        self.params = pika.URLParameters(amqp_uri)
        self.queue = queue
        self.count = count
        self.window = window
        self.timeout = timeout
        self.body, self.properties = sample_message()
        self.published = 0
        self.pending: set[int] = set()
        self.low = 1
        self.nacked = 0
        self.started = self.finished = None
        self.error: str | None = None
        self.connection = None
        self.channel = None

    def run(self) -> dict:
        self.connection = pika.SelectConnection(self.params, on_open_callback=self._on_open,
                                                on_open_error_callback=self._on_open_error,
                                                on_close_callback=self._on_closed)
        self.connection.ioloop.call_later(self.timeout, self._give_up)
        self.connection.ioloop.start()
        if self.error and self.finished is None:
            raise RuntimeError(self.error)
        confirmed = self.published - len(self.pending)
        end = self.finished or time.time()
        return {"published": self.published, "confirmed": confirmed, "nacked": self.nacked,
                "started": self.started, "finished": end, "rate": confirmed / (end - self.started),
                "complete": confirmed == self.count, "window": self.window}

    def _on_open(self, connection):
        connection.channel(on_open_callback=self._on_channel)

    def _on_open_error(self, _connection, exc):
        self.error = f"could not connect: {exc}"
        self.connection.ioloop.stop()

    def _on_closed(self, _connection, reason):
        if self.finished is None:
            self.error = f"connection closed: {reason}"
        self.connection.ioloop.stop()

    def _on_channel(self, channel):
        self.channel = channel
        channel.confirm_delivery(ack_nack_callback=self._on_confirm, callback=self._on_confirm_mode)

    def _on_confirm_mode(self, _frame):
        self.started = time.time()
        self._publish_more()

    def _publish_more(self):
        while self.published < self.count and len(self.pending) < self.window:
            self.channel.basic_publish("", self.queue, self.body, self.properties, mandatory=True)
            self.published += 1
            self.pending.add(self.published)

    def _on_confirm(self, frame):
        method = frame.method
        if isinstance(method, pika.spec.Basic.Nack):
            self.nacked += 1
        tag = method.delivery_tag
        if method.multiple:
            for t in range(self.low, tag + 1):
                self.pending.discard(t)
            self.low = max(self.low, tag + 1)
        else:
            self.pending.discard(tag)
        if self.published >= self.count and not self.pending:
            self.finished = time.time()
            self.connection.close()
        else:
            self._publish_more()

    def _give_up(self):
        if self.finished is None:
            self.error = f"timed out after {self.timeout:.0f}s"
            self.finished = time.time()
            self.connection.close()


def publish_windowed(amqp_uri: str, queue: str, count: int, window: int, timeout: float) -> dict:
    return WindowedPublisher(amqp_uri, queue, count, window, timeout).run()


def consume(amqp_uri: str, queue: str, count: int, prefetch: int, timeout: float, ready=None) -> dict:
    """Consume and ack `count` messages (one ack each); `ready()` is called once consuming."""
    connection = pika.BlockingConnection(pika.URLParameters(amqp_uri))
    state = {"n": 0, "first": None, "last": None}
    try:
        channel = connection.channel()
        channel.basic_qos(prefetch_count=prefetch)

        def on_message(ch, method, _properties, _body):
            ch.basic_ack(method.delivery_tag)
            state["n"] += 1
            now = time.time()
            if state["first"] is None:
                state["first"] = now
            state["last"] = now

        tag = channel.basic_consume(queue, on_message)
        subscribed = time.time()
        if ready is not None:
            ready()
        deadline = time.monotonic() + timeout
        while state["n"] < count and time.monotonic() < deadline:
            connection.process_data_events(time_limit=0.2)
        channel.basic_cancel(tag)
    finally:
        if connection.is_open:
            connection.close()
    n, first, last = state["n"], state["first"], state["last"]
    return {"consumed": n, "subscribed": subscribed, "first": first, "last": last,
            "rate": n / (last - subscribed) if n else None, "complete": n >= count, "prefetch": prefetch}


def main() -> None:
    parser = argparse.ArgumentParser(description="one side of the raw pika end-to-end pipeline")
    parser.add_argument("role", choices=("publish", "consume"))
    parser.add_argument("--amqp", required=True)
    parser.add_argument("--queue", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--window", type=int, default=0, help="publish: 0 = one confirm per message")
    parser.add_argument("--prefetch", type=int, default=200)
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args()
    if args.role == "consume":
        ready = functools.partial(print, "READY", flush=True)
        emit(consume(args.amqp, args.queue, args.count, args.prefetch, args.timeout, ready=ready))
    elif args.window > 0:
        emit(publish_windowed(args.amqp, args.queue, args.count, args.window, args.timeout))
    else:
        emit(publish_per_message(args.amqp, args.queue, args.count, args.timeout))


if __name__ == "__main__":
    main()
