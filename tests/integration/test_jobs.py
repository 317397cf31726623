"""Long work as a job (shared.jobs), on SQLite and PostgreSQL: progress, a clean stop, resumption after a
restart, exactly one replica taking over an orphaned run, one run of a kind at a time."""
import datetime as dt
import threading
import types

import pytest
import sqlalchemy as sa

from shared.db import Database
from shared.jobs import JobAlreadyRunning, Jobs, define_job_runs_table
from shared.messaging_tables import define_messaging_tables, utcnow
from shared.metrics import ServiceMetrics

metadata = sa.MetaData()
outbox, inbox = define_messaging_tables(metadata)
job_runs = define_job_runs_table(metadata)
BOUND = 30  # seconds: every wait below is bounded


class Container:
    """What Jobs needs of a nameko container: its service name, dependencies and managed threads
    (plain threads here: the job's logic, not eventlet, is under test)."""

    def __init__(self, storage):
        self.service_name = f"jobs-test-{id(self)}"
        self.dependencies = [storage]
        self.config = {}

    def spawn_managed_thread(self, fn, identifier=None):
        thread = threading.Thread(target=fn, name=identifier, daemon=True)
        thread.start()
        return types.SimpleNamespace(wait=lambda: thread.join(BOUND), kill=lambda: None, thread=thread)


class Batches:
    """A job of `total` batches that waits at a gate before each batch after the first."""

    def __init__(self, total: int = 3):
        self.total = total
        self.done: list[int] = []
        self.gate = threading.Event()
        self.first_batch_done = threading.Event()

    def __call__(self, units, params, control):
        control.progress(len(self.done), self.total)
        while len(self.done) < self.total:
            if self.done:
                while not self.gate.wait(0.05):
                    control.check()  # stopping: ends here, at a batch boundary
            control.check()
            self.done.append(len(self.done))
            control.progress(len(self.done), self.total)
            self.first_batch_done.set()
        return {"batches": len(self.done), "params": params}


@pytest.fixture
def database(databases):
    db = Database(databases.url("jobs"))
    metadata.create_all(db.engine)
    yield db
    db.dispose()


def make_jobs(database, function, *, resumable=True, stale_after=120.0):
    from shared.storage import Storage

    storage = Storage.__new__(Storage)  # a real Storage's attributes, without a nameko container
    storage.database = database
    storage.producer = None
    storage.outbox, storage.inbox = outbox, inbox
    storage.signal = types.SimpleNamespace(notify=lambda: None)
    jobs = Jobs(job_runs, {"batches": function}, resumable={"batches"} if resumable else set(),
                stale_after=stale_after, recover_every=3600)
    jobs.container = Container(storage)
    jobs.setup()
    return jobs


def wait_for_status(jobs, run_id, *statuses):
    deadline = threading.Event()
    for _ in range(BOUND * 20):
        run = jobs.get(run_id)
        if run["status"] in statuses:
            return run
        deadline.wait(0.05)
    raise AssertionError(f"run {run_id} never reached {statuses}: {jobs.get(run_id)}")


def test_a_run_reports_progress_and_its_result(database):
    job = Batches(total=3)
    job.gate.set()
    jobs = make_jobs(database, job)
    run = jobs.begin("batches", {"year": 2027}, correlation_id="corr-1")
    assert run["status"] in ("running", "succeeded") and run["links"]["self"] == f"/runs/{run['id']}"
    done = wait_for_status(jobs, run["id"], "succeeded")
    assert done["result"] == {"batches": 3, "params": {"year": 2027}}
    assert done["progress"] == {"done": 3, "total": 3, "ratio": 1.0} and done["attempts"] == 1
    metrics = jobs._metrics.registry
    assert metrics.get_sample_value("partnership_job_runs_total",
                                    {"service": jobs.container.service_name, "job": "batches", "outcome": "ok"}) == 1


def test_a_second_run_of_a_kind_is_refused_while_one_is_running(database):
    job = Batches(total=2)
    jobs = make_jobs(database, job)
    first = jobs.begin("batches", {}, correlation_id=None)
    assert job.first_batch_done.wait(BOUND)
    with pytest.raises(JobAlreadyRunning) as refused:
        jobs.begin("batches", {}, correlation_id=None)
    assert refused.value.run["id"] == first["id"]
    job.gate.set()
    wait_for_status(jobs, first["id"], "succeeded")
    second = jobs.begin("batches", {}, correlation_id=None)  # once finished, a new run may start
    assert second["id"] != first["id"]
    wait_for_status(jobs, second["id"], "succeeded")


