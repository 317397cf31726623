"""Transient or permanent, and the outage gate that pauses a handler while its failures are transient."""
from __future__ import annotations

import logging
import os
import socket
import sqlite3
import threading
import time

import pytest
import sqlalchemy as sa
from marshmallow import ValidationError
from sqlalchemy import exc as sa_exc

from shared.failures import Attempt, OutageGate, TransientFailure, backoff_delay, is_transient
from shared.unit_of_work import EventAlreadyHandled

PG_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def raised(action) -> BaseException:
    try:
        action()
    except BaseException as exc:  # noqa: BLE001 - the test inspects it
        return exc
    raise AssertionError("nothing was raised")


# -- real failures, as the services meet them -----------------------------------------------------------
def test_sqlite_locked_by_another_connection_is_transient(tmp_path):
    path = tmp_path / "locked.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x INTEGER)")
    holder.execute("BEGIN EXCLUSIVE")
    engine = sa.create_engine(f"sqlite:///{path}", connect_args={"timeout": 0})
    try:
        error = raised(lambda: engine.connect().exec_driver_sql("INSERT INTO t VALUES (1)"))
    finally:
        engine.dispose()
        holder.execute("ROLLBACK")
        holder.close()
    assert isinstance(error, sa_exc.OperationalError) and "database is locked" in str(error)
    assert is_transient(error)


def test_sqlite_bugs_and_refusals_are_permanent(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'bugs.db'}")
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql("CREATE TABLE t (x INTEGER PRIMARY KEY)")
            connection.exec_driver_sql("INSERT INTO t VALUES (1)")
        no_table = raised(lambda: engine.connect().exec_driver_sql("SELECT * FROM missing"))
        duplicate = raised(lambda: engine.connect().exec_driver_sql("INSERT INTO t VALUES (1)"))
    finally:
        engine.dispose()
    assert isinstance(no_table, sa_exc.OperationalError) and "no such table" in str(no_table)
    assert not is_transient(no_table)
    assert isinstance(duplicate, sa_exc.IntegrityError)
    assert not is_transient(duplicate)


def test_postgres_unreachable_is_transient():
    engine = sa.create_engine(f"postgresql+psycopg2://postgres@127.0.0.1:{closed_port()}/x",
                              connect_args={"connect_timeout": 2})
    try:
        error = raised(engine.connect)
    finally:
        engine.dispose()
    assert isinstance(error, sa_exc.OperationalError)
    assert is_transient(error)
    assert is_transient(error.orig)  # the driver's own error, unwrapped


def test_postgres_session_killed_by_the_server_is_transient_and_a_bad_statement_is_not():
    engine = sa.create_engine(PG_URL)
    try:
        killed = raised(lambda: engine.connect().exec_driver_sql("SELECT pg_terminate_backend(pg_backend_pid())"))
        division = raised(lambda: engine.connect().exec_driver_sql("SELECT 1 / 0"))
    finally:
        engine.dispose()
    assert is_transient(killed), repr(killed)  # 57P01 admin_shutdown, or the connection simply gone
    assert isinstance(division, sa_exc.DataError)
    assert not is_transient(division)


@pytest.mark.parametrize("error, transient", [
    (TransientFailure("search index rebuilding"), True),
    (type("IndexDown", (TransientFailure,), {})("subclass"), True),
    (ConnectionRefusedError(111, "refused"), True),
    (socket.timeout("timed out"), True),
    (sa_exc.OperationalError("BEGIN IMMEDIATE", {}, sqlite3.OperationalError("database is locked")), True),
    (sa_exc.TimeoutError("QueuePool limit of size 10 overflow 10 reached"), True),
    (sa_exc.OperationalError("SELECT", {}, sqlite3.OperationalError("near 'SELEC': syntax error")), False),
    (ValidationError({"urn": ["not a school"]}), False),
    (ValueError("refused by a domain rule"), False),
    (KeyError("bug"), False),
    (EventAlreadyHandled("e1"), False),
])
def test_classification(error, transient):
    assert is_transient(error) is transient


def test_an_error_raised_from_a_transient_one_is_transient():
    def wrap():
        try:
            raise ConnectionResetError(104, "reset by peer")
        except ConnectionResetError as exc:
            raise RuntimeError("could not store the charge") from exc

    assert is_transient(raised(wrap))
    assert not is_transient(RuntimeError("could not store the charge"))


def test_invalidated_connection_is_transient_whatever_its_class():
    error = sa_exc.DBAPIError("SELECT 1", {}, Exception("gone"), connection_invalidated=True)
    assert is_transient(error)


