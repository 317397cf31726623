"""Event-path benchmark: raw pika beside the project's outbox -> relay -> broker -> inbox path.

    .venv/bin/python -m bench.event_path [--events 20000] [--backends sqlite,postgresql] [--profile]

(`make bench` runs exactly the first form.) One run, on this machine, against the
broker at AMQP_URI (a throwaway virtual host, deleted afterwards) and PostgreSQL at
BENCH_POSTGRES_URL (throwaway databases, dropped afterwards):

(a) raw pika: persistent publishes with publisher confirms (one confirm per message,
    and a window of unconfirmed messages), consume with one ack each (prefetch 200),
    and both at once in two processes (the end-to-end pipeline); on a classic and on
    a quorum queue (the project's handler queues are quorum queues).
(b) the full path, per database: a producer process commits N events through shared's
    UnitOfWork (a state row + its outbox row per event), one event per transaction and then
    20 per transaction (`--producer-events-per-commit 1,20`; the targets are judged on the
    last), shared's OutboxRelay in the same process publishes them with batched confirms,
    and a real nameko service (`bench.sink_service`, run by `nameko run`, so under
    eventlet) consumes them with shared's BatchedEventHandler (`--sink batch`, the default:
    batches of up to `--batch-max-events` 100 or 10 ms, one transaction per batch with an
    inbox row + an effect row per event, acks after the commit, prefetch 2 N) or, with
    `--sink single`, ReliableEventHandler (one unit of work per event, as before batching).
    Sustained events/s from the first producer commit to the last committed effect
    (the producer stops committing after --max-seconds, 75 s by default, so the bench
    stays bounded; the table says so when that cut N short). Beside it: each stage
    alone (commits only; the relay draining a full outbox; the sink draining a full
    queue) and the CPU each process, the broker and PostgreSQL spent per event
    (from /proc), which is where the time goes on a 2-core machine; and the consumer
    stage with one and with two replicas of the sink on one database (PostgreSQL by
    default, `--replica-events`, `--replica-backends`).
(c) latency at a fixed rate (200 events/s for 10 s): producer commit -> committed
    effect, p50/p95/p99/max.

A run the broker's restart or a dead sink spoiled is marked DISTURBED and never
counts as meeting a target.

It prints a table and writes everything to var/bench/event_path.json. Both processes
stamp times with time.time() on this one machine; the producer's stamp is taken just
before its commit (it travels in the payload), the sink's just before its commit (in
the effect row), so both ends are measured the same way.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.parse
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import shared  # noqa: E402,F401  (silences eventlet's deprecation warning before anything imports it)

from shared.config import events_settings  # noqa: E402

from bench import raw_pika  # noqa: E402
from bench.common import find_result, handler_queue, naive_utc_to_epoch, percentile  # noqa: E402

PYTHON = sys.executable
DEFAULT_AMQP_URI = "amqp://guest:guest@127.0.0.1:5672/"
DEFAULT_PG_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
SILENCE_EVENTLET = "ignore::Warning:nameko.cli.commands"

# Issue 17's targets for the full path (publish -> consumer -> effect committed), per database.
TARGET_EVENTS_PER_S = {"sqlite": 3000.0, "postgresql": 2000.0}
TARGET_RATIO = 0.5
TARGET_P99_MS = 50.0


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- broker and databases ---------------------------------------------------------------------

# With --private-broker: (node name, management URL, admin user) of the node this run started.
PRIVATE: dict = {}


def rabbitmqctl(*args: str, wait_for_broker: float = 0.0) -> str:
    """Run rabbitmqctl; while the broker's app is down (restarting), retry for up to `wait_for_broker` s."""
    deadline = time.monotonic() + wait_for_broker
    node = ["-n", PRIVATE["node"]] if PRIVATE else []
    while True:
        result = subprocess.run(["rabbitmqctl", *node, *args], capture_output=True, text=True, timeout=60)
        if result.returncode == 0:
            return result.stdout
        down = "app to be running" in result.stderr or "unable to perform an operation" in result.stderr
        if not down or time.monotonic() >= deadline:
            raise RuntimeError(f"rabbitmqctl {' '.join(args)} failed: {result.stderr.strip()[:300]}")
        log("the broker is not running (restarting?); waiting for it")
        time.sleep(2)


class Vhost:
    """A throwaway virtual host on the local broker."""

    def __init__(self, base_uri: str):
        self.name = f"bench-{uuid.uuid4().hex[:10]}"
        rabbitmqctl("add_vhost", self.name, wait_for_broker=60)
        rabbitmqctl("set_permissions", "-p", self.name, PRIVATE.get("user", "guest"), ".*", ".*", ".*")
        parts = urllib.parse.urlsplit(base_uri)
        self.amqp_uri = urllib.parse.urlunsplit(parts._replace(path="/" + urllib.parse.quote(self.name, safe="")))

    def delete(self) -> None:
        try:
            rabbitmqctl("delete_vhost", self.name, wait_for_broker=30)
        except Exception as exc:  # noqa: BLE001 - reported, cleanup goes on
            log(f"could not delete vhost {self.name}: {exc}")


class Databases:
    """The producer's and the sink's databases for one run: SQLite files or PostgreSQL databases."""

    def __init__(self, backend: str, workdir: Path, pg_admin_url: str):
        self.backend = backend
        self.workdir = workdir
        self.pg_admin_url = pg_admin_url
        self.created: list[str] = []

    def url(self, role: str) -> str:
        if self.backend == "sqlite":
            return f"sqlite:///{self.workdir / f'{role}-{uuid.uuid4().hex[:6]}.db'}"
        from shared.db import ensure_postgres_database

        url = self.pg_admin_url.rsplit("/", 1)[0] + f"/bench_{role}_{uuid.uuid4().hex[:10]}"
        self.created.append(url)
        ensure_postgres_database(url)
        return url

    def drop_all(self) -> None:
        from shared.db import drop_postgres_database

        for url in self.created:
            try:
                drop_postgres_database(url)
            except Exception as exc:  # noqa: BLE001 - reported, cleanup goes on
                log(f"could not drop {url}: {exc}")
        self.created.clear()


# -- child processes --------------------------------------------------------------------------

