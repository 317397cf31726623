"""A billing run (a job) stopped by SIGTERM in the middle stops cleanly, is recorded interrupted, and
resumes to the end when the service is next up: never half-done silently."""
import pytest
import sqlalchemy as sa

from tests.conftest import eventually, http_json


def run_row(url: str, run_id: str) -> dict:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            return dict(connection.execute(sa.text("SELECT status, attempts, error FROM job_runs WHERE id = :id"),
                                           {"id": run_id}).one()._mapping)
    finally:
        engine.dispose()


def test_a_billing_run_stopped_by_sigterm_is_interrupted_then_resumed_on_restart(stack_factory, sqlite_databases,
                                                                                 tmp_path):
    hold = tmp_path / "hold-jobs"
    hold.touch()  # the run waits after its first progress report: the service is stopped mid-run
    stack = stack_factory(sqlite_databases, extra_env={"FAULT_HOLD_JOBS_FILE": str(hold)}).start("billing")
    billing = stack.url("billing")
    status, run = http_json("POST", f"{billing}/billing-runs", {"period": "2026/27", "issue_date": "2026-09-01"})
    assert status == 202, run
    eventually(lambda: http_json("GET", f"{billing}/runs/{run['id']}")[1]["progress"]["total"] is not None,
               message="the run reporting its first progress")
    process = stack.processes["billing"].process
    process.terminate()  # SIGTERM, as a container stop sends
    assert process.wait(60) == 0
    stopped = run_row(stack.database_urls["billing"], run["id"])
    assert stopped["status"] == "interrupted" and "stopping" in stopped["error"], stopped

    hold.unlink()
    stack.start("billing")
    billing = stack.url("billing")
    finished = eventually(lambda: (lambda r: r if r["status"] == "succeeded" else None)(
        http_json("GET", f"{billing}/runs/{run['id']}")[1]), timeout=90, message="the resumed run to succeed")
    assert finished["attempts"] == 2 and finished["result"]["rerun"] is False
    assert http_json("GET", f"{billing}/runs/{run['id']}")[1]["status"] == "succeeded"
