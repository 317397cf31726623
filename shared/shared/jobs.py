"""Long work as a job, not a request: a billing run or a renewal round.

A request starts a run and answers at once (202) with the run resource (`GET /runs/<id>`) to poll.
The run is a row in the service's own `job_runs` table and is executed by a managed green thread:

- **Progress**: the job reports `done` of `total` as it goes; the row and the
  `partnership_job_progress_ratio` gauge show it, and each report is the run's heartbeat.
- **Stopping**: on SIGTERM (the container stopping) the job is asked to stop and does so at its
  next batch boundary (`control.check()`), within the grace period: the run is `interrupted`, never
  half-done silently. A resumable job (one that picks up where it stopped and never does a thing
  twice, as the renewal round and billing run are) is started again when the service is next up.
- **Restarts and replicas**: a run whose heartbeat is older than `stale_after` (its process died) is
  claimed by whichever replica sees it first, with a compare-and-set on the row, so exactly one
  resumes it; a job that cannot resume is reported `failed` with the reason.
- **One at a time**: a second run of a kind while one is queued or running is refused, naming it.
- **Metrics**: `partnership_job_runs_total{job,outcome}` and
  `partnership_job_last_success_timestamp_seconds{job}` (read back from the table at start, so a
  restart does not forget the last success).

Statuses: running -> succeeded | failed | interrupted (-> running again when resumed); `queued` only
for a run recorded while its process was stopping (the next start runs it).
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import os
import threading
import uuid
from typing import Any, Callable, Mapping

import sqlalchemy as sa
from nameko.extensions import DependencyProvider

from shared import logs
from shared.messaging_tables import utcnow
from shared.metrics import metrics_for
from shared.unit_of_work import Origin, UnitsOfWork

log = logging.getLogger(__name__)

STATUSES = ("queued", "running", "succeeded", "failed", "interrupted")
ACTIVE = ("queued", "running")


def define_job_runs_table(metadata: sa.MetaData) -> sa.Table:
    """The `job_runs` table of a service's own database."""
    return sa.Table("job_runs", metadata, *_job_run_columns())


