"""The Grafana boards are current, valid against Grafana's schema, and query only metrics that exist.

Every metric a board or an alert rule names must be either exported by a running service (the four
services are started here, on SQLite and the real broker, and their /metrics read after the first
flow has gone through them) or one of the RabbitMQ metrics listed in `RABBITMQ_METRICS`, each with the
endpoint of RabbitMQ's Prometheus plugin that exports it, checked against the broker itself and
against the endpoints deploy/prometheus/prometheus.yml scrapes.
"""
from __future__ import annotations

import json
import pathlib
import re
import shutil
import subprocess
import urllib.request

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from deploy.grafana import generate
from tests.conftest import eventually, http_json
from tests.operations.flow import first_flow

ROOT = pathlib.Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "deploy" / "prometheus"
BOARDS = sorted((ROOT / "deploy" / "grafana" / "dashboards").glob("*.json"))

PER_OBJECT, AGGREGATED = "/metrics/per-object", "/metrics"
# The RabbitMQ metrics the boards and alert rules use, and the endpoint of the rabbitmq_prometheus
# plugin that exports each (checked on RabbitMQ 3.10: per-object carries every aggregated metric
# with per-queue labels, except the alarms and process_start_time_seconds).
RABBITMQ_METRICS = {
    "rabbitmq_queue_messages": PER_OBJECT,  # ready + unacknowledged, per vhost and queue
    "rabbitmq_queue_messages_unacked": PER_OBJECT,
    "rabbitmq_queue_consumers": PER_OBJECT,
    "rabbitmq_queue_messages_published_total": PER_OBJECT,  # per queue: the archive streams' growth
    "rabbitmq_connections": PER_OBJECT,
    "rabbitmq_global_messages_unroutable_returned_total": PER_OBJECT,
    "rabbitmq_global_messages_dead_lettered_delivery_limit_total": PER_OBJECT,
    "rabbitmq_global_messages_dead_lettered_rejected_total": PER_OBJECT,
    "rabbitmq_disk_space_available_bytes": PER_OBJECT,
    "rabbitmq_disk_space_available_limit_bytes": PER_OBJECT,
    "rabbitmq_process_resident_memory_bytes": PER_OBJECT,
    "rabbitmq_resident_memory_limit_bytes": PER_OBJECT,
    "rabbitmq_alarms_memory_used_watermark": AGGREGATED,  # alarms: only on /metrics
    "rabbitmq_alarms_free_disk_space_watermark": AGGREGATED,
    "rabbitmq_alarms_file_descriptor_limit": AGGREGATED,
}
# Made by Prometheus itself for every target it scrapes.
PROMETHEUS_SYNTHETIC = {"up"}
# Labels Prometheus adds to every series of a service at scrape: job, instance and the target file's
# labels (`service`, so the process_* metrics of the Python client carry it too).
SCRAPE_LABELS = {"job", "instance"} | {label for path in (PROMETHEUS / "targets").glob("*/services.json")
                                       for group in json.loads(path.read_text()) for label in group.get("labels", {})}
# Grafana's variables, replaced by a value of their kind so the query parses as PromQL.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__range": "6h", "$__interval": "15s"}
LABEL_VALUES = re.compile(r"^label_values\((?P<selector>.+),\s*(?P<label>\w+)\)$")


def board(path: pathlib.Path) -> dict:
    return json.loads(path.read_text())


def dashboard_queries() -> list[tuple[str, str]]:
    """(where, PromQL) of every board query; a `label_values(selector, label)` variable gives its selector."""
    found = []
    for path in BOARDS:
        for where, expr in generate.expressions(board(path)):
            match = LABEL_VALUES.match(expr)
            found.append((where, match["selector"] if match else expr))
    return found


def alert_queries() -> list[tuple[str, str]]:
    rules = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    return [(f"alerts.yml: {rule.get('alert') or rule.get('record')}", rule["expr"])
            for group in rules["groups"] for rule in group["rules"]]


