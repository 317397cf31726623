"""Outages delay work; they never dead-letter it.

The consumer's database goes away for 60 s, longer than the whole retry schedule (the
tests' 200 ms and 500 ms, and the default 1 s, 5 s and 30 s), while a stream of events
keeps arriving: PostgreSQL stopped (a cluster this test starts on its own port, never
the machine's), and SQLite held locked by another process. Afterwards, exact counts:
nothing dead-lettered, nothing retried, every effect applied once; and the handler paused
during the outage instead of hammering the database (one probe per backoff step).
"""
from __future__ import annotations

import base64
import contextlib
import json
import re
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request

import pika
import pytest

from shared.db import ensure_postgres_database
from tests.conftest import eventually, free_port
from tests.reliability import tools
from tests.reliability.pg_cluster import PostgresCluster
from tests.reliability.test_event_delivery import BILLING_SUBSCRIPTION_QUEUE, http_json_text, subscription_payload

pytestmark = pytest.mark.outage

OUTAGE_SECONDS = 60.0
# a short cap so that recovery shows within seconds; the default is 30 s
OUTAGE_ENV = {"EVENT_TRANSIENT_BACKOFF_MAX_SECONDS": "4"}
DEAD = BILLING_SUBSCRIPTION_QUEUE + ".dead"


def through_broker_restarts(action, timeout: float = 90.0):
    """Run a pika call, again if the shared broker is restarting (other test runs restart it)."""
    deadline = time.monotonic() + timeout
    for _ in range(1000):
        try:
            return action()
        except (pika.exceptions.AMQPError, OSError):
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.5)
    raise AssertionError("unreachable")


def depth(amqp_uri: str, queue: str) -> int:
    return through_broker_restarts(lambda: tools.queue_depth(amqp_uri, queue))


class OneDatabase:
    """`Databases` for a stack whose billing database is given (on the test's own cluster)."""

    def __init__(self, url: str):
        self._url = url

    def url(self, service: str) -> str:
        return self._url


class Stream:
    """Publishes subscription_started events by hand, one every `pause` seconds, until stopped."""

    def __init__(self, amqp_uri: str, pause: float = 0.5, limit: int = 400):
        self.amqp_uri = amqp_uri
        self.pause = pause
        self.limit = limit
        self.published = 0
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def publish_one(self) -> None:
        index = self.published
        payload = subscription_payload(f"36{index:04d}", f"f0000000-0000-4000-8000-{index:012d}")
        event = tools.envelope("subscription_started", payload, producer="catalogue")
        # the same event again if a broker restart lost the confirm: the inbox makes that harmless
        through_broker_restarts(lambda: tools.publish_raw(self.amqp_uri, "catalogue.events", "subscription_started",
                                                          event))
        self.published += 1

    def _run(self) -> None:
        while not self._stop.is_set() and self.published < self.limit:
            try:
                self.publish_one()
            except Exception as exc:  # noqa: BLE001 - reported by `stop()`
                self.errors.append(exc)
                return
            self._stop.wait(self.pause)

    def start(self) -> "Stream":
        self._thread.start()
        return self

    def stop(self) -> int:
        self._stop.set()
        self._thread.join(30)
        assert not self._thread.is_alive() and not self.errors, self.errors
        return self.published


def metric(text: str, name: str) -> float:
    """Sum of a metric's samples for subscription_started (0 if it was never counted)."""
    pattern = re.compile(rf'^{re.escape(name)}\{{service="billing",type="subscription_started"[^}}]*\}} ([0-9.e+]+)$', re.M)
    return sum(float(value) for value in pattern.findall(text))


def queue_state(amqp_uri: str, queue: str) -> dict:
    """Ready and unacknowledged messages of a queue, from the management API."""
    vhost = urllib.parse.quote(amqp_uri.rsplit("/", 1)[-1], safe="")
    request = urllib.request.Request(f"http://127.0.0.1:15672/api/queues/{vhost}/{urllib.parse.quote(queue)}",
                                     headers={"Authorization": "Basic " + base64.b64encode(b"guest:guest").decode()})
    with urllib.request.urlopen(request, timeout=10) as response:
        body = json.loads(response.read())
    return {"ready": body.get("messages_ready", 0), "held_unacked": body.get("messages_unacknowledged", 0)}


