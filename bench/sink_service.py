"""The consuming side of the benchmark: a real nameko service with the project's plumbing.

It is run exactly like the partnership's services (`python -m nameko run --config
<file> bench.sink_service:BenchSink`, so eventlet monkey-patches first): `Storage`
gives it its database, migrations and unit of work, and `consumes` (shared's
`ReliableEventHandler`) delivers the events from a quorum queue. Each event is
applied in one unit of work bound to it: the inbox row and the effect row commit
together, and the message is acked after that commit.

The upstream service whose events it reads comes from `BENCH_SOURCE`, so each run
of the benchmark gets its own queue.
"""
from __future__ import annotations

import os
import time

from sqlalchemy import insert

from shared.consumer import consumes
from shared.storage import Storage

from bench.common import EVENT_TYPE, MIGRATIONS, SINK_PUBLISHES, SINK_SERVICE, TickedIn, effects, inbox, outbox

SOURCE = os.environ.get("BENCH_SOURCE", "benchsrc")


class BenchSink:
    name = SINK_SERVICE
    uow = Storage(migrations=MIGRATIONS, published=SINK_PUBLISHES, outbox=outbox, inbox=inbox)

    @consumes(SOURCE, EVENT_TYPE, TickedIn)
    def on_ticked(self, event):
        with self.uow() as uow:
            uow.session.execute(insert(effects), {
                "event_id": event.event_id,
                "run": event.payload["run"],
                "seq": event.payload["seq"],
                "produced_at": event.payload["committed_at"],
                "applied_at": time.time(),
            })
            uow.commit()