def test_stopping_interrupts_at_a_batch_boundary_and_the_next_start_resumes_the_same_run(database):
    job = Batches(total=3)
    jobs = make_jobs(database, job)
    run = jobs.begin("batches", {}, correlation_id=None)
    assert job.first_batch_done.wait(BOUND)
    jobs.stop()  # what SIGTERM does: returns once the job has stopped
    stopped = jobs.get(run["id"])
    assert stopped["status"] == "interrupted" and stopped["progress"]["done"] == 1
    assert job.done == [0]  # nothing half-done: one whole batch, then it stopped

    job.gate.set()
    restarted = make_jobs(database, job)  # the service's next start
    assert restarted.recover() == [run["id"]]
    resumed = wait_for_status(restarted, run["id"], "succeeded")
    assert resumed["attempts"] == 2 and resumed["result"]["batches"] == 3 and job.done == [0, 1, 2]


def test_a_job_that_raises_is_reported_failed_with_its_error(database):
    def broken(units, params, control):
        control.progress(0, 1)
        raise ValueError("the books do not balance")

    jobs = make_jobs(database, broken)
    run = jobs.begin("batches", {}, correlation_id=None)
    failed = wait_for_status(jobs, run["id"], "failed")
    assert failed["error"] == "ValueError: the books do not balance" and failed["finished_at"]


def test_a_run_that_cannot_resume_is_reported_failed_not_left_running(database):
    job = Batches(total=3)
    jobs = make_jobs(database, job, resumable=False)
    run = jobs.begin("batches", {}, correlation_id=None)
    assert job.first_batch_done.wait(BOUND)
    jobs.stop()
    restarted = make_jobs(database, job, resumable=False)
    assert restarted.recover() == []
    failed = jobs.get(run["id"])
    assert failed["status"] == "failed" and "cannot resume" in failed["error"]


def test_an_orphaned_run_is_taken_over_by_exactly_one_replica(database):
    # A run whose process died: still `running`, its heartbeat five minutes old.
    old = utcnow() - dt.timedelta(minutes=5)
    with database.transaction() as session:
        session.execute(sa.insert(job_runs).values(id="orphan", kind="batches", status="running", params="{}",
                                                   done=1, total=3, attempts=1, created_at=old, started_at=old,
                                                   heartbeat_at=old))
        session.commit()
    job = Batches(total=3)
    job.gate.set()
    replicas = [make_jobs(database, job) for _ in range(3)]
    barrier = threading.Barrier(len(replicas))
    taken = []

    def recover(replica):
        barrier.wait(BOUND)
        taken.append(replica.recover())

    threads = [threading.Thread(target=recover, args=(r,)) for r in replicas]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(BOUND)
    assert sorted(len(t) for t in taken) == [0, 0, 1]
    finished = wait_for_status(replicas[0], "orphan", "succeeded")
    assert finished["attempts"] == 2 and job.done == [0, 1, 2]


def test_a_running_run_with_a_fresh_heartbeat_is_left_alone(database):
    now = utcnow()
    with database.transaction() as session:
        session.execute(sa.insert(job_runs).values(id="alive", kind="batches", status="running", params="{}",
                                                   attempts=1, created_at=now, started_at=now, heartbeat_at=now))
        session.commit()
    other_replica = make_jobs(database, Batches())
    assert other_replica.recover() == []
    assert other_replica.get("alive")["status"] == "running"


def test_the_last_success_survives_a_restart_in_the_metrics(database):
    job = Batches(total=1)
    jobs = make_jobs(database, job)
    run = jobs.begin("batches", {}, correlation_id=None)
    wait_for_status(jobs, run["id"], "succeeded")
    restarted = make_jobs(database, job)
    restarted._metrics = ServiceMetrics("jobs-restarted")  # a new process: a new registry
    restarted._remember_last_successes()
    stamp = restarted._metrics.registry.get_sample_value("partnership_job_last_success_timestamp_seconds",
                                                         {"service": "jobs-restarted", "job": "batches"})
    assert stamp is not None and abs(stamp - dt.datetime.now(dt.timezone.utc).timestamp()) < 3600
