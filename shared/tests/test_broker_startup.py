"""Startup waits for the broker for a bounded time, says what it waits for, then fails clearly."""
from __future__ import annotations

import logging
import socket
import threading
import time

import pytest
from amqp.exceptions import AccessRefused

from shared.broker import BrokerUnavailable, wait_for_broker
from shared.config import events_settings


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_timeout_is_an_events_setting():
    assert events_settings({})["broker_startup_timeout_seconds"] == 120.0
    assert events_settings({"EVENTS": {"broker_startup_timeout_seconds": "3"}})["broker_startup_timeout_seconds"] == 3.0


def test_no_broker_fails_after_the_timeout_naming_the_broker_and_logging_each_try(caplog):
    uri = f"amqp://guest:secret@127.0.0.1:{closed_port()}/"
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="shared.broker"), pytest.raises(BrokerUnavailable) as failed:
        wait_for_broker(uri, 2.0)
    elapsed = time.monotonic() - started
    assert 1.9 <= elapsed < 6
    message = str(failed.value)
    assert "no broker answered at amqp://guest:**@127.0.0.1" in message and "in 2 s" in message
    assert "secret" not in message and "secret" not in caplog.text
    waits = [r for r in caplog.records if "waiting for the broker" in r.getMessage()]
    assert 2 <= len(waits) <= 6  # 0.5 s, 1 s, ... between tries: said each time, no spin
    assert "giving up in" in waits[0].getMessage()


def test_a_broker_that_comes_up_during_the_wait_is_used(caplog):
    tries = []

    def connect(uri, timeout):
        tries.append(timeout)
        if len(tries) < 3:
            raise ConnectionRefusedError(111, "Connection refused")

    with caplog.at_level(logging.WARNING, logger="shared.broker"):
        wait_for_broker("amqp://guest:guest@127.0.0.1:1/comes-up", 30.0, connect=connect)
    assert len(tries) == 3
    assert "answered after" in caplog.text
    # answered once: later callers in the process do not wait again
    wait_for_broker("amqp://guest:guest@127.0.0.1:1/comes-up", 30.0, connect=lambda *_: pytest.fail("tried again"))


def test_a_refusal_fails_at_once():
    def connect(uri, timeout):
        raise AccessRefused("ACCESS_REFUSED - Login was refused")

    started = time.monotonic()
    with pytest.raises(BrokerUnavailable, match="refused the connection"):
        wait_for_broker("amqp://nobody:wrong@127.0.0.1:1/refused", 60.0, connect=connect)
    assert time.monotonic() - started < 1


def test_concurrent_callers_share_one_wait():
    tries = []
    release = threading.Event()

    def connect(uri, timeout):
        tries.append(1)
        if not release.is_set():
            raise ConnectionRefusedError(111, "Connection refused")

    errors = []

    def call():
        try:
            wait_for_broker("amqp://guest:guest@127.0.0.1:1/shared", 30.0, connect=connect)
        except Exception as exc:  # noqa: BLE001 - asserted below
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(5)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 10
    while not tries and time.monotonic() < deadline:
        time.sleep(0.01)
    release.set()
    for thread in threads:
        thread.join(15)
    assert not errors
    assert len(tries) <= 2  # one leader tried; the four others waited for its answer


def test_wrong_credentials_on_the_real_broker_fail_at_once():
    started = time.monotonic()
    with pytest.raises(BrokerUnavailable, match="refused the connection: AccessRefused"):
        wait_for_broker("amqp://guest:not-the-password@127.0.0.1:5672/", 60.0)
    assert time.monotonic() - started < 5
