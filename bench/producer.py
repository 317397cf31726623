"""The producing side: commits state changes with their outbox events; the outbox relay publishes them.

`python -m bench.producer --database URL --amqp URI --source NAME --run LABEL --events N [--rate R]`

One small transaction per event through shared's `UnitOfWork` (a `bench_ticks` row
and the outbox row, payload validated by a marshmallow schema), and shared's
`OutboxRelay` beside it in the same process, woken by the unit of work's commit
signal, as `Storage` runs it in a service.

`--mode green` (the default) is how a service runs: eventlet monkey-patches first,
the relay is a green thread, and the producer yields to the hub after each commit
(where a service's worker would end). `--mode thread` runs the relay in an OS thread
instead. With `--rate` the commits are paced; without, they go as fast as they can.
`--no-relay` only commits (the producer's own capacity); `--relay-only` only drains
what the outbox holds (the relay's own capacity). The process waits (bounded) until
the relay has drained the outbox, then prints its result as one JSON line.
"""
import sys

def _mode_from_argv(argv):
    for i, arg in enumerate(argv):
        if arg == "--mode" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--mode="):
            return arg.split("=", 1)[1]
    return "green"


if __name__ == "__main__" and _mode_from_argv(sys.argv) == "green":
    import shared  # noqa: F401  (silences eventlet's own deprecation warning)
    import eventlet

    eventlet.monkey_patch()

import argparse  # noqa: E402
import cProfile  # noqa: E402
import io  # noqa: E402
import pstats  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402

import shared  # noqa: E402,F401
from sqlalchemy import insert  # noqa: E402

from shared.config import events_settings  # noqa: E402
from shared.db import Database  # noqa: E402
from shared.metrics import metrics_for  # noqa: E402
from shared.relay import OutboxRelay  # noqa: E402
from shared.unit_of_work import Origin, OutboxSignal, Producer, UnitOfWork  # noqa: E402

from bench.common import EVENT_TYPE, MIGRATIONS, PUBLISHED, emit, inbox, outbox, ticks  # noqa: E402