# -- backoff --------------------------------------------------------------------------------------------
def test_backoff_is_exponential_capped_and_fully_jittered():
    top = [backoff_delay(step, initial=0.5, cap=30, rng=lambda: 1.0) for step in range(1, 10)]
    assert top == [0.5, 1, 2, 4, 8, 16, 30, 30, 30]
    assert backoff_delay(4, initial=0.5, cap=30, rng=lambda: 0.25) == 1.0
    assert backoff_delay(10_000, initial=0.5, cap=30, rng=lambda: 1.0) == 30  # no overflow on long outages


# -- the gate -------------------------------------------------------------------------------------------
class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def gate(clock: Clock, **kwargs) -> OutageGate:
    return OutageGate("billing.on_subscription_started", initial=0.5, cap=30, rng=lambda: 1.0, clock=clock,
                      max_wait=0.01, **kwargs)


def test_open_gate_lets_everyone_through_at_once():
    g = gate(Clock())
    attempts = [g.enter() for _ in range(5)]
    assert attempts == [Attempt(0, False)] * 5


def test_in_flight_failures_of_one_outage_make_one_step_and_one_log_line(caplog):
    clock = Clock()
    g = gate(clock)
    in_flight = [g.enter() for _ in range(10)]
    with caplog.at_level(logging.WARNING, logger="shared.failures"):
        delays = [g.failed(attempt, "OperationalError: connection refused") for attempt in in_flight]
    assert delays == [0.5] + [None] * 9
    assert g.step == 1 and g.closed
    assert len(caplog.records) == 1
    assert "billing.on_subscription_started paused" in caplog.text and "connection refused" in caplog.text


def test_closed_gate_lets_one_probe_through_after_the_backoff_and_the_rest_wait():
    clock = Clock()
    g = gate(clock)
    g.failed(g.enter(), "down")
    assert g.enter(abandon=lambda: True) is None  # a waiter may always give up
    calls = []

    def advance_once():
        calls.append(clock.now)
        if len(calls) == 1:
            clock.now += 0.5  # the backoff passes while it waits
        return False

    probe = g.enter(abandon=advance_once)
    assert probe == Attempt(1, True)
    # while the probe runs nobody else passes: this waiter gives up on its third look
    looks = []
    assert g.enter(abandon=lambda: looks.append(1) or len(looks) >= 3) is None
    assert len(looks) == 3


def test_each_failed_probe_backs_off_further_up_to_the_cap():
    clock = Clock()
    g = gate(clock)
    g.failed(g.enter(), "down")
    waits = []
    for _ in range(8):
        clock.now = g.next_probe_at
        probe = g.enter()
        assert probe.probe
        g.failed(probe, "still down")
        waits.append(g.next_probe_at - clock.now)
    assert waits == [1, 2, 4, 8, 16, 30, 30, 30]
    assert g.step == 9


def test_a_success_opens_the_gate_for_everyone_and_resets_the_backoff(caplog):
    clock = Clock()
    g = gate(clock)
    g.failed(g.enter(), "down")
    clock.now = g.next_probe_at
    probe = g.enter()
    with caplog.at_level(logging.WARNING, logger="shared.failures"):
        g.succeeded(probe)
    assert not g.closed and g.step == 0
    assert "resumed after an outage" in caplog.text
    assert g.enter() == Attempt(g.epoch, False)
    g.failed(g.enter(), "down again")
    assert g.next_probe_at - clock.now == 0.5  # a new outage starts from the first step


def test_a_released_probe_lets_another_waiter_probe_at_once():
    clock = Clock()
    g = gate(clock)
    g.failed(g.enter(), "down")
    clock.now = g.next_probe_at
    probe = g.enter()
    g.release(probe)  # e.g. the probe's message turned out to be invalid, or went back to the queue
    assert g.enter() == Attempt(probe.epoch, True)
    assert g.step == 1


def test_waiters_are_released_together_when_the_gate_opens():
    clock = Clock()
    g = gate(clock)
    g.failed(g.enter(), "down")  # the next probe is due at 100.5 and the clock stays at 100.0
    looked: set[int] = set()
    results: dict[int, Attempt | None] = {}

    def wait(index: int) -> None:
        results[index] = g.enter(abandon=lambda: looked.add(index) or False)

    threads = [threading.Thread(target=wait, args=(i,)) for i in range(5)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 10
    while len(looked) < 5 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(looked) == 5 and not results  # all five are waiting at the gate
    g.succeeded(Attempt(g.epoch, False))
    for thread in threads:
        thread.join(10)
    assert sorted(results) == [0, 1, 2, 3, 4]
    assert all(a is not None and not a.probe for a in results.values())


def test_stopping_releases_every_waiter_empty_handed_but_an_open_gate_stays_open():
    clock = Clock()
    g = gate(clock)
    g.failed(g.enter(), "down")
    g.stop()
    assert g.enter() is None
    g.succeeded(Attempt(g.epoch, False))
    assert g.enter() == Attempt(g.epoch, False)  # a stopping handler still handles what it is given