def hold_outage(stack, seconds: float) -> dict:
    """Keep the outage for `seconds` while the stream runs, checking every second that nothing is
    dead-lettered; returns the handler queue's state near the end (the management API's
    figures lag by a few seconds)."""
    deadline = time.monotonic() + seconds
    state: dict = {}
    for _ in range(int(seconds) + 5):  # one look per second
        if time.monotonic() >= deadline:
            break
        assert depth(stack.amqp_uri, DEAD) == 0, "dead-lettered during the outage"
        if deadline - time.monotonic() < 5 and not state:
            state = through_broker_restarts(lambda: queue_state(stack.amqp_uri, BILLING_SUBSCRIPTION_QUEUE))
        time.sleep(min(1.0, max(deadline - time.monotonic(), 0)))
    return state


def assert_recovered_exactly_once(stack, database_url: str, total: int, during: dict) -> dict:
    eventually(lambda: tools.count(database_url, "charges") >= total, timeout=90, interval=0.5,
               message=f"{total} charges after the outage")
    eventually(lambda: depth(stack.amqp_uri, BILLING_SUBSCRIPTION_QUEUE) == 0, timeout=30,
               message="the handler's queue emptied")
    # anything still in flight (a retry copy, a duplicate) would show within the retry schedule
    time.sleep(1.5)
    assert tools.count(database_url, "charges") == total
    assert tools.count(database_url, "inbox") == total
    assert depth(stack.amqp_uri, DEAD) == 0
    for delay in (200, 500):
        assert depth(stack.amqp_uri, f"billing.retry.{delay}ms") == 0
    text = http_json_text(f"{stack.url('billing')}/metrics")
    deferred = metric(text, "partnership_events_deferred_total")
    assert metric(text, "partnership_events_retried_total") == 0  # an outage is no attempt
    assert metric(text, "partnership_events_dead_lettered_total") == 0
    assert deferred >= 1
    # paused, not spinning: one probe per backoff step (capped at 4 s, fully jittered) plus what
    # was already running when the outage began (at most max_workers = 10); a handler retrying
    # each held message on its own would make several times as many attempts
    assert deferred <= 80, deferred
    return {"events": total, "queue_near_the_end_of_the_outage": during, "deferred_attempts": deferred}


