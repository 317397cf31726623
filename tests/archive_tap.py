"""Watching what the services publish through the event archive, as any consumer outside the
system can: each producer's stream `<producer>.events.archive` (`partnership_ops.topology`), read from the
start of the test's own vhost. No queue is bound for the test, so an event nobody consumes stays
unroutable-free only because the provisioned archive takes it, as in a deployment."""
from __future__ import annotations

import json

from partnership_ops import event_archive
from tests.conftest import eventually

PRODUCERS = ("membership", "catalogue", "billing", "scheduling")


class ArchiveTap:
    """Every event the given producers published so far, in each archive's order."""

    def __init__(self, amqp_uri: str, producers=PRODUCERS):
        self.amqp_uri = amqp_uri
        self.producers = tuple(producers)
        self.seen: list[dict] = []
        self._next_offset = {producer: "first" for producer in self.producers}

    def drain(self) -> list[dict]:
        """Read what was archived since the last call (envelopes, with the exchange they came from)."""
        for producer in self.producers:
            for event in event_archive.read(self.amqp_uri, producer, start=self._next_offset[producer],
                                            idle_seconds=0.3, timeout=60):
                self.seen.append({"exchange": f"{producer}.events", **json.loads(event.body)})
                self._next_offset[producer] = event.offset + 1
        return self.seen

    def of(self, event_type: str, **where) -> list[dict]:
        """Payloads of `event_type` seen so far whose top-level fields equal `where`."""
        return [e["payload"] for e in self.drain() if e["type"] == event_type
                and all(e["payload"].get(k) == v for k, v in where.items())]

    def of_type(self, event_type: str) -> list[dict]:
        """Whole envelopes of `event_type` seen so far."""
        return [e for e in self.drain() if e["type"] == event_type]

    def types(self) -> list[str]:
        return [e["type"] for e in self.drain()]

    def count(self, event_type: str) -> int:
        return len(self.of_type(event_type))

    def wait_for(self, event_type: str, count: int = 1, timeout: float = 30.0, **where) -> list[dict]:
        return eventually(lambda: len(self.of(event_type, **where)) >= count and self.of(event_type, **where),
                          timeout=timeout, message=f"{count} x {event_type} {where or ''}")

    def close(self) -> None:
        """Nothing to release: each read opens and closes its own connection."""
