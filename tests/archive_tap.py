"""Watching what the services publish through the event archive, as any consumer outside the
system can: each producer's stream `<producer>.events.archive` (`partnership_ops.topology`), read from the
start of the test's own vhost. No queue is bound for the test, so an event nobody consumes stays
unroutable-free only because the provisioned archive takes it, as in a deployment."""
from __future__ import annotations

import json

import sqlalchemy as sa

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
        """Read what was archived since the last call (envelopes, with the exchange they came from).
        Short waits, as it is polled: a read complete up to a point is `drain_sent`'s."""
        for producer in self.producers:
            for event in event_archive.read(self.amqp_uri, producer, start=self._next_offset[producer],
                                            idle_seconds=0.3, first_delivery_seconds=0.3,
                                            timeout=60):
                self.seen.append({"exchange": f"{producer}.events", **json.loads(event.body)})
                self._next_offset[producer] = event.offset + 1
        return self.seen

    def drain_covering(self, event_ids, timeout: float = 60.0) -> list[dict]:
        """Drain until every one of `event_ids` has been read (or fail after `timeout`).

        A stream says nothing of where it ends: one drain stops after a short quiet spell, which a
        busy broker can leave before it has delivered everything. Waiting for events known to be
        published (e.g. every outbox row marked sent) gives a read that is complete up to them."""
        wanted = set(event_ids)

        def covered():
            seen = self.drain()
            missing = wanted - {e["event_id"] for e in seen}
            assert not missing, f"{len(missing)} published events not read yet, e.g. {sorted(missing)[:3]}"
            return seen
        return eventually(covered, timeout=timeout, message="every published event read from the archive")

    def drain_sent(self, *database_urls: str, timeout: float = 60.0) -> list[dict]:
        """Drain until every event these services' outboxes have marked sent (the broker confirmed
        it) has been read: complete up to now once the outboxes are empty."""
        return self.drain_covering(sent_event_ids(*database_urls), timeout=timeout)

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


def sent_event_ids(*database_urls: str) -> set[str]:
    """The ids of every event these databases' outboxes have marked sent."""
    ids: set[str] = set()
    for url in database_urls:
        engine = sa.create_engine(url)
        try:
            with engine.connect() as connection:
                ids.update(connection.scalars(sa.text("SELECT event_id FROM outbox WHERE sent_at IS NOT NULL")))
        finally:
            engine.dispose()
    return ids