@contextlib.contextmanager
def sqlite_locked(url: str):
    """Another process holds the SQLite database locked (BEGIN EXCLUSIVE) while the block runs."""
    locker = subprocess.Popen(
        [sys.executable, "-c",
         "import sqlite3, sys\n"
         "connection = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)\n"
         "connection.execute('BEGIN EXCLUSIVE')\n"
         "print('locked', flush=True)\n"
         "sys.stdin.readline()\n"
         "connection.execute('ROLLBACK')\n",
         url.removeprefix("sqlite:///")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert locker.stdout.readline().strip() == "locked"
        yield
    finally:
        locker.communicate("release\n", timeout=30)
    assert locker.returncode == 0


@pytest.fixture
def own_postgres():
    cluster = PostgresCluster(free_port())
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()


class TestDatabaseOutages:
    def test_postgres_stopped_for_60_s_under_a_stream_dead_letters_nothing(self, own_postgres, stack_factory):
        url = own_postgres.url("billing_outage")
        ensure_postgres_database(url)
        stack = stack_factory(OneDatabase(url), OUTAGE_ENV).start("billing")
        stream = Stream(stack.amqp_uri)
        for _ in range(10):
            stream.publish_one()
        eventually(lambda: tools.count(url, "charges") == 10, message="the first ten charges")
        stream.start()
        try:
            eventually(lambda: stream.published >= 15, message="the stream flowing")
            own_postgres.stop("fast")  # open transactions are cut, new connections refused
            try:
                during = hold_outage(stack, OUTAGE_SECONDS)
            finally:
                own_postgres.start()
            published_at_restart = stream.published
            eventually(lambda: stream.published >= published_at_restart + 6, timeout=30,
                       message="a few more events after the recovery")
        finally:
            total = stream.stop()
        assert total >= 10 + OUTAGE_SECONDS / stream.pause * 0.8  # most of them arrived during the outage
        figures = assert_recovered_exactly_once(stack, url, total, during)
        print(f"\nPostgreSQL down {OUTAGE_SECONDS:.0f} s: {figures}")

    def test_sqlite_locked_by_another_process_for_60_s_under_a_stream_dead_letters_nothing(
            self, stack_factory, sqlite_databases):
        stack = stack_factory(sqlite_databases, OUTAGE_ENV).start("billing")
        url = stack.database_urls["billing"]
        stream = Stream(stack.amqp_uri)
        for _ in range(10):
            stream.publish_one()
        eventually(lambda: tools.count(url, "charges") == 10, message="the first ten charges")
        stream.start()
        try:
            during = self._lock_sqlite_under(stream, stack, url)
        finally:
            total = stream.stop()
        assert total >= 10 + OUTAGE_SECONDS / stream.pause * 0.8
        figures = assert_recovered_exactly_once(stack, url, total, during)
        print(f"\nSQLite locked {OUTAGE_SECONDS:.0f} s: {figures}")

    @staticmethod
    def _lock_sqlite_under(stream, stack, url):
        eventually(lambda: stream.published >= 15, message="the stream flowing")
        with sqlite_locked(url):
            during = hold_outage(stack, OUTAGE_SECONDS)
        published_at_release = stream.published
        eventually(lambda: stream.published >= published_at_release + 6, timeout=30,
                   message="a few more events after the lock")
        return during


class TestStoppedDuringAnOutage:
    def test_a_service_stopped_while_messages_wait_out_an_outage_stops_promptly_and_loses_nothing(
            self, stack_factory, sqlite_databases):
        stack = stack_factory(sqlite_databases, OUTAGE_ENV).start("billing")
        url = stack.database_urls["billing"]
        stream = Stream(stack.amqp_uri)
        for _ in range(5):
            stream.publish_one()
        eventually(lambda: tools.count(url, "charges") == 5, message="the first five charges")
        with sqlite_locked(url):
            for _ in range(20):
                stream.publish_one()
            # ten (the prefetch) wait at the handler's gate, unacked; the other ten wait in the queue
            eventually(lambda: queue_state(stack.amqp_uri, BILLING_SUBSCRIPTION_QUEUE)["held_unacked"] == 10,
                       timeout=30, interval=0.5, message="ten messages held by the paused handler")
            process = stack.processes["billing"]
            started = time.monotonic()
            process.stop(timeout=30)  # SIGTERM: a graceful stop, which must not wait for the outage
            stop_seconds = time.monotonic() - started
            assert process.process.returncode is not None and process.process.returncode >= 0, "it had to be killed"
            assert stop_seconds < 20, stop_seconds
            assert depth(stack.amqp_uri, BILLING_SUBSCRIPTION_QUEUE) == 20  # all back in the queue
            assert depth(stack.amqp_uri, DEAD) == 0
        stack.start("billing")
        eventually(lambda: tools.count(url, "charges") >= 25, timeout=60, message="25 charges after the restart")
        eventually(lambda: depth(stack.amqp_uri, BILLING_SUBSCRIPTION_QUEUE) == 0, timeout=30,
                   message="the queue emptied")
        time.sleep(1.5)  # a duplicate or a retry copy would show by now
        assert tools.count(url, "charges") == 25
        assert tools.count(url, "inbox") == 25
        assert depth(stack.amqp_uri, DEAD) == 0
        print(f"\nstopped during the outage in {stop_seconds:.1f} s")
