"""A TCP proxy on 127.0.0.1 in front of the broker that slows or stalls what the broker sends.

`DelayingProxy(delay=1.5)` forwards client->broker bytes at once and holds every chunk
of broker->client bytes for `delay` seconds (order kept): publisher confirms, and
everything else the broker says, arrive late. `stall(n)` holds connection n's
broker->client bytes until `resume(n)`: a broker that never confirms, for one
connection only. Threads only; every wait is bounded and `close()` ends them all.
"""
from __future__ import annotations

import collections
import socket
import threading
import time

BROKER = ("127.0.0.1", 5672)
POLL = 0.1


class _Link:
    """One client connection and its upstream connection to the broker."""

    def __init__(self, proxy: "DelayingProxy", client: socket.socket):
        self.proxy = proxy
        self.client = client
        self.upstream = socket.create_connection(proxy.target, timeout=5)
        self.upstream.settimeout(POLL)
        self.client.settimeout(POLL)
        self.closed = threading.Event()
        self.flowing = threading.Event()
        self.flowing.set()
        self.pending: collections.deque[tuple[float, bytes]] = collections.deque()
        self.pending_changed = threading.Condition()
        self.bytes_up = 0
        self.bytes_down = 0
        self.threads = [threading.Thread(target=target, daemon=True)
                        for target in (self._client_to_broker, self._broker_to_queue, self._queue_to_client)]
        for thread in self.threads:
            thread.start()

    def _client_to_broker(self) -> None:
        while not self.closed.is_set():
            try:
                data = self.client.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                break
            if not data:
                break
            try:
                self.upstream.sendall(data)
            except OSError:
                break
            self.bytes_up += len(data)
        self.close()

    def _broker_to_queue(self) -> None:
        while not self.closed.is_set():
            try:
                data = self.upstream.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                break
            if not data:
                break
            with self.pending_changed:
                self.pending.append((time.monotonic() + self.proxy.delay, data))
                self.pending_changed.notify()
        # what the broker sent before closing still reaches the client, then the client is closed
        with self.pending_changed:
            self.pending.append((time.monotonic() + self.proxy.delay, b""))
            self.pending_changed.notify()

    def _queue_to_client(self) -> None:
        while not self.closed.is_set():
            with self.pending_changed:
                if not self.pending:
                    self.pending_changed.wait(POLL)
                    continue
                due, data = self.pending[0]
            wait = due - time.monotonic()
            if wait > 0:
                self.closed.wait(min(wait, POLL))
                continue
            if not self.flowing.wait(POLL):
                continue
            with self.pending_changed:
                self.pending.popleft()
            if not data:
                break
            try:
                self.client.sendall(data)
            except OSError:
                break
            self.bytes_down += len(data)
        self.close()

    def close(self) -> None:
        if self.closed.is_set():
            return
        self.closed.set()
        for sock in (self.client, self.upstream):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()


class DelayingProxy:
    """Listens on 127.0.0.1:`port` (a free one by default); use as a context manager."""

    def __init__(self, delay: float = 0.0, *, port: int = 0, target: tuple[str, int] = BROKER):
        self.delay = delay
        self.target = target
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", port))
        self.listener.listen(64)
        self.listener.settimeout(POLL)
        self.port = self.listener.getsockname()[1]
        self.links: list[_Link] = []
        self._closed = threading.Event()
        self._acceptor = threading.Thread(target=self._accept, daemon=True)
        self._acceptor.start()

    def amqp_uri(self, vhost: str = "") -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/{vhost}"

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                break
            try:
                self.links.append(_Link(self, client))
            except OSError:
                client.close()

    def stall(self, index: int) -> None:
        self.links[index].flowing.clear()

    def resume(self, index: int) -> None:
        self.links[index].flowing.set()

    def close(self) -> None:
        self._closed.set()
        self.listener.close()
        self._acceptor.join(5)
        for link in list(self.links):
            link.close()
        for link in list(self.links):
            for thread in link.threads:
                thread.join(5)

    def __enter__(self) -> "DelayingProxy":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
