"""A renewal round or a billing run started on both replicas of its service at the same moment (one
PostgreSQL database): one run starts (202) and the other request is refused with 409 naming that run,
never a 500 and never two runs. The run is held after its first progress report (FAULTS.hold_jobs_file)
so the second request finds it running whichever replica answers first."""
from __future__ import annotations

import threading

import pytest

from tests.conftest import Databases, finished_run, http_json

STARTS = {
    "catalogue": ("/renewal-rounds", {"year": 2027}),
    "billing": ("/billing-runs", {"period": "2026/27", "issue_date": "2026-09-01"}),
}


@pytest.fixture
def pg_databases(tmp_path):
    dbs = Databases("postgresql", tmp_path)
    yield dbs
    dbs.drop_all()


@pytest.mark.parametrize("service", sorted(STARTS))
def test_the_same_run_started_on_two_replicas_at_once_runs_once(service, stack_factory, pg_databases, tmp_path):
    hold = tmp_path / "hold-jobs"
    hold.write_text("held until the second request has its answer")
    stack = stack_factory(pg_databases, {"FAULT_HOLD_JOBS_FILE": str(hold)}).start(service, replicas=2)
    path, body = STARTS[service]
    answers: dict[int, tuple[int, dict]] = {}
    go = threading.Barrier(2, timeout=30)

    def start(index: int) -> None:
        go.wait()
        answers[index] = http_json("POST", f"{stack.replicas[service][index].url}{path}", body)

    threads = [threading.Thread(target=start, args=(i,)) for i in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    statuses = sorted(status for status, _ in answers.values())
    assert statuses == [202, 409], answers
    started = next(a for a in answers.values() if a[0] == 202)
    refused = next(a for a in answers.values() if a[0] == 409)[1]
    assert refused["run"] == started[1]["links"]["self"] and started[1]["id"] in refused["message"], refused
    hold.unlink()
    run = finished_run(stack.url(service), started)
    assert run["status"] == "succeeded", run
