"""One metric naming scheme across services, and outbox gauges read from the database at each scrape."""
import datetime as dt

import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from shared.config import events_settings
from shared.db import Database
from shared.messaging_tables import define_messaging_tables, utcnow
from shared.metrics import ServiceMetrics, _status_class
from shared.relay import OutboxRelay

metadata = sa.MetaData()
outbox, inbox = define_messaging_tables(metadata)


def families(metrics: ServiceMetrics) -> dict:
    return {f.name: f for f in text_string_to_metric_families(metrics.exposition().decode())}


def sample(metrics: ServiceMetrics, name: str, **labels) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


@pytest.fixture
def database(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'outbox.db'}")
    metadata.create_all(db.engine)
    yield db
    db.dispose()


def test_shared_metrics_have_one_name_with_the_service_as_a_label():
    one, two = ServiceMetrics("alpha"), ServiceMetrics("beta")
    one.events_published.labels("thing_happened").inc()
    two.events_published.labels("thing_happened").inc(2)
    assert sample(one, "partnership_events_published_total", service="alpha", type="thing_happened") == 1
    assert sample(two, "partnership_events_published_total", service="beta", type="thing_happened") == 2
    for name in families(one):
        assert name.startswith(("partnership_", "process_", "python_")), name
    shared = {n for n in families(one) if n.startswith("partnership_")}
    assert shared == {n for n in families(two) if n.startswith("partnership_")}


def test_process_runtime_and_build_info_are_exported(monkeypatch):
    monkeypatch.setenv("GIT_REVISION", "abc1234")
    metrics = ServiceMetrics("gamma")
    names = families(metrics)
    assert "python_info" in names and "python_gc_objects_collected" in names
    assert "process_resident_memory_bytes" in names  # Linux: /proc is there
    build = [s for s in names["partnership_build_info"].samples]
    assert len(build) == 1 and build[0].value == 1
    assert build[0].labels["service"] == "gamma" and build[0].labels["revision"] == "abc1234"


def test_business_gauges_are_named_after_their_service():
    metrics = ServiceMetrics("delta")
    metrics.gauge("debt_pence", "Debt.", ("age",)).labels("0-30").set(5)
    assert sample(metrics, "partnership_delta_debt_pence", age="0-30") == 5


def test_the_outbox_backlog_is_read_at_scrape_time_even_with_the_relay_stopped(database):
    metrics = ServiceMetrics("epsilon")
    relay = OutboxRelay(service="epsilon", database=database, outbox=outbox, amqp_uri="amqp://nowhere:1/",
                        metrics=metrics, settings=events_settings({}))
    metrics.watch_outbox(relay.backlog)  # what Storage does; the relay itself never runs here
    assert sample(metrics, "partnership_outbox_backlog_events", service="epsilon") == 0
    assert sample(metrics, "partnership_outbox_oldest_unsent_age_seconds", service="epsilon") == 0
    old = utcnow() - dt.timedelta(minutes=10)
    with database.transaction() as session:
        for n in range(3):
            session.execute(sa.insert(outbox).values(
                event_id=f"00000000-0000-0000-0000-00000000000{n}", event_type="thing_happened", version=1,
                aggregate="thing:1", body="{}", created_at=old, next_attempt_at=old))
        session.commit()
    assert sample(metrics, "partnership_outbox_backlog_events", service="epsilon") == 3
    assert sample(metrics, "partnership_outbox_oldest_unsent_age_seconds", service="epsilon") >= 600
    assert sample(metrics, "partnership_outbox_readable", service="epsilon") == 1


def test_an_unreadable_outbox_is_reported_as_unknown_not_as_empty(tmp_path):
    metrics = ServiceMetrics("zeta")

    def broken():
        raise sa.exc.OperationalError("select", {}, Exception("database is down"))

    metrics.watch_outbox(broken)
    assert sample(metrics, "partnership_outbox_readable", service="zeta") == 0
    assert sample(metrics, "partnership_outbox_backlog_events", service="zeta") is None
    assert b"partnership_outbox_relay_errors_total" in metrics.exposition()


@pytest.mark.parametrize("result, exc_info, outcome, expected", [
    ({"ok": True}, None, "ok", "2xx"),
    ((201, {"id": 1}), None, "ok", "2xx"),
    ((404, {"error": "not found"}), None, "ok", "4xx"),
    ((503, {"status": "not_ready"}), None, "error", "5xx"),
    (None, (ValueError, ValueError("bad"), None), "client_error", "4xx"),
    (None, (RuntimeError, RuntimeError("boom"), None), "error", "5xx"),
])
def test_http_responses_are_counted_by_status_class(result, exc_info, outcome, expected):
    assert _status_class(result, exc_info, outcome) == expected


def test_readiness_is_exported_at_each_scrape_with_the_dependency_that_failed():
    metrics = ServiceMetrics("eta")
    problems = {}
    metrics.watch_readiness(lambda: dict(problems))
    assert sample(metrics, "partnership_ready", service="eta") == 1
    problems["broker"] = "ConnectionRefusedError"
    assert sample(metrics, "partnership_ready", service="eta") == 0
    assert sample(metrics, "partnership_dependency_up", service="eta", dependency="broker") == 0
    assert sample(metrics, "partnership_dependency_up", service="eta", dependency="database") == 1


def test_a_job_run_is_counted_and_only_a_success_is_stamped():
    metrics = ServiceMetrics("theta")
    metrics.job_finished("billing_run", "failed")
    assert sample(metrics, "partnership_job_runs_total", service="theta", job="billing_run", outcome="failed") == 1
    assert sample(metrics, "partnership_job_last_success_timestamp_seconds", service="theta", job="billing_run") is None
    metrics.job_finished("billing_run", "ok")
    assert sample(metrics, "partnership_job_last_success_timestamp_seconds", service="theta", job="billing_run") > 1.7e9