def _profile_text(profile: cProfile.Profile, limit: int = 30) -> str:
    out = io.StringIO()
    stats = pstats.Stats(profile, stream=out)
    stats.sort_stats("tottime").print_stats(limit)
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database", required=True)
    parser.add_argument("--amqp", required=True)
    parser.add_argument("--source", required=True, help="the producing service's name (exchange <source>.events)")
    parser.add_argument("--run", required=True, help="label stored with every event")
    parser.add_argument("--events", type=int, required=True)
    parser.add_argument("--rate", type=float, default=0.0, help="events per second; 0 = as fast as possible")
    parser.add_argument("--mode", choices=("green", "thread"), default="green")
    parser.add_argument("--concurrency", type=int, default=1,
                        help="units of work committing at once (green threads or threads), like a service's "
                             "concurrent workers; ignored with --rate")
    parser.add_argument("--events-per-commit", type=int, default=1,
                        help="events each unit of work commits (default 1: one small transaction per event)")
    parser.add_argument("--no-relay", action="store_true", help="commit only; leave the outbox full")
    parser.add_argument("--relay-only", action="store_true", help="commit nothing; drain the outbox")
    parser.add_argument("--max-seconds", type=float, default=0.0, help="stop committing after this long (0: never)")
    parser.add_argument("--drain-timeout", type=float, default=120.0)
    parser.add_argument("--batch-size", type=int, default=None, help="relay_batch_size (default: the project's)")
    parser.add_argument("--profile", default=None, help="write a cProfile report here")
    args = parser.parse_args()
    green = args.mode == "green"
    if green:
        import eventlet

    database = Database(args.database)
    database.upgrade(MIGRATIONS)
    producer = Producer(service=args.source, operator="bench", schemas=PUBLISHED)
    signal = OutboxSignal()
    settings = events_settings({})
    if args.batch_size:
        settings["relay_batch_size"] = args.batch_size
    relay = OutboxRelay(service=args.source, database=database, outbox=outbox, amqp_uri=args.amqp,
                        metrics=metrics_for(args.source), settings=settings, signal=signal)
    # cProfile is per OS thread; under eventlet one profile sees every green thread.
    profile = cProfile.Profile() if args.profile else None
    relay_profile = cProfile.Profile() if args.profile and not green else None

    def run_relay():
        if relay_profile is not None:
            relay_profile.enable()
        try:
            relay.run()
        finally:
            if relay_profile is not None:
                relay_profile.disable()

    relay_started = time.time()
    relay_thread = None
    if not args.no_relay:
        if green:
            relay_thread = eventlet.spawn(run_relay)
        else:
            relay_thread = threading.Thread(target=run_relay, name="outbox-relay", daemon=True)
            relay_thread.start()

    interval = 1.0 / args.rate if args.rate > 0 else 0.0
    per_commit = 1 if interval else max(1, args.events_per_commit)
    origin = Origin()
    total = 0 if args.relay_only else args.events
    state = {"next": 0, "committed": 0, "first": None, "last": None}
    cpu_started = time.process_time()
    started = time.time()
    stop_at = started + args.max_seconds if args.max_seconds > 0 else None

    def commit_events():
        """One worker: takes the next sequence number and commits it, until all are done or time is up."""
        while state["next"] < total:
            first_seq = state["next"]
            seqs = range(first_seq, min(total, first_seq + per_commit))
            state["next"] += len(seqs)
            if interval:
                delay = started + first_seq * interval - time.time()
                if delay > 0:
                    time.sleep(delay)  # green under eventlet
            with UnitOfWork(database, producer, outbox, inbox, origin, on_commit=signal.notify) as uow:
                for seq in seqs:
                    uow.session.execute(insert(ticks), {"run": args.run, "seq": seq, "value": f"tick-{seq}"})
                    uow.publish(EVENT_TYPE, {"run": args.run, "seq": seq, "committed_at": time.time()},
                                aggregate=f"tick-{seq % 100}")
                uow.commit()
            now = time.time()
            state["last"] = now if state["last"] is None else max(state["last"], now)
            state["committed"] += len(seqs)
            if state["first"] is None:
                state["first"] = now
            if stop_at is not None and now >= stop_at:
                state["next"] = total  # the others stop too
            if green and not interval:
                eventlet.sleep(0)  # a service's worker ends here and the hub runs the others

    if profile is not None:
        profile.enable()
    concurrency = 1 if interval else max(1, args.concurrency)
    if concurrency == 1:
        commit_events()
    elif green:
        pool = eventlet.GreenPool(concurrency)
        for _ in range(concurrency):
            pool.spawn(commit_events)
        pool.waitall()
    else:
        workers = [threading.Thread(target=commit_events) for _ in range(concurrency)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    committed, first_commit, last_commit = state["committed"], state["first"], state["last"]

    # Wait (bounded) for the relay to drain the outbox.
    backlog = None
    if not args.no_relay:
        deadline = time.monotonic() + args.drain_timeout
        while time.monotonic() < deadline:
            backlog, _age = relay.backlog()
            if backlog == 0:
                break
            time.sleep(0.02)
        relay.stopping = True
        signal.notify()
        if green:
            relay_thread.wait()
        else:
            relay_thread.join(15)
    drained_at = time.time()
    cpu_seconds = time.process_time() - cpu_started
    if profile is not None:
        profile.disable()
    database.dispose()

    if args.profile:
        with open(args.profile, "w", encoding="utf-8") as handle:
            title = "producer loop and relay (one eventlet thread)" if green else "producer thread"
            handle.write(f"==== {title}, mode={args.mode}, by tottime\n")
            handle.write(_profile_text(profile))
            if relay_profile is not None:
                handle.write("\n==== relay thread (OutboxRelay.run), by tottime\n")
                handle.write(_profile_text(relay_profile))
    emit({
        "events": committed,
        "requested": args.events,
        "time_capped": committed < args.events and not args.relay_only,
        "rate": args.rate,
        "mode": args.mode,
        "concurrency": concurrency,
        "events_per_commit": per_commit,
        "started": started,
        "relay_started": relay_started,
        "first_commit": first_commit,
        "last_commit": last_commit,
        "drained_at": drained_at,
        "cpu_seconds": cpu_seconds,
        "backlog_left": backlog,
        "relay_errors": metrics_for(args.source).relay_errors._value.get(),
    })


if __name__ == "__main__":
    main()
