"""Transient or permanent: what a handler's failure means for its message, and the outage gate.

- **Transient**: the failure says nothing about the message and passes by itself: the
  database is unreachable, restarting, failing over, locked by another process or
  out of connections; a socket or broker error; anything raised as (or from)
  `TransientFailure`. The message is kept (not acked, not copied) and tried again after
  a backoff, for as long as the outage lasts; it never counts as an attempt.
- **Permanent**: everything else (an invalid payload, a refused domain rule, a bug, a
  constraint the event breaks). Those go through the bounded retries to the dead-letter
  queue with the error recorded.

`OutageGate` pauses one handler during an outage: after a transient failure, new
messages of that handler wait at the gate instead of each hitting the database; one
message at a time (the probe) tries again after an exponential, capped, fully jittered
backoff, and the gate opens for all as soon as one attempt succeeds.
"""
from __future__ import annotations

import logging
import random
import sqlite3
import threading
import time
from dataclasses import dataclass
from typing import Callable

from sqlalchemy import exc as sa_exc

log = logging.getLogger(__name__)


class TransientFailure(Exception):
    """Raise this (or raise from it) when a handler fails for a reason that will pass by itself:
    its message is kept and tried again later, never dead-lettered for it."""


# SQLite reports contention and unreachable files as OperationalError; anything else it
# reports that way ("no such table", a syntax error) is a bug, hence permanent.
_SQLITE_TRANSIENT = ("database is locked", "database is busy", "database table is locked",
                     "unable to open database file", "disk i/o error")

# PostgreSQL error classes that describe the server, not the statement: connection
# exception, transaction rollback (serialization failure, deadlock), insufficient
# resources, operator intervention (shutdown, cannot connect now, query cancelled), system
# error; and 55P03 lock_not_available.
_PG_TRANSIENT_CLASSES = ("08", "40", "53", "57", "58")
_PG_TRANSIENT_CODES = ("55P03",)

_MAX_CHAIN = 8


def _sqlite_transient(error: BaseException) -> bool:
    text = str(error).lower()
    return any(marker in text for marker in _SQLITE_TRANSIENT)


def _postgres_transient(error: BaseException) -> bool | None:
    """True/False for a psycopg2 error, None if `error` is not one."""
    try:
        import psycopg2
    except ImportError:  # pragma: no cover - PostgreSQL support not installed
        return None
    if not isinstance(error, psycopg2.Error):
        return None
    code = getattr(error, "pgcode", None)
    if code is None:  # no server answer at all: refused, reset, closed, timed out
        return isinstance(error, (psycopg2.OperationalError, psycopg2.InterfaceError))
    return code.startswith(_PG_TRANSIENT_CLASSES) or code in _PG_TRANSIENT_CODES


def _transient_itself(error: BaseException) -> bool:
    if isinstance(error, TransientFailure):
        return True
    if isinstance(error, sa_exc.DBAPIError):
        if error.connection_invalidated:
            return True
        if isinstance(error, (sa_exc.OperationalError, sa_exc.InterfaceError)):
            original = error.orig
            if isinstance(original, sqlite3.Error):
                return _sqlite_transient(original)
            verdict = _postgres_transient(original) if original is not None else None
            return True if verdict is None else verdict  # another driver's, or no driver error at all
        return False
    if isinstance(error, (sa_exc.TimeoutError, sa_exc.DisconnectionError)):  # pool exhausted, dead connection
        return True
    if isinstance(error, sqlite3.OperationalError):
        return _sqlite_transient(error)
    verdict = _postgres_transient(error)
    if verdict is not None:
        return verdict
    if isinstance(error, OSError):  # ConnectionError, socket.timeout, refused, reset
        return True
    return _broker_error(error)


def _broker_error(error: BaseException) -> bool:
    from amqp.exceptions import RecoverableConnectionError
    from kombu.exceptions import OperationalError as KombuOperationalError

    return isinstance(error, (RecoverableConnectionError, KombuOperationalError))


def is_transient(error: BaseException) -> bool:
    """True if `error`, or an error it was raised from or while handling, is transient (see module doc)."""
    seen: set[int] = set()
    current: BaseException | None = error
    for _ in range(_MAX_CHAIN):
        if current is None or id(current) in seen:
            return False
        seen.add(id(current))
        if _transient_itself(current):
            return True
        current = current.__cause__ or current.__context__
    return False


