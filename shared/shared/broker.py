"""Waiting for the broker at startup: bounded, logged, and a clear failure at the end.

A service that starts before RabbitMQ (a fresh `docker compose up`, a broker being
restarted) waits for it, saying on every try what it waits for and for how much longer;
after `EVENTS.broker_startup_timeout_seconds` (120 s by default) it fails with an error
that names the broker and the last failure, so `nameko run` exits instead of hanging.
A refusal (wrong credentials, unknown virtual host) fails at once: waiting cannot fix it.

`BrokerAtStartup` is the dependency provider that does this in its `setup()`; every
`ObservableService` has one. Concurrent callers in one process share one wait.
"""
from __future__ import annotations

import functools
import logging
import ssl as ssl_module
import threading
import time

from kombu import Connection
from nameko.extensions import DependencyProvider

from shared.broker_addresses import connect_any, masked
from shared.config import events_settings
from shared.tls import amqp_ssl_of, apply_amqp_tls

log = logging.getLogger(__name__)

FIRST_INTERVAL = 0.5
MAX_INTERVAL = 5.0


class BrokerUnavailable(RuntimeError):
    """No broker answered within the startup timeout, or it refused the connection."""


def _safe_uri(amqp_uri: str) -> str:
    return masked(amqp_uri)  # every node of a cluster's list, passwords masked


def _try_connect(amqp_uri: str, connect_timeout: float, ssl: dict | None = None) -> None:
    with Connection(amqp_uri, connect_timeout=connect_timeout, ssl=ssl or False) as connection:
        connect_any(connection)  # one try per node of a cluster's list


def _certificate_error(exc: BaseException) -> ssl_module.SSLCertVerificationError | None:
    """The certificate verification failure behind `exc` (kombu re-raises it as its own error), if any."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, ssl_module.SSLCertVerificationError):
            return exc
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return None


class _Wait:
    def __init__(self):
        self.done = threading.Event()
        self.error: BaseException | None = None


_waits: dict[str, _Wait] = {}
_reachable: set[str] = set()
_lock = threading.Lock()


def wait_for_broker(amqp_uri: str, timeout: float, *, logger: logging.Logger = log,
                    connect=_try_connect, ssl: dict | None = None) -> None:
    """Return once the broker at `amqp_uri` accepts a connection; raise `BrokerUnavailable` after
    `timeout` seconds of trying (or at once if it refuses, or its TLS certificate does not verify).
    Each try is logged. `ssl`: TLS options for an amqps:// broker (shared.tls)."""
    if ssl and connect is _try_connect:
        connect = functools.partial(_try_connect, ssl=ssl)
    with _lock:
        if amqp_uri in _reachable:
            return
        wait = _waits.get(amqp_uri)
        leader = wait is None
        if leader:
            wait = _waits[amqp_uri] = _Wait()
    if not leader:
        if not wait.done.wait(timeout + 2 * MAX_INTERVAL):
            raise BrokerUnavailable(f"no broker answered at {_safe_uri(amqp_uri)} in {timeout:g} s")
        if wait.error is not None:
            raise BrokerUnavailable(str(wait.error)) from wait.error
        return
    try:
        _wait_as_leader(amqp_uri, timeout, logger, connect)
        with _lock:
            _reachable.add(amqp_uri)
    except BaseException as exc:
        wait.error = exc
        raise
    finally:
        with _lock:
            _waits.pop(amqp_uri, None)
        wait.done.set()


def _wait_as_leader(amqp_uri: str, timeout: float, logger: logging.Logger, connect) -> None:
    from amqp.exceptions import AccessRefused, IrrecoverableConnectionError

    shown = _safe_uri(amqp_uri)
    started = time.monotonic()
    deadline = started + timeout
    interval = FIRST_INTERVAL
    for attempt in range(1, 100_000):  # ends by the deadline long before the count
        remaining = deadline - time.monotonic()
        try:
            connect(amqp_uri, max(0.5, min(5.0, remaining)))
        except (AccessRefused, IrrecoverableConnectionError) as exc:
            message = f"the broker at {shown} refused the connection: {type(exc).__name__}: {exc}"
            logger.error(message)
            raise BrokerUnavailable(message) from exc
        except Exception as exc:  # noqa: BLE001 - unreachable, reset, timed out: wait and try again
            certificate = _certificate_error(exc)
            if certificate is not None:
                # A certificate that does not verify now will not verify later: say so and stop.
                message = (f"the broker at {shown} presented a TLS certificate that does not verify "
                           f"({certificate.verify_message}: {certificate}); check AMQP_SSL_CA_FILE (the CA that "
                           "signed the broker's certificate) and that the certificate names the host in AMQP_URI")
                logger.error(message)
                raise BrokerUnavailable(message) from exc
            error = f"{type(exc).__name__}: {exc}"
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                message = (f"no broker answered at {shown} in {timeout:g} s ({attempt} tries; last: {error}); "
                           "check AMQP_URI and that RabbitMQ runs, or raise EVENTS.broker_startup_timeout_seconds")
                logger.error(message)
                raise BrokerUnavailable(message) from exc
            pause = min(interval, remaining)
            logger.warning("waiting for the broker at %s: try %d failed (%s); next try in %.1f s, giving up in %.0f s",
                           shown, attempt, error, pause, remaining)
            time.sleep(pause)
            interval = min(interval * 2, MAX_INTERVAL)
            continue
        if attempt > 1:
            logger.warning("the broker at %s answered after %.1f s (%d tries)", shown, time.monotonic() - started,
                           attempt)
        return
    raise BrokerUnavailable(f"no broker answered at {shown}")  # pragma: no cover - the deadline comes first


def broker_startup_timeout(config) -> float:
    return events_settings(config)["broker_startup_timeout_seconds"]


class BrokerAtStartup(DependencyProvider):
    """Waits in `setup()` for the service's broker (see the module docstring); gives workers nothing."""

    def bind(self, container, attr_name):
        # nameko binds every extension of a container before it sets any up: nameko's own consumers and
        # publishers read AMQP_SSL, so the TLS options an amqps:// AMQP_URI implies are put there now.
        apply_amqp_tls(container.config)
        return super().bind(container, attr_name)

    def setup(self):
        config = self.container.config
        wait_for_broker(config["AMQP_URI"], broker_startup_timeout(config), ssl=amqp_ssl_of(config))
