"""`Republisher`: publishes a consumer's retry and dead-letter copies, at least once.

Every copy is persistent, published with `mandatory` and confirmed by the broker within
`confirm_timeout` seconds; a copy that is nacked, returned as unroutable, or not confirmed
in time raises `RepublishFailed`, and the caller keeps the original message (never
acks it), so a hop never loses a message.

Copies go out over a small pool of connections (`size`, 4 by default): a publish takes
an idle connection, or opens one, and waits for its own confirm on it, so nothing
process-wide is held while the broker takes its time, and one stuck connection does not
stall the others. Waiting for a free connection is bounded too (`acquire_timeout`). A
connection that failed or timed out is closed, never reused (a late confirm on it cannot
be mistaken for another copy's).
"""
from __future__ import annotations

import logging
import socket
import threading
import time

import amqp
from kombu import Connection

from shared.broker_addresses import connect_any

log = logging.getLogger(__name__)

DEFAULT_CONFIRM_TIMEOUT_SECONDS = 10.0


class RepublishFailed(Exception):
    """The copy is not known to be in its queue: the original must be kept."""


class _ConfirmingChannel:
    """One connection with one confirming channel; used by one publish at a time."""

    def __init__(self, amqp_uri: str, connect_timeout: float, ssl: dict | None = None):
        self.connection = Connection(amqp_uri, connect_timeout=connect_timeout, ssl=ssl or False)
        connect_any(self.connection)  # the first node of a cluster's list that answers
        self.channel = self.connection.connection.channel()
        self.channel.confirm_select()
        self.channel.events["basic_ack"].add(self._on_ack)
        self.channel.events["basic_nack"].add(self._on_nack)
        self.channel.events["basic_return"].add(self._on_return)
        self._next_tag = 1
        self._waiting = 0
        self._outcome: str | None = None
        self._returned: str | None = None

    def _settles(self, delivery_tag: int, multiple: bool) -> bool:
        return delivery_tag == self._waiting or (multiple and delivery_tag >= self._waiting)

    def _on_ack(self, delivery_tag: int, multiple: bool) -> None:
        if self._settles(delivery_tag, multiple):
            self._outcome = "ack"

    def _on_nack(self, delivery_tag: int, multiple: bool) -> None:
        if self._settles(delivery_tag, multiple):
            self._outcome = "nack"

    def _on_return(self, exc, exchange, routing_key, message) -> None:
        self._returned = f"{getattr(exc, 'reply_text', exc)} (exchange {exchange!r}, routing key {routing_key!r})"

    def publish(self, body: bytes, *, exchange: str, routing_key: str, properties: dict, headers: dict,
                timeout: float) -> None:
        message = amqp.Message(body, application_headers=headers, delivery_mode=2, **properties)
        self._waiting, self._next_tag = self._next_tag, self._next_tag + 1
        self._outcome = self._returned = None
        self.channel.basic_publish(message, exchange=exchange, routing_key=routing_key, mandatory=True)
        deadline = time.monotonic() + timeout
        while self._outcome is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RepublishFailed(f"the broker did not confirm the copy in {timeout:g} s")
            try:
                self.connection.drain_events(timeout=min(remaining, 1.0))
            except socket.timeout:
                continue
        if self._returned is not None:  # a return always comes before its confirm
            raise RepublishFailed(f"returned as unroutable: {self._returned}")
        if self._outcome == "nack":
            raise RepublishFailed("nacked by the broker")

    def close(self) -> None:
        """Close politely (the broker answers Close-Ok; used for idle, healthy connections)."""
        try:
            self.connection.release()
        except Exception:  # noqa: BLE001 - the connection is being abandoned anyway
            pass

    def abandon(self) -> None:
        """Drop the socket without a word: a polite close would wait, unbounded, for a broker
        that stopped answering."""
        try:
            self.connection.collect()
        except Exception:  # noqa: BLE001 - the connection is being abandoned anyway
            pass


class Republisher:
    """See the module docstring. Thread-safe (green under eventlet's monkey patching)."""

    def __init__(self, amqp_uri: str, *, size: int = 4, confirm_timeout: float = DEFAULT_CONFIRM_TIMEOUT_SECONDS,
                 acquire_timeout: float | None = None, connect_timeout: float = 5.0, ssl: dict | None = None):
        self.amqp_uri = amqp_uri
        self.ssl = ssl
        self.size = size
        self.confirm_timeout = confirm_timeout
        self.acquire_timeout = acquire_timeout if acquire_timeout is not None else confirm_timeout + connect_timeout
        self.connect_timeout = connect_timeout
        self._cond = threading.Condition()
        self._idle: list[_ConfirmingChannel] = []
        self._open = 0

    def publish(self, body: bytes, *, exchange: str, routing_key: str, properties: dict, headers: dict) -> None:
        """Publish one copy and wait for its confirm; raises if it is not known to be queued."""
        for attempt in (1, 2):
            channel, reused = self._acquire()
            try:
                channel.publish(body, exchange=exchange, routing_key=routing_key, properties=properties,
                                headers=headers, timeout=self.confirm_timeout)
            except RepublishFailed:
                self._discard(channel)
                raise
            except Exception as exc:  # noqa: BLE001 - a broken connection: once more on a fresh one
                self._discard(channel)
                if attempt == 2 or not reused:
                    raise RepublishFailed(f"{type(exc).__name__}: {exc}") from exc
                continue
            self._release(channel)
            return

    def _acquire(self) -> tuple[_ConfirmingChannel, bool]:
        deadline = time.monotonic() + self.acquire_timeout
        with self._cond:
            while not self._idle and self._open >= self.size:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise RepublishFailed(f"no connection to the broker free in {self.acquire_timeout:g} s")
                self._cond.wait(remaining)
            if self._idle:
                return self._idle.pop(), True
            self._open += 1
        try:
            return _ConfirmingChannel(self.amqp_uri, self.connect_timeout, self.ssl), False
        except Exception as exc:  # noqa: BLE001 - broker unreachable
            with self._cond:
                self._open -= 1
                self._cond.notify()
            raise RepublishFailed(f"cannot connect to the broker: {type(exc).__name__}: {exc}") from exc

    def _release(self, channel: _ConfirmingChannel) -> None:
        with self._cond:
            self._idle.append(channel)
            self._cond.notify()

    def _discard(self, channel: _ConfirmingChannel) -> None:
        channel.abandon()
        with self._cond:
            self._open -= 1
            self._cond.notify()

    def close(self) -> None:
        with self._cond:
            idle, self._idle = self._idle, []
            self._open -= len(idle)
        for channel in idle:
            channel.close()


_republishers: dict[tuple[str, float], Republisher] = {}
_registry_lock = threading.Lock()


def republisher_for(amqp_uri: str, confirm_timeout: float = DEFAULT_CONFIRM_TIMEOUT_SECONDS,
                    ssl: dict | None = None) -> Republisher:
    """One republisher (one pool of connections) per broker and confirm timeout, per process; `ssl`:
    TLS options for an amqps:// broker (shared.tls), the same for every caller of one URI."""
    with _registry_lock:
        key = (amqp_uri, float(confirm_timeout))
        if key not in _republishers:
            _republishers[key] = Republisher(amqp_uri, confirm_timeout=confirm_timeout, ssl=ssl)
        return _republishers[key]
