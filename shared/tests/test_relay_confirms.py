"""The relay waits for its confirms up to CONFIRM_TIMEOUT_SECONDS, however quiet the broker is meanwhile.

A fake connection stands in for the broker and a fake clock for time, so these run in
milliseconds: each `drain_events(timeout=t)` that has nothing to deliver moves the clock
on by `t` and raises `socket.timeout`, as kombu does.
"""
from __future__ import annotations

import socket

import pytest

from shared import relay as relay_module
from shared.relay import CONFIRM_TIMEOUT_SECONDS, OutboxRelay


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


class SlowConfirmingConnection:
    """Confirms every outstanding tag once `confirm_after` seconds of fake time have passed."""

    def __init__(self, relay: OutboxRelay, clock: FakeClock, confirm_after: float | None):
        self.relay = relay
        self.clock = clock
        self.started = clock.now
        self.confirm_after = confirm_after
        self.drains = 0

    def drain_events(self, timeout=None):
        self.drains += 1
        assert self.drains < 10_000, "the confirm wait does not end"
        assert timeout is not None and timeout > 0, "every drain must be bounded"
        due = None if self.confirm_after is None else self.started + self.confirm_after
        if due is not None and self.clock.now + timeout >= due:
            self.clock.now = max(self.clock.now, due)
            for tag in sorted(self.relay._outstanding):
                self.relay._on_ack(tag, False)
            return
        self.clock.now += timeout
        raise socket.timeout("timed out")


def relay_waiting_for(tags: list[int], clock: FakeClock, confirm_after: float | None, monkeypatch):
    monkeypatch.setattr(relay_module.time, "monotonic", clock.monotonic)
    settings = {"relay_batch_size": 10, "relay_poll_seconds": 0.5, "relay_linger_ms": 5,
                "relay_max_backoff_seconds": 30, "outbox_retention_hours": 1}
    relay = OutboxRelay(service="test", database=None, outbox=None, amqp_uri="amqp://unused", metrics=None,
                        settings=settings)
    relay._outstanding.update(tags)
    connection = SlowConfirmingConnection(relay, clock, confirm_after)
    relay._connection = connection
    return relay, connection


@pytest.mark.parametrize("confirm_after", [1.5, 4.0, CONFIRM_TIMEOUT_SECONDS - 0.5])
def test_confirms_after_quiet_seconds_are_still_awaited(confirm_after, monkeypatch):
    clock = FakeClock()
    relay, connection = relay_waiting_for([1, 2, 3], clock, confirm_after, monkeypatch)
    relay._await_confirms(1, 3)  # before the fix: socket.timeout after the first quiet second
    assert relay._acked == {1, 2, 3}
    assert not relay._outstanding
    assert clock.now - connection.started == pytest.approx(confirm_after)


def test_the_wait_ends_at_the_confirm_timeout_with_a_clear_error(monkeypatch):
    clock = FakeClock()
    relay, connection = relay_waiting_for([1, 2], clock, None, monkeypatch)
    with pytest.raises(TimeoutError) as timed_out:
        relay._await_confirms(1, 2)
    assert "did not confirm 2 messages" in str(timed_out.value)
    assert clock.now - connection.started == pytest.approx(CONFIRM_TIMEOUT_SECONDS)
    assert connection.drains <= CONFIRM_TIMEOUT_SECONDS + 1  # one drain per quiet second, no spin