def _job_run_columns() -> list[sa.Column]:
    return [
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("kind", sa.String(50), nullable=False, index=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("params", sa.Text, nullable=False),
        sa.Column("done", sa.Integer, nullable=False, server_default="0"),
        sa.Column("total", sa.Integer),
        sa.Column("result", sa.Text),
        sa.Column("error", sa.Text),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("correlation_id", sa.String(100)),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("started_at", sa.DateTime),
        sa.Column("heartbeat_at", sa.DateTime),
        sa.Column("finished_at", sa.DateTime),
    ]


def create_job_runs(op) -> None:
    """For a service's Alembic migration: create `job_runs` as `define_job_runs_table` declares it."""
    op.create_table("job_runs", *_job_run_columns())  # `kind`'s index comes with it


class JobInterrupted(Exception):
    """Raised by `JobControl.check()` when the service is stopping: the run stops at a batch boundary."""


class JobAlreadyRunning(Exception):
    """A run of this kind is queued or running already."""

    def __init__(self, run: dict):
        super().__init__(f"a {run['kind']} run is already {run['status']}: {run['id']}")
        self.run = run


class JobControl:
    """What a running job sees: report progress (the heartbeat) and stop when asked."""

    def __init__(self, jobs: "Jobs", run_id: str, kind: str):
        self._jobs = jobs
        self.run_id = run_id
        self.kind = kind
        self.config = jobs.container.config  # the service's configuration, as its workers see it

    def progress(self, done: int, total: int | None = None) -> None:
        self._jobs._progress(self.run_id, self.kind, done, total)
        self._jobs._hold()

    @property
    def stopping(self) -> bool:
        return self._jobs.stopping.is_set()

    def check(self) -> None:
        """Raise JobInterrupted if the service is stopping (call it between batches)."""
        if self.stopping:
            raise JobInterrupted(f"{self.kind} run {self.run_id} stopped: the service is stopping")


# A job: (units of work, its params, its control) -> a JSON-able result.
JobFunction = Callable[[UnitsOfWork, dict, JobControl], Mapping[str, Any]]


def run_view(row) -> dict:
    """The run resource (what `GET /runs/<id>` answers)."""
    total = row.total
    return {"id": row.id, "kind": row.kind, "status": row.status, "params": json.loads(row.params),
            "progress": {"done": row.done, "total": total,
                         "ratio": round(row.done / total, 4) if total else (1.0 if row.status == "succeeded" else 0.0)},
            "result": json.loads(row.result) if row.result else None, "error": row.error, "attempts": row.attempts,
            "created_at": row.created_at.isoformat() + "Z", "started_at": _iso(row.started_at),
            "finished_at": _iso(row.finished_at), "links": {"self": f"/runs/{row.id}"}}


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() + "Z" if value is not None else None


class Jobs(DependencyProvider):
    """Runs a service's long jobs in managed green threads; `self.jobs.start(kind, params)` in an entrypoint.

    `functions`: kind -> job function; `resumable`: the kinds that may be started again after an
    interruption or a crash (the job must be idempotent). `stale_after`: seconds without a heartbeat
    after which a running run is taken to be orphaned (its process died)."""

    def __init__(self, table: sa.Table, functions: Mapping[str, JobFunction], *, resumable: frozenset[str] | set = frozenset(),
                 stale_after: float = 120.0, recover_every: float = 30.0):
        self.table = table
        self.functions = dict(functions)
        self.resumable = frozenset(resumable)
        self.stale_after = stale_after
        self.recover_every = recover_every
        self.stopping = threading.Event()
        self._threads: dict[str, Any] = {}
        self._live: dict[str, tuple[int, int | None]] = {}  # run id -> (done, total) of runs executing here
        # Called with (kind, status) after each run ends, e.g. to refresh figures the run changed.
        self.on_finished: list[Callable[[str, str], None]] = []
        self._storage = None
        self._metrics = None
        self._watcher = None

    # -- lifecycle ------------------------------------------------------------------------------
    def setup(self):
        from shared.storage import Storage

        # Fault injection for the tests only (FAULTS.hold_jobs_file): see `_hold`.
        self._hold_file = ((self.container.config.get("FAULTS") or {}).get("hold_jobs_file") or "").strip()

        self._storage = next(d for d in self.container.dependencies if isinstance(d, Storage))
        self._metrics = metrics_for(self.container.service_name)
        self._progress_gauge = self._metrics.job_progress

    def start(self):
        self._remember_last_successes()
        self._watcher = self.container.spawn_managed_thread(self._watch, identifier="jobs_recovery")

    def stop(self):
        """Ask running jobs to stop at their next batch boundary and wait for them (nameko's stop,
        on SIGTERM): each run ends `interrupted` (resumed on the next start) or finished."""
        self.stopping.set()
        for thread in list(self._threads.values()):
            try:
                thread.wait()
            except Exception:  # noqa: BLE001 - the job's own error was recorded on its run
                pass
        if self._watcher is not None:
            self._watcher.wait()

    def kill(self):
        self.stopping.set()

    def get_dependency(self, worker_ctx):
        return _Starter(self, worker_ctx.data.get("correlation_id") or worker_ctx.call_id)

    # -- runs -------------------------------------------------------------------------------------
    @property
    def database(self):
        return self._storage.database

    def begin(self, kind: str, params: dict, correlation_id: str | None) -> dict:
        """Record a run of `kind`, claimed by this process, and start it; JobAlreadyRunning if one is
        active. A process already stopping records it queued: the next start (here or a replica) runs it."""
        if kind not in self.functions:
            raise KeyError(kind)
        t = self.table
        run_id = str(uuid.uuid4())
        now = utcnow()
        launch = not self.stopping.is_set()
        with self.database.transaction() as session:
            if self.database.url.get_backend_name() == "postgresql":
                # Replicas starting the same kind at once: one at a time through this lock.
                session.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"job:{kind}"})
            active = session.execute(sa.select(t).where(t.c.kind == kind, t.c.status.in_(ACTIVE))).first()
            if active is not None:
                raise JobAlreadyRunning(run_view(active))
            session.execute(sa.insert(t).values(
                id=run_id, kind=kind, status="running" if launch else "queued", params=json.dumps(params),
                correlation_id=correlation_id, created_at=now, attempts=1 if launch else 0,
                started_at=now if launch else None, heartbeat_at=now if launch else None))
            session.commit()
        if launch:
            self._launch(run_id)
        return self.get(run_id)

    def get(self, run_id: str) -> dict | None:
        with self.database.reader() as session:
            row = session.execute(sa.select(self.table).where(self.table.c.id == run_id)).first()
        if row is None:
            return None
        view = run_view(row)
        live = self._live.get(run_id)
        if live is not None and view["status"] == "running":  # executing here: its latest progress
            done, total = live
            view["progress"] = {"done": done, "total": total, "ratio": round(done / total, 4) if total else 0.0}
        return view

    def _launch(self, run_id: str) -> None:
        """Execute a run this process has claimed (its row is `running` with our heartbeat)."""
        self._threads[run_id] = self.container.spawn_managed_thread(lambda: self._run(run_id),
                                                                    identifier=f"job:{run_id}")

    def _run(self, run_id: str) -> None:
        kind = "unknown"
        try:
            with self.database.reader() as session:
                row = dict(session.execute(sa.select(self.table).where(self.table.c.id == run_id)).one()._mapping)
            kind = row["kind"]
            logs.bind(correlation_id=row["correlation_id"], causation_id=None)
            log.info("%s run %s started (attempt %d)", kind, run_id, row["attempts"])
            control = JobControl(self, run_id, kind)
            units = UnitsOfWork(self.database, self._storage.producer, self._storage.outbox, self._storage.inbox,
                                Origin(correlation_id=row["correlation_id"] or run_id), self._storage.signal.notify)
            result = self.functions[kind](units, json.loads(row["params"]), control)
        except JobInterrupted as exc:
            self._finish(run_id, kind, "interrupted", error=str(exc))
            log.warning("%s", exc)
        except Exception as exc:  # noqa: BLE001 - recorded on the run and counted; the service goes on
            log.exception("%s run %s failed", kind, run_id)
            self._finish(run_id, kind, "failed", error=f"{type(exc).__name__}: {exc}")
        else:
            self._finish(run_id, kind, "succeeded", result=dict(result))
            log.info("%s run %s succeeded", kind, run_id)
        finally:
            self._threads.pop(run_id, None)
            logs.clear()

    def _finish(self, run_id: str, kind: str, status: str, *, result: dict | None = None, error: str | None = None):
        t = self.table
        now = utcnow()
        done, total = self._live.pop(run_id, (None, None))
        progress = {"done": done, "total": total} if done is not None else {}
        with self.database.transaction() as session:
            session.execute(sa.update(t).where(t.c.id == run_id).values(
                **progress, status=status, finished_at=now, heartbeat_at=None,
                result=json.dumps(result, default=str) if result is not None else None, error=error))
            session.commit()
        for callback in self.on_finished:
            try:
                callback(kind, status)
            except Exception:  # noqa: BLE001 - a listener's failure is not the run's
                log.warning("a listener of %s runs failed", kind, exc_info=True)
        if status == "succeeded":
            self._metrics.job_finished(kind, "ok")
        elif status == "failed":
            self._metrics.job_finished(kind, "failed")
        else:
            self._metrics.job_runs.labels(kind, status).inc()

    def _hold(self) -> None:
        """Tests only: while FAULTS.hold_jobs_file exists, a job waits after each progress report, until
        the file is removed or the service stops; so a test can stop a service in the middle of a run."""
        path = getattr(self, "_hold_file", "")
        while path and os.path.exists(path) and not self.stopping.is_set():
            self.stopping.wait(0.05)

    def _progress(self, run_id: str, kind: str, done: int, total: int | None) -> None:
        """Record progress: in this process at once (what `get` answers while the run executes here), and
        on the run's row as its heartbeat. Not on SQLite: a job may hold SQLite's one write lock for the
        whole run (a billing run is one transaction), and SQLite serves one process, whose runs are known
        to it without a heartbeat."""
        previous = self._live.get(run_id, (0, None))
        total = total if total is not None else previous[1]
        self._live[run_id] = (done, total)
        if total:
            self._progress_gauge.labels(kind).set(done / total)
        if self.database.url.get_backend_name() == "sqlite":
            return
        t = self.table
        with self.database.transaction() as session:
            session.execute(sa.update(t).where(t.c.id == run_id).values(done=done, total=total,
                                                                         heartbeat_at=utcnow()))
            session.commit()

    # -- recovery -----------------------------------------------------------------------------------
    def recover(self) -> list[str]:
        """Take over queued, interrupted and orphaned runs (running, heartbeat older than `stale_after`):
        each is claimed with a compare-and-set on its row, so of several replicas exactly one takes it.
        Resumable (and never started) runs are executed here; the others are marked failed.
        Returns the ids this process took over to execute."""
        if self.stopping.is_set():
            return []
        t = self.table
        now = utcnow()
        stale = now - dt.timedelta(seconds=self.stale_after)
        orphaned = sa.and_(t.c.status == "running", sa.or_(t.c.heartbeat_at.is_(None), t.c.heartbeat_at < stale))
        with self.database.reader() as session:
            rows = session.execute(sa.select(t.c.id, t.c.kind, t.c.status).where(
                sa.or_(t.c.status.in_(("queued", "interrupted")), orphaned))).all()
        taken = []
        for run_id, kind, status in rows:
            if run_id in self._threads:
                continue
            condition = [t.c.id == run_id, t.c.status == status]
            if status == "running":
                condition.append(sa.or_(t.c.heartbeat_at.is_(None), t.c.heartbeat_at < stale))
            if kind in self.functions and (status == "queued" or kind in self.resumable):
                values = {"status": "running", "error": None, "heartbeat_at": now, "attempts": t.c.attempts + 1,
                          "started_at": sa.func.coalesce(t.c.started_at, now)}
            else:
                values = {"status": "failed", "finished_at": now, "heartbeat_at": None,
                          "error": "interrupted by a stop or restart of the service and cannot resume; start a new run"}
            with self.database.transaction() as session:
                claimed = session.execute(sa.update(t).where(*condition).values(**values)).rowcount
                session.commit()
            if claimed and values["status"] == "running":
                log.warning("%s run %s was %s: resuming it here", kind, run_id, status)
                self._launch(run_id)
                taken.append(run_id)
            elif claimed:
                self._metrics.job_finished(kind, "failed")
        return taken

    def _watch(self) -> None:
        while not self.stopping.is_set():
            try:
                self.recover()
            except Exception:  # noqa: BLE001 - the database may be down; try again next round
                log.warning("job recovery round failed", exc_info=True)
            self.stopping.wait(self.recover_every)

    def _remember_last_successes(self) -> None:
        t = self.table
        try:
            with self.database.reader() as session:
                rows = session.execute(sa.select(t.c.kind, sa.func.max(t.c.finished_at))
                                       .where(t.c.status == "succeeded").group_by(t.c.kind)).all()
        except Exception:  # noqa: BLE001 - a metric, not a reason to fail the start
            log.warning("could not read the last successful runs", exc_info=True)
            return
        for kind, finished in rows:
            if finished is not None:
                self._metrics.job_last_success.labels(kind).set(
                    finished.replace(tzinfo=dt.timezone.utc).timestamp())


class _Starter:
    """What an entrypoint sees: start a run, read one."""

    def __init__(self, jobs: Jobs, correlation_id: str):
        self._jobs = jobs
        self._correlation_id = correlation_id

    def start(self, kind: str, params: dict) -> dict:
        return self._jobs.begin(kind, params, self._correlation_id)

    def get(self, run_id: str) -> dict | None:
        return self._jobs.get(run_id)