def promql(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    return expr


def selectors(expr: str) -> list[tuple[str, set[str]]]:
    """(metric name, label names it matches or groups on) of every vector selector of `expr`."""
    import promql_parser

    found: list[tuple[str, set[str]]] = []

    def visit(node):
        if isinstance(node, promql_parser.VectorSelector):
            name = node.name or next(m.value for m in node.matchers.matchers if m.name == "__name__")
            found.append((name, {m.name for m in node.matchers.matchers if m.name != "__name__"}))

    promql_parser.walk(promql_parser.parse(promql(expr)), visit)
    return found


def test_the_checked_in_boards_are_current_and_valid_against_grafanas_schema(capsys):
    assert BOARDS, "no boards in deploy/grafana/dashboards"
    assert generate.main(["--check"]) == 0, capsys.readouterr()
    uids = [board(p)["uid"] for p in BOARDS]
    assert len(uids) == len(set(uids))


def test_a_stale_or_invalid_board_fails_the_check(tmp_path, monkeypatch, capsys):
    for path in BOARDS:
        (tmp_path / path.name).write_text(path.read_text())
    monkeypatch.setattr(generate, "DASHBOARDS", tmp_path)
    assert generate.main(["--check"]) == 0
    stale = tmp_path / BOARDS[0].name
    stale.write_text(stale.read_text().replace('"refresh"', '"refresh_"', 1))
    assert generate.main(["--check"]) == 1
    assert "out of date" in capsys.readouterr().err

    broken = generate.services_board()
    broken["panels"][1]["options"]["colorMode"] = "neon"
    broken["panels"][2]["gridPos"]["w"] = "wide"
    broken["refresh_every"] = "1m"
    problems = "\n".join(generate.schema_problems(broken))
    assert "'neon' is not one of" in problems
    assert "gridPos/w: 'wide' is not of type 'number'" in problems
    assert "'refresh_every' was unexpected" in problems


def test_every_board_query_is_valid_promql():
    for where, expr in dashboard_queries():
        assert selectors(expr), f"{where}: no metric in {expr!r}"


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian package prometheus) is not installed")
def test_prometheus_itself_parses_every_board_query(tmp_path):
    rules = {"groups": [{"name": "boards", "rules": [
        {"record": f"board:query_{i}", "expr": promql(expr)} for i, (_, expr) in enumerate(dashboard_queries())]}]}
    path = tmp_path / "boards.rules.yml"
    path.write_text(yaml.safe_dump(rules))
    result = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def scraped_rabbitmq_endpoints() -> set[str]:
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    return {job.get("metrics_path", "/metrics") for job in config["scrape_configs"]
            if "rabbitmq" in job["job_name"]}


def test_the_rabbitmq_metrics_used_are_on_an_endpoint_prometheus_scrapes():
    used = {name for _, expr in dashboard_queries() + alert_queries() for name, _ in selectors(expr)
            if name.startswith("rabbitmq_")}
    unknown = used - set(RABBITMQ_METRICS)
    assert not unknown, f"RabbitMQ metrics used but not listed (with their endpoint) here: {sorted(unknown)}"
    endpoints = scraped_rabbitmq_endpoints()
    unscraped = {name: RABBITMQ_METRICS[name] for name in used if RABBITMQ_METRICS[name] not in endpoints}
    assert not unscraped, f"used, but on an endpoint prometheus.yml does not scrape ({sorted(endpoints)}): {unscraped}"


def exposition(url: str, timeout: float = 30.0) -> str:
    from tests import tokens

    # The services' /metrics needs the scrape credential; the broker's endpoints take it harmlessly.
    request = urllib.request.Request(url, headers=tokens.metrics_headers() if ":15692" not in url else {})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.read().decode()


SAMPLED = "__sampled__"  # among a metric's label names: it had at least one sample


def exported(text: str) -> dict[str, set[str]]:
    """Every sample name a /metrics exposes (a histogram's _bucket, _sum, _count; a counter's _total) and
    each family name, with the label names seen on its samples (and SAMPLED when it has any)."""
    names: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        names.setdefault(family.name, set())
        if family.type == "counter":
            names.setdefault(f"{family.name}_total", set())
        for sample in family.samples:
            names.setdefault(sample.name, set()).update({*sample.labels, SAMPLED})
            names[family.name].update({*sample.labels, SAMPLED})
    return names