class Child:
    """A child process whose stdout is collected; killed (its own process group) if left running."""

    def __init__(self, args: list[str], *, env: dict | None = None, log_path: Path | None = None,
                 capture: bool = True):
        self.args = args
        self.log_path = log_path
        self.stderr = open(log_path, "ab") if log_path else subprocess.DEVNULL
        stdout = subprocess.PIPE if capture else self.stderr
        self.proc = subprocess.Popen(args, cwd=ROOT, env={**os.environ, **(env or {})}, stdout=stdout,
                                     stderr=self.stderr, text=True, start_new_session=True)
        self.lines: list[str] = []

    def read_until(self, marker: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.2)
            if ready:
                line = self.proc.stdout.readline()
                if not line:
                    return False
                self.lines.append(line.rstrip("\n"))
                if line.startswith(marker):
                    return True
            elif self.proc.poll() is not None:
                return False
        return False

    def result(self, timeout: float) -> dict:
        try:
            out, _ = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise TimeoutError(f"{' '.join(self.args[:4])} ... did not finish within {timeout:.0f}s")
        self.lines.extend(out.splitlines())
        found = find_result(self.lines)
        if found is None:
            where = f"; see {self.log_path}" if self.log_path else ""
            raise RuntimeError(f"{' '.join(self.args[:4])} ... exited {self.proc.returncode} without a result{where}")
        return found

    def stop(self, timeout: float = 20.0) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self._close()

    def kill(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        self._close()

    def _close(self) -> None:
        if self.stderr not in (None, subprocess.DEVNULL) and not self.stderr.closed:
            self.stderr.close()


# -- CPU accounting -------------------------------------------------------------------------

CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


class CpuMeter:
    """CPU seconds used between `start()` and `stop()`: the whole machine (busy/total, from /proc/stat),
    the broker (beam.smp), the PostgreSQL server (every `postgres` process) and given pids."""

    def __init__(self, pids: dict[str, int] | None = None):
        self.pids = dict(pids or {})
        self._start = None
        self.available = Path("/proc/stat").exists()

    @staticmethod
    def _machine() -> dict[str, float]:
        """Seconds of CPU since boot, all cores: busy (user, system, irq, softirq), steal, total."""
        with open("/proc/stat") as handle:
            f = [float(x) / CLK_TCK for x in handle.readline().split()[1:9]]
        f += [0.0] * (8 - len(f))
        user, nice, system, idle, iowait, irq, softirq, steal = f
        return {"busy": user + nice + system + irq + softirq, "irq_softirq": irq + softirq, "steal": steal,
                "total": sum(f)}

    @staticmethod
    def _process(pid: int) -> float | None:
        try:
            with open(f"/proc/{pid}/stat") as handle:
                data = handle.read()
        except OSError:
            return None
        rest = data.rsplit(")", 1)[1].split()
        return (float(rest[11]) + float(rest[12])) / CLK_TCK  # utime + stime

    @staticmethod
    def _by_name() -> dict[str, dict[int, float]]:
        found: dict[str, dict[int, float]] = {"rabbitmq": {}, "postgres": {}}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/comm") as handle:
                    comm = handle.read().strip()
            except OSError:
                continue
            group = "rabbitmq" if comm == "beam.smp" else "postgres" if comm == "postgres" else None
            if group:
                used = CpuMeter._process(int(entry))
                if used is not None:
                    found[group][int(entry)] = used
        return found

    def _snapshot(self) -> dict:
        return {**self._machine(), "named": self._by_name(),
                "pids": {name: self._process(pid) for name, pid in self.pids.items()}}

    def start(self) -> "CpuMeter":
        if self.available:
            self._start = self._snapshot()
        return self

    def stop(self) -> dict:
        if not self.available or self._start is None:
            return {}
        end, start = self._snapshot(), self._start
        wall = (end["total"] - start["total"]) / (os.cpu_count() or 1)
        out = {"wall_seconds": wall, "machine_busy_cpu_seconds": end["busy"] - start["busy"],
               "machine_busy_fraction": (end["busy"] - start["busy"]) / (end["total"] - start["total"])
               if end["total"] > start["total"] else None,
               "machine_irq_softirq_seconds": end["irq_softirq"] - start["irq_softirq"],
               "machine_steal_seconds": end["steal"] - start["steal"]}
        for group in ("rabbitmq", "postgres"):
            # processes that ended in between are missed; those that started count from zero
            out[group] = sum(used - start["named"][group].get(pid, 0.0) for pid, used in end["named"][group].items())
        for name in self.pids:
            if end["pids"].get(name) is not None and start["pids"].get(name) is not None:
                out[name] = end["pids"][name] - start["pids"][name]
        return out


def cpu_per_event(cpu: dict, events: int, extra: dict | None = None) -> dict:
    """Milliseconds of CPU per event for each part, and what the rest of the machine used meanwhile."""
    parts = {k: v for k, v in {**cpu, **(extra or {})}.items()
             if not k.startswith(("wall_", "machine_")) and v is not None}
    ours = sum(parts.values())
    result = {f"{k}_ms_per_event": 1000.0 * v / events for k, v in parts.items()} if events else {}
    if cpu.get("machine_busy_cpu_seconds") is not None and events:
        irq = cpu.get("machine_irq_softirq_seconds") or 0.0
        result["kernel_irq_softirq_ms_per_event"] = 1000.0 * irq / events
        result["everything_else_ms_per_event"] = 1000.0 * (cpu["machine_busy_cpu_seconds"] - ours - irq) / events
        result["steal_ms_per_event"] = 1000.0 * (cpu.get("machine_steal_seconds") or 0.0) / events
        result["machine_busy_fraction"] = cpu.get("machine_busy_fraction")
    return result


# -- (a) raw pika ----------------------------------------------------------------------------

def raw_pipeline(amqp_uri: str, queue: str, count: int, window: int, timeout: float) -> dict:
    """Consumer process subscribed first, then the publisher process; first publish -> last ack."""
    consumer = Child([PYTHON, "-m", "bench.raw_pika", "consume", "--amqp", amqp_uri, "--queue", queue,
                      "--count", str(count), "--prefetch", "200", "--timeout", str(timeout)])
    publisher = None
    meter = CpuMeter()
    try:
        if not consumer.read_until("READY", 30):
            raise RuntimeError("raw pika consumer did not start")
        meter.start()
        publisher = Child([PYTHON, "-m", "bench.raw_pika", "publish", "--amqp", amqp_uri, "--queue", queue,
                           "--count", str(count), "--window", str(window), "--timeout", str(timeout)])
        published = publisher.result(timeout + 30)
        consumed = consumer.result(timeout + 30)
        cpu = meter.stop()
    finally:
        for child in (publisher, consumer):
            if child is not None:
                child.kill()
    span = consumed["last"] - published["started"] if consumed["last"] else None
    return {
        "events": count,
        "window": window or 1,
        "published": published["confirmed"] if "confirmed" in published else published["published"],
        "consumed": consumed["consumed"],
        "publish_rate": published["rate"],
        "seconds": span,
        "rate": consumed["consumed"] / span if span else None,
        "complete": bool(consumed["complete"] and published["complete"]),
        "rabbitmq_cpu_ms_per_event": 1000.0 * cpu["rabbitmq"] / count if cpu.get("rabbitmq") is not None else None,
        "machine_busy_fraction": cpu.get("machine_busy_fraction"),
    }


def run_raw(amqp_uri: str, args) -> dict:
    results: dict = {}
    per_message = min(args.events, args.per_message_events)
    for queue_type in ("classic", "quorum"):
        queue = f"bench.raw.{queue_type}"
        section: dict = {"queue": queue, "queue_type": queue_type}
        raw_pika.declare_queue(amqp_uri, queue, queue_type)
        try:
            if queue_type == "classic":
                log(f"raw pika {queue_type}: publish, one confirm per message, {per_message} events")
                section["publish_per_message"] = raw_pika.publish_per_message(amqp_uri, queue, per_message,
                                                                              args.phase_timeout)
                raw_pika.declare_queue(amqp_uri, queue, queue_type)  # purge
            log(f"raw pika {queue_type}: publish, window of {args.window} unconfirmed, {args.events} events")
            section["publish_windowed"] = raw_pika.publish_windowed(amqp_uri, queue, args.events, args.window,
                                                                    args.phase_timeout)
            depth = raw_pika.queue_counts(amqp_uri, queue)[0]
            log(f"raw pika {queue_type}: consume + ack, prefetch 200, {depth} events")
            section["consume"] = raw_pika.consume(amqp_uri, queue, depth, 200, args.phase_timeout)
            raw_pika.declare_queue(amqp_uri, queue, queue_type)  # purge leftovers, if any
            log(f"raw pika {queue_type}: end to end (publisher + consumer processes), windowed confirms")
            section["pipeline_windowed"] = raw_pipeline(amqp_uri, queue, args.events, args.window,
                                                        args.phase_timeout)
            if queue_type == "classic":
                raw_pika.declare_queue(amqp_uri, queue, queue_type)
                log(f"raw pika {queue_type}: end to end, one confirm per message, {per_message} events")
                section["pipeline_per_message"] = raw_pipeline(amqp_uri, queue, per_message, 0,
                                                               args.phase_timeout)
        finally:
            with contextlib.suppress(Exception):
                raw_pika.delete_queue(amqp_uri, queue)
        results[queue_type] = section
    return results


# -- (b) and (c) the full path ---------------------------------------------------------------

def sink_config(amqp_uri: str, database_url: str, max_workers: int, batch: dict | None = None) -> dict:
    return {
        "AMQP_URI": amqp_uri,
        "DATABASE_URL": database_url,
        "max_workers": max_workers,
        "EVENTS": dict(batch or {}),
        "HEARTBEAT": 20,
        "OPERATOR": {"name": "bench"},
        "LOGGING": {
            "version": 1,
            "disable_existing_loggers": False,
            "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
            "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
            "root": {"level": "WARNING", "handlers": ["console"]},
        },
    }


class Sink:
    """`python -m nameko run bench.sink_service:BenchSink` as a child process."""

    def __init__(self, *, amqp_uri: str, database_url: str, source: str, workdir: Path, log_path: Path,
                 max_workers: int, profile_path: Path | None = None, mode: str = "batch",
                 batch: dict | None = None):
        import yaml

        self.amqp_uri = amqp_uri
        self.database_url = database_url
        self.source = source
        self.queue = handler_queue(source)
        config_path = workdir / f"sink-{source}-{uuid.uuid4().hex[:4]}.yml"
        config_path.write_text(yaml.safe_dump(sink_config(amqp_uri, database_url, max_workers, batch)))
        command = [PYTHON]
        if profile_path is not None:
            command += ["-m", "cProfile", "-o", str(profile_path)]
            command += [str(Path(PYTHON).parent / "nameko")]
        else:
            command += ["-m", "nameko"]
        command += ["run", "--config", str(config_path), "bench.sink_service:BenchSink"]
        env = {"BENCH_SOURCE": source, "BENCH_SINK": mode,
               "PYTHONWARNINGS": SILENCE_EVENTLET, "PYTHONUNBUFFERED": "1",
               "PYTHONPATH": str(ROOT)}
        self.child = Child(command, env=env, log_path=log_path, capture=False)
        self.log_path = log_path

    def wait_ready(self, timeout: float = 60.0, consumers: int = 1) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.child.proc.poll() is not None:
                raise RuntimeError(f"the sink service exited with {self.child.proc.returncode}; see {self.log_path}")
            counts = raw_pika.queue_counts(self.amqp_uri, self.queue)
            if counts is not None and counts[1] >= consumers:
                return
            time.sleep(0.2)
        raise TimeoutError(f"the sink service did not consume from {self.queue} within {timeout:.0f}s")

    def alive(self) -> bool:
        return self.child.proc.poll() is None

    def stop(self) -> None:
        self.child.stop(20)


def run_producer(*, database_url: str, amqp_uri: str, source: str, run: str, events: int, timeout: float,
                 log_path: Path, extra: list[str] = (), profile_path: Path | None = None) -> dict:
    command = [PYTHON, "-m", "bench.producer", "--database", database_url, "--amqp", amqp_uri, "--source", source,
               "--run", run, "--events", str(events), "--drain-timeout", str(timeout), *extra]
    if profile_path is not None:
        command += ["--profile", str(profile_path)]
    child = Child(command, log_path=log_path)
    try:
        return child.result(timeout * 2 + 60)
    finally:
        child.kill()


def declare_topology(amqp_uri: str, source: str, events_config: dict | None = None, *,
                     archive: bool = True) -> None:
    """Provision what a deployment provisions before the sink starts (partnership_ops.topology, through the
    management API): the sink's queue, policies and retry path, the source's exchange and, unless
    `archive` is False (to measure what it costs), the source's archive stream."""
    from bench.common import EVENT_TYPE, SINK_METHOD, SINK_SERVICE
    from partnership_ops import links, topology
    from shared.config import events_settings

    settings = events_settings(events_config or {})
    sink = topology.ServiceTopology(SINK_SERVICE, (topology.Handler(source, EVENT_TYPE, SINK_METHOD,
                                                                    handler_queue(source)),))
    document = topology.definitions([sink, topology.ServiceTopology(source, ())],
                                    delivery_limit=settings["delivery_limit"],
                                    retry_delays_ms=[int(d) for d in settings["retry_delays_ms"]])
    document["permissions"] = []  # the bench runs as the broker's administrator
    if not archive:
        stream = topology.archive_name(source)
        document["queues"] = [q for q in document["queues"] if q["name"] != stream]
        document["bindings"] = [b for b in document["bindings"] if b["destination"] != stream]
        document["policies"] = [p for p in document["policies"] if p["pattern"] != f"^{re.escape(stream)}$"]
    topology.apply(topology.Management.for_amqp_uri(amqp_uri, url=PRIVATE.get("management_url")), document,
                   vhost=links.vhost_of(amqp_uri))


def wait_for_effects(engine, run: str, expected: int, timeout: float, alive=lambda: True,
                     stall_seconds: float = 20.0) -> int:
    """Poll the sink's effect count until `expected`, the timeout, a dead sink, or no progress for a while."""
    from sqlalchemy import text

    deadline = time.monotonic() + timeout
    done, last_progress = -1, time.monotonic()
    while time.monotonic() < deadline:
        with engine.connect() as connection:
            now_done = connection.execute(text("SELECT count(*) FROM bench_effects WHERE run = :run"),
                                          {"run": run}).scalar()
        if now_done != done:
            done, last_progress = now_done, time.monotonic()
        if done >= expected or not alive() or time.monotonic() - last_progress > stall_seconds:
            break
        time.sleep(0.25)
    return max(done, 0)


def analyse(source_engine, sink_engine, run: str, produced: dict) -> dict:
    """Throughput, per-stage progress and latency of one producer run, from both databases."""
    from sqlalchemy import text

    with sink_engine.connect() as connection:
        rows = connection.execute(text("SELECT seq, produced_at, applied_at FROM bench_effects WHERE run = :run"),
                                  {"run": run}).all()
    with source_engine.connect() as connection:
        relay = connection.execute(text(
            "SELECT count(*), min(sent_at), max(sent_at), count(DISTINCT sent_at) FROM outbox "
            "WHERE body LIKE :pattern AND sent_at IS NOT NULL"), {"pattern": f'%"run":"{run}"%'}).one()
    n = len(rows)
    latencies = sorted((applied - produced_at) * 1000.0 for _seq, produced_at, applied in rows)
    first_commit = min((r[1] for r in rows), default=None)
    last_effect = max((r[2] for r in rows), default=None)
    first_effect = min((r[2] for r in rows), default=None)
    span = (last_effect - first_commit) if n > 1 else None
    sent_last = naive_utc_to_epoch(_as_datetime(relay[2]))
    producer_span = produced["last_commit"] - produced["first_commit"] if produced.get("last_commit") else None
    result = {
        "events": produced["events"],
        "time_capped": produced.get("time_capped", False),
        "effects": n,
        "complete": n == produced["events"],
        "duplicates_or_missing": produced["events"] - n,
        "seconds": span,
        "rate": n / span if span else None,
        "producer": {
            "seconds": producer_span,
            "rate": produced["events"] / producer_span if producer_span else None,
            "first_commit": produced.get("first_commit"),
            "last_commit": produced.get("last_commit"),
            "relay_errors": produced.get("relay_errors"),
        },
        "relay": {
            "confirmed": relay[0],
            "rounds": relay[3],
            "mean_batch": relay[0] / relay[3] if relay[3] else None,
            "last_confirm_after_last_commit_s": (sent_last - produced["last_commit"])
            if sent_last and produced.get("last_commit") else None,
            "rate": relay[0] / (sent_last - produced["first_commit"])
            if sent_last and produced.get("first_commit") and sent_last > produced["first_commit"] else None,
        },
        "sink": {
            "first_effect": first_effect,
            "last_effect": last_effect,
            "last_effect_after_last_confirm_s": (last_effect - sent_last) if last_effect and sent_last else None,
            "last_effect_after_last_commit_s": (last_effect - produced["last_commit"])
            if last_effect and produced.get("last_commit") else None,
        },
        "latency_ms": {
            "p50": percentile(latencies, 50),
            "p95": percentile(latencies, 95),
            "p99": percentile(latencies, 99),
            "max": latencies[-1] if latencies else None,
            "min": latencies[0] if latencies else None,
        },
    }
    if produced.get("rate"):
        achieved = produced["events"] / producer_span if producer_span else None
        result["offered_rate"] = produced["rate"]
        result["achieved_commit_rate"] = achieved
    return result


def _as_datetime(value):
    if value is None or isinstance(value, dt.datetime):
        return value
    return dt.datetime.fromisoformat(str(value))  # SQLite hands DateTime back as text on a raw query


def run_stages(source_url: str, sink_url: str, amqp_uri: str, source: str, backend: str, logdir: Path,
               args, start_sink) -> tuple[dict, "Sink"]:
    """Each stage alone on `--stage-events` events: commits only, then the relay only, then the sink only."""
    from sqlalchemy import create_engine, text

    m = args.stage_events
    stages: dict = {"events": m}
    plog = logdir / f"producer-{backend}.log"
    log(f"full path on {backend}: stage capacities, {m} events each: producer commits alone")
    produced = run_producer(database_url=source_url, amqp_uri=amqp_uri, source=source, run="stage", events=m,
                            timeout=args.phase_timeout, log_path=plog,
                            extra=["--no-relay", "--mode", args.producer_mode,
                                   "--max-seconds", str(args.stage_seconds)])
    m = produced["events"]
    stages["producer_commits"] = {"events": m, "rate": _rate(m, produced["started"], produced["last_commit"]),
                                  "time_capped": produced["time_capped"]}
    log(f"full path on {backend}: stage capacities: relay alone drains {m} events (nothing consumes)")
    drained = run_producer(database_url=source_url, amqp_uri=amqp_uri, source=source, run="stage", events=0,
                           timeout=args.phase_timeout, log_path=plog,
                           extra=["--relay-only", "--mode", args.producer_mode])
    source_engine = create_engine(source_url)
    try:
        with source_engine.connect() as connection:
            last_sent = connection.execute(text("SELECT max(sent_at) FROM outbox")).scalar()
    finally:
        source_engine.dispose()
    last_sent = naive_utc_to_epoch(_as_datetime(last_sent))
    stages["relay"] = {"events": m, "rate": _rate(m, drained["relay_started"], last_sent or drained["drained_at"]),
                       "backlog_left": drained["backlog_left"], "relay_errors": drained.get("relay_errors"),
                       "cpu_ms_per_event": 1000.0 * drained["cpu_seconds"] / m if m else None}
    stages["producer_commits"]["cpu_ms_per_event"] = 1000.0 * produced["cpu_seconds"] / m if m else None
    log(f"full path on {backend}: stage capacities: sink alone consumes {m} queued events")
    sink = start_sink()
    engine = create_engine(sink_url)
    try:
        # The sink starts consuming before it is seen ready: CPU is counted for what it applies from here on.
        meter = CpuMeter({"sink": sink.child.proc.pid}).start()
        with engine.connect() as connection:
            done_before = connection.execute(text("SELECT count(*) FROM bench_effects WHERE run = 'stage'")).scalar()
        done = wait_for_effects(engine, "stage", m, args.phase_timeout, alive=sink.alive)
        cpu = meter.stop()
        with engine.connect() as connection:
            first, last = connection.execute(text(
                "SELECT min(applied_at), max(applied_at) FROM bench_effects WHERE run = 'stage'")).one()
    finally:
        engine.dispose()
    stages["sink"] = {"events": done, "rate": (done - 1) / (last - first) if done > 1 and last > first else None,
                      "complete": done == m, "cpu": cpu_per_event(cpu, done - done_before)}
    if drained.get("relay_errors"):
        stages["relay"]["disturbed"] = f"the relay lost the broker {drained['relay_errors']:.0f} time(s)"
    if not stages["sink"]["complete"]:
        stages["sink"]["disturbed"] = f"{done} of {m} effects arrived in time"
    return stages, sink


def batch_settings(args) -> dict:
    return {"batch_max_events": args.batch_max_events, "batch_linger_ms": args.batch_linger_ms}


def run_replicas(source_url: str, sink_engine, amqp_uri: str, source: str, backend: str, logdir: Path, args,
                 start_sink) -> dict:
    """The consumer stage with one, then two replicas of the sink on one database: the replicas start
    first (idle), then the relay alone publishes `--replica-events` events committed beforehand as fast as
    it can; the rate is first to last committed effect, so it is the consumers' unless the relay is slower
    (its own rate is given beside it)."""
    from sqlalchemy import text

    m = args.replica_events
    out: dict = {"events": m}
    plog = logdir / f"producer-{backend}.log"
    for replicas in (1, 2):
        run = f"rep{replicas}"
        log(f"full path on {backend}: consumer stage with {replicas} replica(s): {m} events committed first")
        produced = run_producer(database_url=source_url, amqp_uri=amqp_uri, source=source, run=run, events=m,
                                timeout=args.phase_timeout, log_path=plog,
                                extra=["--no-relay", "--mode", args.producer_mode, "--events-per-commit", "100"])
        sinks = []
        try:
            for index in range(replicas):
                sinks.append(start_sink(f"sink-{backend}-replicas{replicas}-{index}", consumers=index + 1,
                                        profile=False))
            meter = CpuMeter({f"sink{i}": s.child.proc.pid for i, s in enumerate(sinks)}).start()
            log(f"full path on {backend}: consumer stage with {replicas} replica(s): the relay publishes them")
            drained = run_producer(database_url=source_url, amqp_uri=amqp_uri, source=source, run=run, events=0,
                                   timeout=args.phase_timeout, log_path=plog,
                                   extra=["--relay-only", "--mode", args.producer_mode])
            done = wait_for_effects(sink_engine, run, produced["events"], args.phase_timeout,
                                    alive=lambda: all(s.alive() for s in sinks))
            cpu = meter.stop()
            with sink_engine.connect() as connection:
                first, last = connection.execute(text(
                    "SELECT min(applied_at), max(applied_at) FROM bench_effects WHERE run = :run"), {"run": run}).one()
        finally:
            for s in sinks:
                s.stop()
        sink_cpu = sum(v for k, v in cpu.items() if k.startswith("sink") and v is not None)
        entry = {"replicas": replicas, "events": done, "complete": done == produced["events"],
                 "rate": (done - 1) / (last - first) if done > 1 and last and first and last > first else None,
                 "relay_rate": _rate(produced["events"], drained.get("relay_started"), drained.get("drained_at")),
                 "sink_cpu_ms_per_event": 1000.0 * sink_cpu / done if done else None,
                 "postgres_cpu_ms_per_event": 1000.0 * cpu["postgres"] / done if done and cpu.get("postgres") else None,
                 "machine_busy_fraction": cpu.get("machine_busy_fraction")}
        if not entry["complete"]:
            entry["disturbed"] = f"{done} of {produced['events']} effects arrived in time"
        out[f"replicas_{replicas}"] = entry
    return out


def _check_disturbance(result: dict, produced: dict, sink: "Sink") -> None:
    """Flag a run the broker's restart (or a dead sink) spoiled, so no one reads its figures as capacity."""
    problems = []
    if produced.get("relay_errors"):
        problems.append(f"the relay lost the broker {produced['relay_errors']:.0f} time(s) (broker restarted?)")
    if sink.child.proc.poll() is not None:
        problems.append(f"the sink service exited with {sink.child.proc.returncode} (see {sink.log_path})")
    if not result.get("complete"):
        problems.append(f"{result.get('effects')} of {result.get('events')} effects arrived in time")
    if problems:
        result["disturbed"] = problems
        log("run disturbed: " + "; ".join(problems))
        if sink.child.proc.poll() is not None:
            raise RuntimeError("the sink service died: " + "; ".join(problems))


def _rate(count: int, start: float | None, end: float | None) -> float | None:
    if not count or start is None or end is None or end <= start:
        return None
    return count / (end - start)


def run_full_path(backend: str, amqp_uri: str, workdir: Path, logdir: Path, args) -> dict:
    from sqlalchemy import create_engine

    databases = Databases(backend, workdir, args.postgres_url)
    sink = None
    engines = []
    source = f"benchsrc{backend[:2]}{uuid.uuid4().hex[:6]}"
    out: dict = {"backend": backend, "source": source, "producer_mode": args.producer_mode,
                 "archive": not args.no_archive}
    try:
        source_url, sink_url = databases.url("src"), databases.url("sink")
        out["databases"] = {"producer": _hide(source_url), "sink": _hide(sink_url)}
        declare_topology(amqp_uri, source, archive=not args.no_archive)

        def start_sink(name: str = f"sink-{backend}", consumers: int = 1, profile: bool = args.profile):
            log(f"full path on {backend}: starting the sink service {name} (nameko run, {args.sink} handler, "
                f"max_workers={args.max_workers})")
            started = Sink(amqp_uri=amqp_uri, database_url=sink_url, source=source, workdir=workdir,
                           log_path=logdir / f"{name}.log", max_workers=args.max_workers,
                           profile_path=(logdir / f"{name}.prof") if profile else None, mode=args.sink,
                           batch=batch_settings(args))
            started.wait_ready(60, consumers=consumers)
            return started

        if args.stage_events > 0:
            out["stages"], sink = run_stages(source_url, sink_url, amqp_uri, source, backend, logdir, args,
                                             start_sink)
        else:
            sink = start_sink()
        source_engine, sink_engine = create_engine(source_url), create_engine(sink_url)
        engines += [source_engine, sink_engine]

        out["throughput_by_events_per_commit"] = {}
        for per_commit in args.producer_events_per_commit:
            run = f"tput{per_commit}"
            log(f"full path on {backend}: throughput, {args.events} events as fast as the producer commits "
                f"them, {per_commit} per transaction (at most {args.max_seconds:.0f} s of commits)")
            meter = CpuMeter({"sink": sink.child.proc.pid}).start()
            produced = run_producer(database_url=source_url, amqp_uri=amqp_uri, source=source, run=run,
                                    events=args.events, timeout=args.phase_timeout,
                                    log_path=logdir / f"producer-{backend}.log",
                                    extra=["--mode", args.producer_mode, "--max-seconds", str(args.max_seconds),
                                           "--concurrency", str(args.producer_concurrency),
                                           "--events-per-commit", str(per_commit)],
                                    profile_path=(logdir / f"producer-{backend}-{per_commit}.txt")
                                    if args.profile else None)
            wait_for_effects(sink_engine, run, produced["events"], args.phase_timeout, alive=sink.alive)
            cpu = meter.stop()
            result = analyse(source_engine, sink_engine, run, produced)
            result["events_per_commit"] = per_commit
            result["cpu"] = cpu_per_event(cpu, produced["events"], {"producer_and_relay": produced.get("cpu_seconds")})
            result["cpu"]["raw"] = cpu
            _check_disturbance(result, produced, sink)
            out["throughput_by_events_per_commit"][per_commit] = result
            out["throughput"] = result  # the targets are judged on the last (the most events per commit)

        count = int(args.latency_rate * args.latency_seconds)
        log(f"full path on {backend}: latency, {count} events at {args.latency_rate:.0f}/s")
        produced = run_producer(database_url=source_url, amqp_uri=amqp_uri, source=source, run="lat",
                                events=count, timeout=args.phase_timeout, log_path=logdir / f"producer-{backend}.log",
                                extra=["--mode", args.producer_mode, "--rate", str(args.latency_rate),
                                       "--max-seconds", str(args.latency_seconds * 3)])
        wait_for_effects(sink_engine, "lat", produced["events"], 30, alive=sink.alive)
        out["latency"] = analyse(source_engine, sink_engine, "lat", produced)
        _check_disturbance(out["latency"], produced, sink)
        out["sink_log_tail"] = _tail(sink.log_path)
        if args.replica_events > 0 and backend in args.replica_backends.split(","):
            sink.stop()
            sink = None
            out["replicas"] = run_replicas(source_url, sink_engine, amqp_uri, source, backend, logdir, args,
                                           start_sink)
    except Exception as exc:  # noqa: BLE001 - the run goes on with the other backend; the error is reported
        out["error"] = f"{type(exc).__name__}: {exc}"
        log(f"full path on {backend} failed: {exc}\n{traceback.format_exc()}")
    finally:
        if sink is not None:
            sink.stop()
        for engine in engines:
            engine.dispose()
        databases.drop_all()
        with contextlib.suppress(Exception):
            raw_pika.delete_queue(amqp_uri, handler_queue(source))
    if args.profile:
        _summarise_sink_profile(logdir / f"sink-{backend}.prof", logdir / f"sink-{backend}.txt")
    return out


def _summarise_sink_profile(prof: Path, text_path: Path) -> None:
    import io
    import pstats

    if not prof.exists():
        return
    buffer = io.StringIO()
    pstats.Stats(str(prof), stream=buffer).sort_stats("tottime").print_stats(40)
    text_path.write_text(buffer.getvalue())


def _hide(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _tail(path: Path, lines: int = 5) -> list[str]:
    try:
        return path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return []


# -- report ----------------------------------------------------------------------------------

def _fmt(value, digits: int = 0, unit: str = "") -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}{unit}"


def build_summary(results: dict) -> dict:
    raw = results.get("raw") or {}
    raw_e2e = {}
    for queue_type, section in raw.items():
        pipeline = section.get("pipeline_windowed") or {}
        if pipeline.get("rate"):
            raw_e2e[queue_type] = pipeline["rate"]
    best_raw = max(raw_e2e.values()) if raw_e2e else None
    summary = {"raw_e2e_windowed": raw_e2e, "raw_e2e_reference": best_raw, "backends": {}}
    for backend, full in (results.get("full_path") or {}).items():
        tput = (full.get("throughput") or {})
        lat = (full.get("latency") or {}).get("latency_ms") or {}
        rate = tput.get("rate")
        clean = bool(tput.get("complete")) and not tput.get("disturbed")
        lat_clean = bool((full.get("latency") or {}).get("complete")) and not (full.get("latency") or {}).get("disturbed")
        ratio = rate / best_raw if rate and best_raw else None
        target = TARGET_EVENTS_PER_S.get(backend, max(TARGET_EVENTS_PER_S.values()))
        summary["backends"][backend] = {
            "target_rate": target,
            "rate_vs_target": rate / target if rate else None,
            "rate": rate,
            "ratio_to_raw": ratio,
            "ratio_to_raw_by_queue_type": {q: rate / r for q, r in raw_e2e.items()} if rate else {},
            "p50_ms": lat.get("p50"),
            "p99_ms": lat.get("p99"),
            "targets": {
                f"rate >= {target:,.0f}/s": bool(rate and rate >= target and clean),
                f"ratio >= {TARGET_RATIO}": bool(ratio and ratio >= TARGET_RATIO and clean),
                f"p99 < {TARGET_P99_MS:.0f} ms at {results['settings']['latency_rate']:.0f}/s": bool(
                    lat.get("p99") is not None and lat["p99"] < TARGET_P99_MS and lat_clean),
            },
        }
    return summary


def render_table(results: dict) -> str:
    lines = []
    s = results["settings"]
    lines.append(f"Event-path benchmark  ({results['machine']['cpus']} cores, load avg at start "
                 f"{results['machine']['loadavg_start']}, N={s['events']:,})")
    lines.append("")
    lines.append("(a) raw pika, persistent messages, same envelope and headers as the outbox path")
    lines.append(f"  {'queue':<8} {'measurement':<52} {'events':>8} {'events/s':>10}")
    for queue_type, section in (results.get("raw") or {}).items():
        def row(label, entry, count_key):
            if not entry:
                return
            done = "" if entry.get("complete", True) else "  INCOMPLETE"
            if entry.get("rabbitmq_cpu_ms_per_event") is not None:
                done += f"   (rabbitmq {entry['rabbitmq_cpu_ms_per_event']:.2f} ms CPU/event)"
            lines.append(f"  {queue_type:<8} {label:<52} {_fmt(entry.get(count_key)):>8} "
                         f"{_fmt(entry.get('rate')):>10}{done}")
        row("publish, one confirm per message (BlockingConnection)", section.get("publish_per_message"),
            "published")
        row(f"publish, window of {s['window']} unconfirmed (SelectConnection)", section.get("publish_windowed"),
            "confirmed")
        row("consume + ack each, prefetch 200 (pre-filled queue)", section.get("consume"), "consumed")
        row("end to end, 2 processes, windowed confirms", section.get("pipeline_windowed"), "consumed")
        row("end to end, 2 processes, one confirm per message", section.get("pipeline_per_message"), "consumed")
    if results.get("raw_error"):
        lines.append(f"  raw pika failed: {results['raw_error']}")
    lines.append("")
    lines.append(f"(b) full path: UnitOfWork commit ({s.get('producer_concurrency', 1)} at a time, "
                 f"{s.get('producer_events_per_commit', 1)} event(s) each) -> outbox -> "
                 f"OutboxRelay ({'OS' if s['producer_mode'] == 'thread' else 'green'} thread, batched confirms) -> quorum queue ->")
    if s.get("sink", "single") == "batch":
        lines.append(f"    nameko BatchedEventHandler (batches of up to {s['batch_max_events']} events or "
                     f"{s['batch_linger_ms']:g} ms, max_workers={s['max_workers']}) -> one transaction per batch "
                     "(an inbox row + an effect row per event) -> ack each after the commit")
    else:
        lines.append(f"    nameko ReliableEventHandler (max_workers={s['max_workers']}) -> inbox + effect in one "
                     "transaction -> ack")
    lines.append("  (one row per producer transaction size: N/tx = N events per producer commit)")
    lines.append(f"  {'db':<11} {'events':>7} {'effects':>8} {'first commit->last effect':>26} {'events/s':>9} "
                 f"{'producer/s':>11} {'relay rounds':>13} {'mean batch':>11} {'sink lag at end':>16}")
    for backend, full in (results.get("full_path") or {}).items():
        if full.get("error") and not full.get("throughput"):
            lines.append(f"  {backend:<11} FAILED: {full['error']}")
            continue
        runs = full.get("throughput_by_events_per_commit") or {"": full["throughput"]}
        for per_commit, t in runs.items():
            label = f"{backend} {per_commit}/tx" if per_commit != "" else backend
            lines.append(
                f"  {label:<11} {_fmt(t['events']):>7} {_fmt(t['effects']):>8} {_fmt(t['seconds'], 2, ' s'):>26} "
                f"{_fmt(t['rate']):>9} {_fmt(t['producer']['rate']):>11} {_fmt(t['relay']['rounds']):>13} "
                f"{_fmt(t['relay']['mean_batch'], 1):>11} {_fmt(t['sink']['last_effect_after_last_commit_s'], 2, ' s'):>16}")
            c = t.get("cpu") or {}
            if c:
                lines.append(f"  {'':<11} CPU ms/event: producer+relay {_fmt(c.get('producer_and_relay_ms_per_event'), 2)}, "
                             f"sink {_fmt(c.get('sink_ms_per_event'), 2)}, rabbitmq {_fmt(c.get('rabbitmq_ms_per_event'), 2)}, "
                             f"postgres {_fmt(c.get('postgres_ms_per_event'), 2)}, kernel irq "
                             f"{_fmt(c.get('kernel_irq_softirq_ms_per_event'), 2)}, everything else "
                             f"{_fmt(c.get('everything_else_ms_per_event'), 2)}; machine busy "
                             f"{_fmt((c.get('machine_busy_fraction') or 0) * 100)}%")
            if t.get("disturbed"):
                lines.append(f"  {'':<11} DISTURBED: {'; '.join(t['disturbed'])}")
            if t.get("time_capped"):
                lines.append(f"  {'':<11} (commits stopped after {s['max_seconds']:.0f} s: fewer events than asked)")
        if full.get("error"):
            lines.append(f"  {'':<11} then failed: {full['error']}")
    if any(((full.get("throughput") or {}).get("cpu") for full in (results.get("full_path") or {}).values())):
        lines.append("  (CPU from /proc over the run. \"kernel irq\": interrupt and softirq time (loopback network, "
                     "disk completions); \"everything else\": busy CPU of no listed process: kernel workers, "
                     "this driver, the producer's start-up, other processes.)")
    if any((full.get("stages") for full in (results.get("full_path") or {}).values())):
        lines.append("")
        lines.append(f"  each stage alone (same processes, {s['stage_events']:,} events, nothing else running "
                     "on the path), events/s:")
        lines.append(f"  {'db':<11} {'producer commits':>17} {'relay publish+confirm':>22} {'sink consume+apply':>19}"
                     "   (CPU ms/event of that process)")
        for backend, full in (results.get("full_path") or {}).items():
            st = full.get("stages")
            if not st:
                continue
            p, r, k = st["producer_commits"], st["relay"], st["sink"]
            flags = "; ".join(x["disturbed"] for x in (r, k) if x.get("disturbed"))
            lines.append(f"  {backend:<11} {_fmt(p['rate']):>7} ({_fmt(p.get('cpu_ms_per_event'), 2):>5} ms) "
                         f"{_fmt(r['rate']):>12} ({_fmt(r.get('cpu_ms_per_event'), 2):>5} ms) "
                         f"{_fmt(k['rate']):>9} ({_fmt((k.get('cpu') or {}).get('sink_ms_per_event'), 2):>5} ms)"
                         + (f"  DISTURBED: {flags}" if flags else ""))
    if any((full.get("replicas") for full in (results.get("full_path") or {}).values())):
        lines.append("")
        lines.append("  consumer stage with one and with two replicas of the sink (one database; queue fed by the "
                     "relay alone), events/s:")
        for backend, full in (results.get("full_path") or {}).items():
            rep = full.get("replicas")
            if not rep:
                continue
            for key in ("replicas_1", "replicas_2"):
                r = rep.get(key)
                if not r:
                    continue
                lines.append(f"  {backend:<11} {r['replicas']} replica(s): {_fmt(r['rate']):>7} events/s "
                             f"({_fmt(r['events'])} events; relay fed {_fmt(r['relay_rate'])}/s; sink CPU "
                             f"{_fmt(r['sink_cpu_ms_per_event'], 2)} ms/event, postgres "
                             f"{_fmt(r['postgres_cpu_ms_per_event'], 2)} ms/event; machine busy "
                             f"{_fmt((r.get('machine_busy_fraction') or 0) * 100)}%)"
                             + (f"  DISTURBED: {r['disturbed']}" if r.get("disturbed") else ""))
    lines.append("")
    lines.append(f"(c) latency, producer commit -> committed effect, at {s['latency_rate']:.0f} events/s "
                 f"for {s['latency_seconds']:.0f} s")
    lines.append(f"  {'db':<11} {'events':>7} {'effects':>8} {'achieved/s':>11} {'p50 ms':>8} {'p95 ms':>8} "
                 f"{'p99 ms':>8} {'max ms':>8}")
    for backend, full in (results.get("full_path") or {}).items():
        lat = full.get("latency")
        if not lat:
            continue
        m = lat["latency_ms"]
        lines.append(f"  {backend:<11} {_fmt(lat['events']):>7} {_fmt(lat['effects']):>8} "
                     f"{_fmt(lat.get('achieved_commit_rate')):>11} {_fmt(m['p50'], 1):>8} {_fmt(m['p95'], 1):>8} "
                     f"{_fmt(m['p99'], 1):>8} {_fmt(m['max'], 1):>8}")
        if lat.get("disturbed"):
            lines.append(f"  {'':<11} DISTURBED: {'; '.join(lat['disturbed'])}")
    lines.append("")
    summary = results["summary"]
    ref = summary.get("raw_e2e_reference")
    lines.append(f"Targets (raw pika end-to-end reference = best windowed pipeline above: {_fmt(ref)} events/s)")
    for backend, b in summary["backends"].items():
        by_type = ", ".join(f"{q} {_fmt(r, 2)}" for q, r in b["ratio_to_raw_by_queue_type"].items())
        lines.append(f"  {backend:<11} {_fmt(b['rate'])} events/s ({_fmt((b.get('rate_vs_target') or 0) * 100)}% of "
                     f"the {_fmt(b.get('target_rate'))}/s target), ratio to raw {_fmt(b['ratio_to_raw'], 2)} "
                     f"({by_type}), p99 {_fmt(b['p99_ms'], 1)} ms")
        for name, ok in b["targets"].items():
            lines.append(f"  {'':<11} {'MET   ' if ok else 'MISSED'} {name}")
    lines.append("")
    lines.append(f"Total {results['elapsed_seconds']:.0f} s.  JSON: {results['json_path']}")
    return "\n".join(lines)


# -- main ------------------------------------------------------------------------------------

def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.event_path",
                                     description="raw pika beside the outbox -> relay -> inbox event path")
    parser.add_argument("--events", type=int, default=20000, help="events per throughput run (default 20000)")
    parser.add_argument("--per-message-events", type=int, default=3000,
                        help="events for the raw one-confirm-per-message runs (default 3000; they are slow)")
    parser.add_argument("--window", type=int, default=500,
                        help="raw pika: unconfirmed messages in flight (default 500, the relay's batch size)")
    parser.add_argument("--backends", default="sqlite,postgresql", help="comma-separated: sqlite,postgresql")
    parser.add_argument("--latency-rate", type=float, default=200.0)
    parser.add_argument("--latency-seconds", type=float, default=10.0)
    parser.add_argument("--sink", choices=("batch", "single"), default="batch",
                        help="the sink's handler: consumes_batch (default) or consumes (one event per transaction)")
    parser.add_argument("--batch-max-events", type=int, default=100, help="batched sink: events per batch (N)")
    parser.add_argument("--batch-linger-ms", type=float, default=10.0, help="batched sink: linger, ms")
    parser.add_argument("--max-workers", type=int, default=None,
                        help="sink's nameko max_workers (= prefetch); default 10, or 2 N with --sink batch")
    parser.add_argument("--replica-events", type=int, default=10000,
                        help="events for the consumer stage with one and with two replicas (0 skips)")
    parser.add_argument("--replica-backends", default="postgresql",
                        help="databases on which the replica stage runs (default postgresql)")
    parser.add_argument("--producer-mode", choices=("green", "thread"), default="green",
                        help="relay beside the producer as an eventlet green thread (as Storage runs it) or an OS thread")
    parser.add_argument("--producer-concurrency", type=int, default=1,
                        help="units of work the producer commits at once in the throughput run (default 1)")
    parser.add_argument("--producer-events-per-commit", default="1,20",
                        help="events per producer transaction, one throughput run each, comma-separated; the "
                             "targets are judged on the last (default 1,20)")
    parser.add_argument("--max-seconds", type=float, default=75.0,
                        help="bound on the throughput run's committing, seconds (default 75)")
    parser.add_argument("--stage-events", type=int, default=4000,
                        help="events for each stage measured alone (producer, relay, sink); 0 skips (default 4000)")
    parser.add_argument("--stage-seconds", type=float, default=10.0)
    parser.add_argument("--phase-timeout", type=float, default=120.0, help="bound on each phase, seconds")
    parser.add_argument("--skip-raw", action="store_true")
    parser.add_argument("--no-archive", action="store_true",
                        help="provision without the source's archive stream, to measure what the archive costs")
    parser.add_argument("--profile", action="store_true",
                        help="cProfile the producer, the relay and the sink; reports in var/bench/logs/")
    parser.add_argument("--amqp-uri", default=os.environ.get("AMQP_URI", DEFAULT_AMQP_URI))
    parser.add_argument("--private-broker", action="store_true",
                        help="run on a RabbitMQ node of its own, started beside the machine's and removed "
                             "afterwards (tests/brokers.py), e.g. when the shared node is unavailable")
    parser.add_argument("--postgres-url", default=os.environ.get("BENCH_POSTGRES_URL", DEFAULT_PG_URL))
    parser.add_argument("--out", default=None,
                        help="JSON file (default var/bench/event_path.json)")
    args = parser.parse_args(argv)
    args.producer_events_per_commit = [int(x) for x in str(args.producer_events_per_commit).split(",") if x.strip()]
    if args.max_workers is None:
        args.max_workers = 2 * args.batch_max_events if args.sink == "batch" else 10
    if args.out is None:
        args.out = str(ROOT / "var" / "bench" / "event_path.json")
    if args.events < 2:
        parser.error("--events must be at least 2")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    out_path = Path(args.out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    logdir = out_path.parent / "logs"
    logdir.mkdir(parents=True, exist_ok=True)
    for old in logdir.glob("*"):
        with contextlib.suppress(OSError):
            old.unlink()
    import amqp as py_amqp
    import nameko
    import pika
    import sqlalchemy

    results: dict = {
        "started_at": dt.datetime.now(dt.timezone.utc).isoformat(),
        "machine": {"cpus": os.cpu_count(), "loadavg_start": [round(x, 2) for x in os.getloadavg()],
                    "python": platform.python_version()},
        "versions": {"nameko": nameko.__version__ if hasattr(nameko, "__version__") else _dist_version("nameko"),
                     "pika": pika.__version__, "amqp": py_amqp.__version__, "sqlalchemy": sqlalchemy.__version__,
                     "eventlet": _dist_version("eventlet"), "kombu": _dist_version("kombu")},
        "settings": {"events": args.events, "per_message_events": min(args.events, args.per_message_events),
                     "window": args.window, "latency_rate": args.latency_rate,
                     "latency_seconds": args.latency_seconds, "max_workers": args.max_workers,
                     "sink": args.sink, "batch_max_events": args.batch_max_events,
                     "batch_linger_ms": args.batch_linger_ms, "replica_events": args.replica_events,
                     "relay_batch_size": events_settings({})["relay_batch_size"], "backends": args.backends, "producer_mode": args.producer_mode,
                     "max_seconds": args.max_seconds, "stage_events": args.stage_events,
                     "producer_concurrency": args.producer_concurrency,
                     "producer_events_per_commit": ",".join(map(str, args.producer_events_per_commit)),
                     "relay_linger_ms": events_settings({})["relay_linger_ms"]},
        "targets": {"events_per_s": TARGET_EVENTS_PER_S, "ratio_to_raw": TARGET_RATIO, "p99_ms": TARGET_P99_MS},
    }
    results["versions"]["rabbitmq"] = _rabbitmq_version()
    vhost = None
    workdir = Path(tempfile.mkdtemp(prefix="bench-", dir=out_path.parent))
    private = None
    if args.private_broker:
        from tests.brokers import PrivateBroker

        log("starting a private RabbitMQ node")
        private = PrivateBroker().start()
        PRIVATE.update(node=private.node, management_url=private.management_url, user=private.admin_user)
        args.amqp_uri = private.uri("/")
        results["private_broker"] = private.node
    try:
        vhost = Vhost(args.amqp_uri)
        results["vhost"] = vhost.name
        log(f"virtual host {vhost.name}")
        if not args.skip_raw:
            try:
                results["raw"] = run_raw(vhost.amqp_uri, args)
            except Exception as exc:  # noqa: BLE001 - reported; the full path still runs
                results["raw_error"] = f"{type(exc).__name__}: {exc}"
                log(f"raw pika failed: {exc}\n{traceback.format_exc()}")
        results["full_path"] = {}
        for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
            results["full_path"][backend] = run_full_path(backend, vhost.amqp_uri, workdir, logdir, args)
    finally:
        if vhost is not None:
            vhost.delete()
        shutil.rmtree(workdir, ignore_errors=True)
        if private is not None:
            private.stop()
    results["machine"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    results["elapsed_seconds"] = time.monotonic() - started
    results["json_path"] = str(out_path.relative_to(ROOT) if out_path.is_relative_to(ROOT) else out_path)
    results["summary"] = build_summary(results)
    out_path.write_text(json.dumps(results, indent=2, default=str))
    print(render_table(results))
    return 0


def _dist_version(name: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _rabbitmq_version() -> str | None:
    try:
        for line in rabbitmqctl("status").splitlines():
            if line.startswith("RabbitMQ version:"):
                return line.split(":", 1)[1].strip()
    except Exception:  # noqa: BLE001
        return None
    return None


if __name__ == "__main__":
    sys.exit(main())
