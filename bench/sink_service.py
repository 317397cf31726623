"""The consuming side of the benchmark: a real nameko service with the project's plumbing.

It is run exactly like the partnership's services (`python -m nameko run --config
<file> bench.sink_service:BenchSink`, so eventlet monkey-patches first): `Storage`
gives it its database, migrations and unit of work, and the events come from a quorum
queue. By default (`BENCH_SINK=batch`) through `consumes_batch` (shared's
`BatchedEventHandler`): up to `EVENTS.batch_max_events` events at once, applied in one
unit of work (one inbox row and one effect row each, one commit), acked after that
commit. With `BENCH_SINK=single`, through `consumes` (shared's `ReliableEventHandler`):
one unit of work per event, as before batching.

The upstream service whose events it reads comes from `BENCH_SOURCE`, so each run
of the benchmark gets its own queue.
"""
from __future__ import annotations

import os
import time

from sqlalchemy import insert

from shared.batch_consumer import consumes_batch
from shared.consumer import consumes
from shared.storage import Storage

from bench.common import EVENT_TYPE, MIGRATIONS, SINK_PUBLISHES, SINK_SERVICE, TickedIn, effects, inbox, outbox

SOURCE = os.environ.get("BENCH_SOURCE", "benchsrc")
BATCHED = os.environ.get("BENCH_SINK", "batch") == "batch"


def _effect(event, applied_at: float) -> dict:
    return {"event_id": event.event_id, "run": event.payload["run"], "seq": event.payload["seq"],
            "produced_at": event.payload["committed_at"], "applied_at": applied_at}


if BATCHED:
    class BenchSink:
        name = SINK_SERVICE
        uow = Storage(migrations=MIGRATIONS, published=SINK_PUBLISHES, outbox=outbox, inbox=inbox)

        @consumes_batch(SOURCE, EVENT_TYPE, TickedIn)
        def on_ticked(self, events):
            with self.uow() as batch:
                if batch.fresh:
                    now = time.time()
                    batch.session.execute(insert(effects), [_effect(event, now) for event in batch.fresh])
                batch.commit()
else:
    class BenchSink:  # noqa: F811 - one of the two, by BENCH_SINK
        name = SINK_SERVICE
        uow = Storage(migrations=MIGRATIONS, published=SINK_PUBLISHES, outbox=outbox, inbox=inbox)

        @consumes(SOURCE, EVENT_TYPE, TickedIn)
        def on_ticked(self, event):
            with self.uow() as uow:
                uow.session.execute(insert(effects), _effect(event, time.time()))
                uow.commit()