def test_the_rabbitmq_metrics_listed_are_what_the_broker_exports(vhost):
    """Read the broker's own endpoints (the test's vhost holds the provisioned queues and archive streams)."""
    host = vhost.management_url.split("//", 1)[1].split(":", 1)[0] if vhost.management_url else "127.0.0.1"

    def read() -> dict:
        return {endpoint: exported(exposition(f"http://{host}:15692{endpoint}")) for endpoint in (PER_OBJECT, AGGREGATED)}

    # RabbitMQ exports a new queue's per-object samples once its metrics are first collected (every 5 s by
    # default): until then the family is there without samples. Wait for this vhost's queues to be sampled.
    by_endpoint = eventually(lambda: (found := read()) and {"vhost", "queue"} <= found[PER_OBJECT].get(
        "rabbitmq_queue_messages", set()) and found, timeout=30, message="per-queue samples on /metrics/per-object")
    for name, endpoint in RABBITMQ_METRICS.items():
        assert name in by_endpoint[endpoint], f"{name} is not on RabbitMQ's {endpoint}"


def drive_the_first_flow(stack) -> None:
    """The first flow, then a client error: events and HTTP outcomes flow through every service."""
    first_flow(stack)
    assert http_json("GET", f"{stack.url('membership')}/members/no-such-school")[0] in (400, 404)  # a client error


def test_every_metric_the_boards_and_alerts_name_is_exported(stack_factory, sqlite_databases):
    stack = stack_factory(sqlite_databases).start()
    drive_the_first_flow(stack)
    services: dict[str, set[str]] = {}
    for name in stack.processes:
        exposition(f"{stack.url(name)}/metrics")  # the scrape itself is an HTTP entrypoint call
        for metric, labels in exported(exposition(f"{stack.url(name)}/metrics")).items():
            services.setdefault(metric, set()).update(labels)
    missing, wrong_labels = [], []
    for where, expr in dashboard_queries() + alert_queries():
        for metric, labels in selectors(expr):
            if metric in PROMETHEUS_SYNTHETIC or metric in RABBITMQ_METRICS:
                continue
            if metric not in services:
                missing.append(f"{where}: {metric}")
                continue
            # label names a query matches on must be on the metric (when it has samples to tell)
            known = services[metric] | SCRAPE_LABELS
            if SAMPLED in services[metric] and not labels <= known:
                wrong_labels.append(f"{where}: {metric} has no label {sorted(labels - known)}")
    assert not missing, "metrics no service exports:\n" + "\n".join(missing)
    assert not wrong_labels, "\n".join(wrong_labels)
    # the flow really went through: the RED and event series the boards draw have samples
    for metric in ("partnership_entrypoint_calls_total", "partnership_entrypoint_duration_seconds_bucket",
                   "partnership_http_responses_total", "partnership_events_published_total",
                   "partnership_events_consumed_total", "partnership_outbox_oldest_unsent_age_seconds",
                   "partnership_membership_members", "partnership_billing_members", "partnership_ready"):
        assert SAMPLED in services.get(metric, ()), f"{metric} has no samples after the first flow"


def test_every_variable_a_query_uses_is_defined_on_its_board():
    for path in BOARDS:
        data = board(path)
        defined = {var["name"] for var in data["templating"]["list"]}
        texts = [expr for _, expr in generate.expressions(data)]
        texts += [p.get("repeat", "") and f"${p['repeat']}" for p in generate.panels_of(data)]
        texts += [p.get("title", "") for p in generate.panels_of(data)]
        used = {name for text in texts for name in re.findall(r"\$(\w+)", text) if not name.startswith("__")}
        assert used <= defined, f"{path.name}: variables used but not defined: {sorted(used - defined)}"


def test_grafana_is_provisioned_with_the_prometheus_data_source_and_the_boards_folder():
    provisioning = ROOT / "deploy" / "grafana" / "provisioning"
    sources = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())["datasources"]
    assert [(s["uid"], s["type"], s["url"]) for s in sources] == [("prometheus", "prometheus", "http://prometheus:9090")]
    providers = yaml.safe_load((provisioning / "dashboards" / "partnership.yml").read_text())["providers"]
    assert [(p["type"], p["options"]["path"]) for p in providers] == [("file", "/var/lib/grafana/dashboards")]
    for path in BOARDS:  # every query reads the provisioned data source
        for panel in generate.panels_of(board(path)):
            for t in panel.get("targets", []):
                assert t["datasource"]["uid"] == sources[0]["uid"], (path.name, panel["title"])