def backoff_delay(step: int, *, initial: float, cap: float, rng: Callable[[], float] = random.random) -> float:
    """Full jitter: uniform in [0, min(cap, initial * 2**(step-1))) for step 1, 2, ..."""
    ceiling = min(cap, initial * (2 ** min(max(step, 1) - 1, 30)))
    return rng() * ceiling


@dataclass(frozen=True)
class Attempt:
    """One pass through the gate: the gate's epoch when it began, and whether it is the probe."""

    epoch: int
    probe: bool


class OutageGate:
    """Pauses one handler while its failures are transient (see module doc). Thread-safe; with
    eventlet's monkey patching its lock and condition are green, so waiting never blocks the hub.

    - `enter()` returns at once while the gate is open; while it is closed it waits until
      this caller may probe (the backoff has passed and no other probe runs), the gate
      opens, or `abandon()` says to give up or the gate is stopped (then it returns None).
      Each wait is at most `max_wait` seconds, so `abandon` is checked regularly.
    - `failed(attempt, error)`: a transient failure. An attempt that began before the gate
      last closed (it was already running) does not advance the backoff; any other closes
      the gate or moves it one step on, and is logged once per step.
    - `succeeded(attempt)`: opens the gate for everyone.
    - `release(attempt)`: the attempt ended without telling about the outage (a permanent
      failure, an abandoned message): if it was the probe, another waiter probes now.
    """

    def __init__(self, name: str, *, initial: float, cap: float, rng: Callable[[], float] = random.random,
                 clock: Callable[[], float] = time.monotonic, max_wait: float = 1.0,
                 logger: logging.Logger = log):
        self.name = name
        self.initial = initial
        self.cap = cap
        self._rng = rng
        self._clock = clock
        self._max_wait = max_wait
        self._log = logger
        self._cond = threading.Condition()
        self.epoch = 0
        self.step = 0
        self.closed_since: float | None = None
        self.next_probe_at = 0.0
        self.probing = False
        self.stopped = False

    @property
    def closed(self) -> bool:
        return self.closed_since is not None

    def enter(self, abandon: Callable[[], bool] = lambda: False) -> Attempt | None:
        if self.closed_since is None:
            return Attempt(self.epoch, False)
        with self._cond:
            while True:
                if self.closed_since is None:
                    return Attempt(self.epoch, False)
                if self.stopped or abandon():
                    return None
                now = self._clock()
                if not self.probing and now >= self.next_probe_at:
                    self.probing = True
                    return Attempt(self.epoch, True)
                wait = self._max_wait if self.probing else self.next_probe_at - now
                self._cond.wait(min(max(wait, 0.001), self._max_wait))

    def failed(self, attempt: Attempt, error: str = "") -> float | None:
        """Record a transient failure; returns the new backoff delay, or None if it did not advance."""
        with self._cond:
            if self.closed_since is not None and attempt.epoch != self.epoch:
                return None  # began before the gate closed: the outage is already known
            now = self._clock()
            if self.closed_since is None:
                self.closed_since = now
            self.step += 1
            self.epoch += 1
            delay = backoff_delay(self.step, initial=self.initial, cap=self.cap, rng=self._rng)
            self.next_probe_at = now + delay
            self.probing = False
            self._cond.notify_all()
            step, outage = self.step, now - self.closed_since
        self._log.warning("%s paused by a transient failure (step %d, outage %.1fs): next attempt in %.2fs: %s",
                          self.name, step, outage, delay, error)
        return delay

    def succeeded(self, attempt: Attempt) -> None:
        if self.closed_since is None:
            return
        with self._cond:
            if self.closed_since is None:
                return
            outage, steps = self._clock() - self.closed_since, self.step
            self.closed_since = None
            self.step = 0
            self.epoch += 1
            self.probing = False
            self._cond.notify_all()
        self._log.warning("%s resumed after an outage of %.1fs (%d backoff steps)", self.name, outage, steps)

    def release(self, attempt: Attempt | None) -> None:
        if attempt is None or not attempt.probe:
            return
        with self._cond:
            if self.probing and attempt.epoch == self.epoch:
                self.probing = False
                self.next_probe_at = self._clock()
                self._cond.notify_all()

    def stop(self) -> None:
        with self._cond:
            self.stopped = True
            self._cond.notify_all()
