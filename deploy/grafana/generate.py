"""Writes the Grafana dashboards in deploy/grafana/dashboards/ from Python (plain dashboard JSON).

    python -m deploy.grafana.generate          # write deploy/grafana/dashboards/*.json
    python -m deploy.grafana.generate --check  # fail when a checked-in board is stale or invalid (make lint)

Four boards, provisioned by Grafana from /var/lib/grafana/dashboards (deploy/grafana/provisioning):
- `partnership-services`: RED per service and entrypoint (rate, errors, duration), HTTP answers by
  status class, readiness, dependencies, jobs, process memory and CPU; one row per service;
- `partnership-events`: the event flow per service and type: published, consumed by outcome,
  duplicates, retried, deferred, dead-lettered, unroutable, handler duration, outbox backlog and
  oldest unsent age (its objective: 2 minutes, as the OutboxEventsStuck alert), relay errors;
- `partnership-rabbitmq`: handler queues (depth, consumers, the ones with none), dead-letter and
  retry queues, the archive streams, and the broker's alarms, disk and memory;
- `partnership-trust`: the board's view: members, paying members, buy-back rate, revenue by
  service area, debt by age band.

Every query reads the Prometheus data source of uid `prometheus`. Metric names follow
shared/shared/metrics.py; tests/operations/test_dashboards.py checks each against the /metrics of
running services and the list of RabbitMQ metrics in `RABBITMQ_METRICS` there.

`--check` also validates every board against Grafana's published dashboard schema (JSON Schemas
derived from @grafana/schema, in deploy/grafana/schema/, see regenerate.sh there): the dashboard,
and each panel's options and field config against its panel plugin's schema.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import sys
from typing import Any, Iterator

from deploy.generated import write_or_check

HERE = pathlib.Path(__file__).resolve().parent
DASHBOARDS = HERE / "dashboards"
SCHEMAS = HERE / "schema"

DATASOURCE = {"type": "prometheus", "uid": "prometheus"}
SCHEMA_VERSION = 41  # Grafana 12's dashboard JSON; later versions migrate it on load
TAGS = ["partnership"]
RATE = "$__rate_interval"
# The outbox objective, as alerts.yml's OutboxEventsStuck: an event leaves its outbox within 2 minutes.
OUTBOX_OBJECTIVE_SECONDS = 120


# -- panels ---------------------------------------------------------------------------------------
def target(expr: str, legend: str = "", ref: str = "A", *, instant: bool = False, table: bool = False) -> dict:
    t: dict[str, Any] = {"datasource": DATASOURCE, "refId": ref, "expr": expr, "legendFormat": legend or "__auto",
                         "range": not instant, "instant": instant, "editorMode": "code"}
    if table:
        t["format"] = "table"
    return t


def thresholds(*steps: tuple[float | None, str]) -> dict:
    return {"mode": "absolute", "steps": [{"color": color, "value": value} for value, color in steps]}


def field_defaults(unit: str, *, custom: dict | None = None, steps: tuple = ((None, "green"),), decimals=None,
                   minimum=None, maximum=None, mappings: list | None = None) -> dict:
    defaults: dict[str, Any] = {"unit": unit, "color": {"mode": "palette-classic"}, "thresholds": thresholds(*steps),
                                "mappings": mappings or []}
    if custom is not None:
        defaults["custom"] = custom
    if decimals is not None:
        defaults["decimals"] = decimals
    if minimum is not None:
        defaults["min"] = minimum
    if maximum is not None:
        defaults["max"] = maximum
    return defaults


TIMESERIES_CUSTOM = {
    "drawStyle": "line", "lineInterpolation": "linear", "lineWidth": 1, "fillOpacity": 10, "gradientMode": "none",
    "showPoints": "never", "pointSize": 4, "spanNulls": False, "axisPlacement": "auto", "axisLabel": "",
    "axisCenteredZero": False, "axisColorMode": "text", "axisBorderShow": False,
    "scaleDistribution": {"type": "linear"}, "stacking": {"mode": "none", "group": "A"},
    "thresholdsStyle": {"mode": "off"}, "hideFrom": {"legend": False, "tooltip": False, "viz": False},
    "barAlignment": 0, "insertNulls": False,
}
REDUCE_LAST = {"calcs": ["lastNotNull"], "fields": "", "values": False}


class Board:
    """Lays panels out left to right, wrapping at Grafana's 24 columns, and numbers them."""

    def __init__(self):
        self.panels: list[dict] = []
        self.x = self.y = self.row_h = 0
        self.next_id = 1

    def _place(self, panel: dict, w: int, h: int) -> dict:
        if self.x + w > 24:
            self.x, self.y, self.row_h = 0, self.y + self.row_h, 0
        panel["gridPos"] = {"h": h, "w": w, "x": self.x, "y": self.y}
        panel["id"] = self.next_id
        self.next_id += 1
        self.x += w
        self.row_h = max(self.row_h, h)
        self.panels.append(panel)
        return panel

    def row(self, title: str, *, repeat: str | None = None) -> None:
        self.x, self.y, self.row_h = 0, self.y + self.row_h, 0
        panel: dict[str, Any] = {"type": "row", "title": title, "collapsed": False, "panels": []}
        if repeat:
            panel["repeat"] = repeat
        self._place(panel, 24, 1)
        self.x, self.y, self.row_h = 0, self.y + 1, 0

    def _panel(self, kind: str, title: str, description: str, targets: list[dict], defaults: dict,
               options: dict, w: int, h: int, overrides: list | None = None) -> dict:
        for i, t in enumerate(targets):
            t["refId"] = chr(ord("A") + i)
        return self._place({"type": kind, "title": title, "description": description, "datasource": DATASOURCE,
                            "targets": targets, "fieldConfig": {"defaults": defaults, "overrides": overrides or []},
                            "options": options}, w, h)

    def timeseries(self, title: str, description: str, *targets: dict, unit: str = "short", w: int = 8, h: int = 8,
                   stack: bool = False, steps: tuple = ((None, "green"),), threshold_line: bool = False,
                   minimum=None, legend_calcs: tuple = ()) -> dict:
        custom = dict(TIMESERIES_CUSTOM)
        if stack:
            custom["stacking"] = {"mode": "normal", "group": "A"}
        if threshold_line:
            custom["thresholdsStyle"] = {"mode": "line+area"}
        options = {"legend": {"showLegend": True, "displayMode": "table" if legend_calcs else "list",
                              "placement": "bottom", "calcs": list(legend_calcs)},
                   "tooltip": {"mode": "multi", "sort": "desc"}}
        return self._panel("timeseries", title, description, list(targets),
                           field_defaults(unit, custom=custom, steps=steps, minimum=minimum), options, w, h)

    def stat(self, title: str, description: str, *targets: dict, unit: str = "short", w: int = 4, h: int = 4,
             steps: tuple = ((None, "green"),), mappings: list | None = None, decimals=None,
             color_mode: str = "value", graph: bool = False) -> dict:
        options = {"reduceOptions": REDUCE_LAST, "orientation": "auto", "textMode": "auto", "colorMode": color_mode,
                   "graphMode": "area" if graph else "none", "justifyMode": "auto", "wideLayout": True,
                   "showPercentChange": False, "percentChangeColorMode": "standard"}
        return self._panel("stat", title, description, list(targets),
                           field_defaults(unit, steps=steps, mappings=mappings, decimals=decimals), options, w, h)

    def bargauge(self, title: str, description: str, *targets: dict, unit: str = "short", w: int = 8, h: int = 8,
                 steps: tuple = ((None, "green"),), decimals=None, maximum=None) -> dict:
        options = {"reduceOptions": REDUCE_LAST, "orientation": "horizontal", "displayMode": "gradient",
                   "valueMode": "color", "namePlacement": "auto", "showUnfilled": True, "sizing": "auto",
                   "minVizWidth": 8, "minVizHeight": 16, "maxVizHeight": 300,
                   "legend": {"showLegend": False, "displayMode": "list", "placement": "bottom", "calcs": []}}
        return self._panel("bargauge", title, description, list(targets),
                           field_defaults(unit, steps=steps, decimals=decimals, minimum=0, maximum=maximum),
                           options, w, h)

    def table(self, title: str, description: str, *targets: dict, w: int = 12, h: int = 8,
              hide: tuple[str, ...] = ("Time",), rename: dict | None = None) -> dict:
        custom = {"align": "auto", "cellOptions": {"type": "auto"}, "inspect": False}
        options = {"showHeader": True, "frameIndex": 0, "cellHeight": "sm"}
        panel = self._panel("table", title, description, list(targets),
                            field_defaults("short", custom=custom), options, w, h)
        panel["transformations"] = [{"id": "merge", "options": {}},
                                    {"id": "organize", "options": {
                                        "excludeByName": {name: True for name in hide},
                                        "renameByName": rename or {}}}]
        return panel


def variable(name: str, label: str, query: str, *, multi: bool = True, include_all: bool = True,
             regex: str = "") -> dict:
    var = {"name": name, "label": label, "type": "query", "datasource": DATASOURCE,
           "query": {"query": query, "refId": f"{name}-variable"}, "refresh": 2,
           "multi": multi, "includeAll": include_all, "sort": 1, "regex": regex, "hide": 0, "options": []}
    if include_all:
        var["current"] = {"selected": True, "text": ["All"] if multi else "All",
                          "value": ["$__all"] if multi else "$__all"}
    return var


def dashboard(uid: str, title: str, description: str, board: Board, variables: list[dict], *,
              time_from: str = "now-6h", refresh: str = "1m", links: bool = True) -> dict:
    return {
        "uid": uid, "title": title, "description": description, "tags": TAGS, "editable": False,
        "schemaVersion": SCHEMA_VERSION, "version": 1, "graphTooltip": 1, "timezone": "browser",
        "fiscalYearStartMonth": 8,  # September: the academic and financial year of schools
        "time": {"from": time_from, "to": "now"}, "refresh": refresh, "liveNow": False,
        "annotations": {"list": [{"builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                                  "enable": True, "hide": True, "iconColor": "rgba(0, 211, 255, 1)",
                                  "name": "Annotations & Alerts", "type": "dashboard"}]},
        "links": [{"title": "Partnership boards", "type": "dashboards", "tags": TAGS, "asDropdown": True,
                   "icon": "external link", "includeVars": False, "keepTime": True, "targetBlank": False,
                   "tooltip": "", "url": ""}] if links else [],
        "templating": {"list": variables},
        "panels": board.panels,
    }


# -- the boards -----------------------------------------------------------------------------------
SERVICE_VAR = variable("service", "Service", "label_values(partnership_build_info, service)")
S = 'service="$service"'


def services_board() -> dict:
    b = Board()
    b.row("$service", repeat="service")
    b.stat("Ready", "partnership_ready: 1 when the service's database and broker answer (as /ready).",
           target(f"max(partnership_ready{{{S}}})"), w=3,
           mappings=[{"type": "value", "options": {"0": {"text": "NOT READY", "color": "red", "index": 0},
                                                   "1": {"text": "ready", "color": "green", "index": 1}}}],
           steps=((None, "red"), (1, "green")), color_mode="background")
    b.stat("Scraped", "Prometheus's own `up` of the service's /metrics (instance count answering).",
           target(f'sum(up{{job="partnership", {S}}})'), w=3, steps=((None, "red"), (1, "green")))
    b.stat("Requests /s", "All entrypoint calls per second (HTTP, RPC, events, timers).",
           target(f"sum(rate(partnership_entrypoint_calls_total{{{S}}}[{RATE}]))"), unit="reqps", w=3, graph=True)
    b.stat("Errors", "Share of entrypoint calls that failed in the service (outcome=error; "
                     "client errors are not the service's).",
           target(f'sum(rate(partnership_entrypoint_calls_total{{{S}, outcome="error"}}[{RATE}])) '
                  f"/ sum(rate(partnership_entrypoint_calls_total{{{S}}}[{RATE}]))"),
           unit="percentunit", w=3, decimals=2, steps=((None, "green"), (0.01, "orange"), (0.05, "red")), graph=True)
    b.stat("p95 duration", "95th percentile of the time spent in an entrypoint's worker, all entrypoints.",
           target(f"histogram_quantile(0.95, sum by (le) (rate(partnership_entrypoint_duration_seconds_bucket"
                  f"{{{S}}}[{RATE}])))"), unit="s", w=3, steps=((None, "green"), (1, "orange"), (5, "red")))
    b.stat("Outbox oldest", "Age of the oldest event not yet confirmed by the broker; objective 2 minutes.",
           target(f"max(partnership_outbox_oldest_unsent_age_seconds{{{S}}})"), unit="s", w=3,
           steps=((None, "green"), (OUTBOX_OBJECTIVE_SECONDS, "red")))
    b.table("Dependencies and build", "partnership_dependency_up per dependency; the build's version and revision.",
            target(f"max by (dependency) (partnership_dependency_up{{{S}}})", instant=True, table=True),
            target(f"max by (version, revision) (partnership_build_info{{{S}}})", instant=True, table=True),
            w=6, h=4, hide=("Time", "Value #B"), rename={"Value #A": "up"})
    b.timeseries("Rate by entrypoint", "Calls per second by entrypoint (RED: rate).",
                 target(f"sum by (entrypoint, kind) (rate(partnership_entrypoint_calls_total{{{S}}}[{RATE}]))",
                        "{{entrypoint}} ({{kind}})"), unit="reqps")
    b.timeseries("Errors by entrypoint", "Failed calls per second by entrypoint and outcome (RED: errors): "
                                         "`error` is the service's failure, `client_error` a refused request.",
                 target(f'sum by (entrypoint, outcome) (rate(partnership_entrypoint_calls_total{{{S}, '
                        f'outcome!="ok"}}[{RATE}]))', "{{entrypoint}} {{outcome}}"), unit="reqps")
    b.timeseries("p95 duration by entrypoint", "95th percentile of the time in each entrypoint (RED: duration).",
                 target(f"histogram_quantile(0.95, sum by (entrypoint, le) "
                        f"(rate(partnership_entrypoint_duration_seconds_bucket{{{S}}}[{RATE}])))", "{{entrypoint}}"),
                 unit="s")
    b.timeseries("HTTP answers by status class", "partnership_http_responses_total by status class (2xx, 4xx, 5xx).",
                 target(f"sum by (status) (rate(partnership_http_responses_total{{{S}}}[{RATE}]))", "{{status}}"),
                 unit="reqps", stack=True)
    b.timeseries("Mean duration by entrypoint", "Average time per call: duration sum over count.",
                 target(f"sum by (entrypoint) (rate(partnership_entrypoint_duration_seconds_sum{{{S}}}[{RATE}])) "
                        f"/ sum by (entrypoint) (rate(partnership_entrypoint_duration_seconds_count{{{S}}}[{RATE}]))",
                        "{{entrypoint}}"), unit="s")
    b.timeseries("Jobs", "Runs of long jobs (billing run, renewal round) by outcome in the window, and hours since "
                         "the last success.",
                 target(f"sum by (job, outcome) (increase(partnership_job_runs_total{{{S}}}[$__range]))",
                        "{{job}} {{outcome}}"),
                 target(f"(time() - max by (job) (partnership_job_last_success_timestamp_seconds{{{S}}})) / 3600",
                        "{{job}}: hours since success"), unit="short")
    b.timeseries("Job progress", "Share of the running job's work done (a billing run, a renewal round).",
                 target(f"max by (job) (partnership_job_progress_ratio{{{S}}})", "{{job}}"), unit="percentunit",
                 w=6, minimum=0)
    b.timeseries("Memory", "Resident memory of the service's processes.",
                 target(f"sum by (instance) (process_resident_memory_bytes{{{S}}})", "{{instance}}"), unit="bytes",
                 w=6)
    b.timeseries("CPU", "CPU seconds per second of the service's processes.",
                 target(f"sum by (instance) (rate(process_cpu_seconds_total{{{S}}}[{RATE}]))", "{{instance}}"),
                 unit="percentunit", w=6)
    b.timeseries("Open file descriptors", "Against the process's limit.",
                 target(f"sum by (instance) (process_open_fds{{{S}}})", "{{instance}} open"),
                 target(f"max by (instance) (process_max_fds{{{S}}})", "{{instance}} limit"), unit="short", w=6)
    return dashboard("partnership-services", "Partnership: services (RED)",
                     "Rate, errors and duration per entrypoint of each service; readiness, jobs and process.",
                     b, [SERVICE_VAR])


TYPE_VAR = variable("type", "Event type", 'label_values(partnership_events_published_total{service=~"$service"}, type)')
SM = 'service=~"$service"'


def events_board() -> dict:
    b = Board()
    b.row("Outbox: events leaving each service")
    b.timeseries("Oldest unsent event", "Age of the oldest outbox row not yet confirmed by the broker, read from "
                                        "the database at each scrape. Objective: 2 minutes (alert OutboxEventsStuck).",
                 target(f"max by (service) (partnership_outbox_oldest_unsent_age_seconds{{{SM}}})", "{{service}}"),
                 unit="s", steps=((None, "green"), (OUTBOX_OBJECTIVE_SECONDS, "red")), threshold_line=True, minimum=0)
    b.timeseries("Outbox backlog", "Outbox rows not yet confirmed by the broker.",
                 target(f"max by (service) (partnership_outbox_backlog_events{{{SM}}})", "{{service}}"), minimum=0)
    b.timeseries("Outbox readable and relay errors", "partnership_outbox_readable is 0 when the database could "
                                                     "not be read at the scrape; relay rounds that failed.",
                 target(f"min by (service) (partnership_outbox_readable{{{SM}}})", "{{service}} readable"),
                 target(f"sum by (service) (increase(partnership_outbox_relay_errors_total{{{SM}}}[{RATE}]))",
                        "{{service}} relay errors"))
    b.row("Published")
    b.timeseries("Published by type", "Events confirmed by the broker per second, by producer and type.",
                 target(f'sum by (service, type) (rate(partnership_events_published_total{{{SM}, type=~"$type"}}'
                        f"[{RATE}]))", "{{service}} {{type}}"), unit="ops", w=12, stack=True)
    b.timeseries("Unroutable by type", "Events the broker returned because no queue was bound (a broken topology; "
                                       "alert EventsUnroutable). They stay in the outbox.",
                 target(f'sum by (service, type) (increase(partnership_events_unroutable_total{{{SM}, type=~"$type"}}'
                        f"[{RATE}]))", "{{service}} {{type}}"), w=12, steps=((None, "green"), (1, "red")))
    b.row("Consumed")
    b.timeseries("Consumed by outcome", "Upstream events handled per second by consumer and outcome "
                                        "(applied, duplicate, retried, dead_lettered).",
                 target(f'sum by (service, outcome) (rate(partnership_events_consumed_total{{{SM}, type=~"$type"}}'
                        f"[{RATE}]))", "{{service}} {{outcome}}"), unit="ops", stack=True)
    b.timeseries("Consumed by type", "Upstream events handled per second by consumer and type.",
                 target(f'sum by (service, type) (rate(partnership_events_consumed_total{{{SM}, type=~"$type"}}'
                        f"[{RATE}]))", "{{service}} {{type}}"), unit="ops")
    b.timeseries("Handler p95 duration", "95th percentile of the time to handle one upstream event, by type.",
                 target(f"histogram_quantile(0.95, sum by (service, type, le) (rate("
                        f'partnership_event_handler_duration_seconds_bucket{{{SM}, type=~"$type"}}[{RATE}])))',
                        "{{service}} {{type}}"), unit="s")
    b.timeseries("Duplicates", "Deliveries the inbox recognised as already applied and skipped.",
                 target(f'sum by (service, type) (increase(partnership_events_duplicate_total{{{SM}, type=~"$type"}}'
                        f"[{RATE}]))", "{{service}} {{type}}"))
    b.timeseries("Retried and deferred", "Retried: a failed delivery scheduled for another attempt. Deferred: kept "
                                         "after a transient failure (database or broker outage), not an attempt.",
                 target(f'sum by (service, type) (increase(partnership_events_retried_total{{{SM}, type=~"$type"}}'
                        f"[{RATE}]))", "retried {{service}} {{type}}"),
                 target(f'sum by (service, type) (increase(partnership_events_deferred_total{{{SM}, type=~"$type"}}'
                        f"[{RATE}]))", "deferred {{service}} {{type}}"))
    b.timeseries("Dead-lettered", "Events moved to a dead-letter queue, by type and reason (alert "
                                  "EventsDeadLettered). Read them with `partnership-ops dead-letters`.",
                 target(f"sum by (service, type, reason) (increase(partnership_events_dead_lettered_total{{{SM}, "
                        f'type=~"$type"}}[{RATE}]))', "{{service}} {{type}} {{reason}}"),
                 steps=((None, "green"), (1, "red")))
    b.table("Events in the window", "Totals over the dashboard's time range, per service and type.",
            target(f'sum by (service, type) (increase(partnership_events_published_total{{{SM}, type=~"$type"}}'
                   f"[$__range]))", instant=True, table=True),
            target(f'sum by (service, type) (increase(partnership_events_consumed_total{{{SM}, type=~"$type"}}'
                   f"[$__range]))", instant=True, table=True),
            target(f'sum by (service, type) (increase(partnership_events_dead_lettered_total{{{SM}, type=~"$type"}}'
                   f"[$__range]))", instant=True, table=True),
            w=24, rename={"Value #A": "published", "Value #B": "consumed", "Value #C": "dead-lettered"})
    return dashboard("partnership-events", "Partnership: event flow",
                     "Events published, consumed, retried, deferred, dead-lettered and unroutable per service "
                     "and type; the outbox backlog and its oldest unsent age.", b, [SERVICE_VAR, TYPE_VAR])


VHOST_VAR = variable("vhost", "Virtual host", "label_values(rabbitmq_queue_messages, vhost)", multi=False,
                     include_all=False)
V = 'vhost="$vhost"'
HANDLER_QUEUES = f'{V}, queue=~"evt-.+", queue!~".+\\\\.dead"'
DEAD_QUEUES = f'{V}, queue=~".+\\\\.dead"'
RETRY_QUEUES = f'{V}, queue=~".+\\\\.retry\\\\..+"'
ARCHIVES = f'{V}, queue=~".+\\\\.events\\\\.archive"'


def rabbitmq_board() -> dict:
    b = Board()
    b.row("Handler queues (one per consuming service and event type)")
    b.timeseries("Messages waiting by handler queue", "rabbitmq_queue_messages (ready + unacknowledged) of each "
                                                      "evt-* queue.",
                 target(f"sum by (queue) (rabbitmq_queue_messages{{{HANDLER_QUEUES}}})", "{{queue}}"), w=12)
    b.timeseries("Unacknowledged by handler queue", "Deliveries a consumer holds and has not acknowledged yet.",
                 target(f"sum by (queue) (rabbitmq_queue_messages_unacked{{{HANDLER_QUEUES}}})", "{{queue}}"), w=12)
    b.table("Handler queues without a consumer", "A handler queue with no consumer grows while its service is "
                                                 "down or quiesced (alert HandlerQueueWithoutConsumer).",
            target(f"max by (queue) (rabbitmq_queue_consumers{{{HANDLER_QUEUES}}}) == 0", instant=True, table=True),
            target(f"max by (queue) (rabbitmq_queue_messages{{{HANDLER_QUEUES}}}) "
                   f"and on (queue) max by (queue) (rabbitmq_queue_consumers{{{HANDLER_QUEUES}}}) == 0",
                   instant=True, table=True),
            w=12, rename={"Value #A": "consumers", "Value #B": "messages"})
    b.timeseries("Consumers by handler queue", "rabbitmq_queue_consumers of each evt-* queue.",
                 target(f"sum by (queue) (rabbitmq_queue_consumers{{{HANDLER_QUEUES}}})", "{{queue}}"), w=12)
    b.row("Dead letters and retries")
    b.bargauge("Dead-letter queues", "Events waiting in a <queue>.dead queue (alert DeadLetterQueueNotEmpty). "
                                     "Read them with `partnership-ops dead-letters`.",
               target(f"sum by (queue) (rabbitmq_queue_messages{{{DEAD_QUEUES}}})", "{{queue}}", instant=True),
               steps=((None, "green"), (1, "red")), w=12)
    b.timeseries("Retry queues", "Deliveries waiting out a retry delay in <service>.retry.<delay> queues.",
                 target(f"sum by (queue) (rabbitmq_queue_messages{{{RETRY_QUEUES}}})", "{{queue}}"), w=12)
    b.row("Archive streams (every event each producer published, kept for the archive's max-age)")
    b.timeseries("Messages in each archive stream", "rabbitmq_queue_messages of each <producer>.events.archive "
                                                    "stream; it falls as segments older than max-age are removed.",
                 target(f"sum by (queue) (rabbitmq_queue_messages{{{ARCHIVES}}})", "{{queue}}"), w=12)
    b.timeseries("Archive growth", "Messages added per second to each archive stream.",
                 target(f"sum by (queue) (rate(rabbitmq_queue_messages_published_total{{{ARCHIVES}}}[{RATE}]))",
                        "{{queue}}"), unit="ops", w=6)
    b.timeseries("Archive readers", "Consumers attached to an archive stream (a replay or an export).",
                 target(f"sum by (queue) (rabbitmq_queue_consumers{{{ARCHIVES}}})", "{{queue}}"), w=6)
    b.row("Broker")
    alarm_mappings = [{"type": "value", "options": {"0": {"text": "ok", "color": "green", "index": 0},
                                                    "1": {"text": "ALARM", "color": "red", "index": 1}}}]
    for title, metric in (("Memory alarm", "rabbitmq_alarms_memory_used_watermark"),
                          ("Disk alarm", "rabbitmq_alarms_free_disk_space_watermark"),
                          ("File descriptor alarm", "rabbitmq_alarms_file_descriptor_limit")):
        b.stat(title, f"{metric}: 1 while the alarm blocks publishers (from the broker's aggregated /metrics).",
               target(f"max({metric})"), w=4, mappings=alarm_mappings, steps=((None, "green"), (1, "red")),
               color_mode="background")
    b.stat("Connections", "Client connections to the broker.", target("sum(rabbitmq_connections)"), w=4)
    b.stat("Unroutable returned /s", "Messages the broker returned to publishers as unroutable, all vhosts.",
           target(f"sum(rate(rabbitmq_global_messages_unroutable_returned_total[{RATE}]))"), unit="ops", w=4,
           steps=((None, "green"), (0.001, "red")))
    b.stat("Dead-lettered /s", "Messages the broker dead-lettered (delivery limit, rejection), all vhosts.",
           target("sum(rate(rabbitmq_global_messages_dead_lettered_delivery_limit_total"
                  f"[{RATE}])) + sum(rate(rabbitmq_global_messages_dead_lettered_rejected_total[{RATE}]))"),
           unit="ops", w=4)
    b.timeseries("Free disk", "Free disk against the broker's limit (alerts RabbitMQDiskFillingUp and "
                              "RabbitMQDiskAlarm).",
                 target("max by (instance) (rabbitmq_disk_space_available_bytes)", "{{instance}} free"),
                 target("max by (instance) (rabbitmq_disk_space_available_limit_bytes)", "{{instance}} limit"),
                 unit="bytes", w=12)
    b.timeseries("Memory", "Resident memory against the broker's high watermark.",
                 target("max by (instance) (rabbitmq_process_resident_memory_bytes)", "{{instance}} used"),
                 target("max by (instance) (rabbitmq_resident_memory_limit_bytes)", "{{instance}} limit"),
                 unit="bytes", w=12)
    return dashboard("partnership-rabbitmq", "Partnership: RabbitMQ queues and archive",
                     "Handler, dead-letter and retry queues, the archive streams, and the broker's health, from "
                     "RabbitMQ's Prometheus plugin (/metrics/per-object and /metrics).", b, [VHOST_VAR])


YEAR_VAR = variable("academic_year", "Academic year",
                    "label_values(partnership_billing_paying_members, academic_year)", multi=False, include_all=False)
Y = 'academic_year="$academic_year"'


def trust_board() -> dict:
    b = Board()
    b.row("Members")
    b.stat("Members", "Schools and organisations with an active membership (membership service).",
           target('sum(partnership_membership_members{status="active"})'), w=4, graph=True)
    b.stat("Applied", "Memberships applied for and not yet active.",
           target('sum(partnership_membership_members{status="applied"})'), w=4)
    b.stat("Members billing knows", "Current members as billing sees them (from membership's events).",
           target("max(partnership_billing_members)"), w=4)
    b.stat("Paying members", "Members invoiced in the academic year.",
           target(f"max(partnership_billing_paying_members{{{Y}}})"), w=4)
    b.stat("Buy-back rate", "Share of last year's buyers who bought again in the academic year.",
           target(f"max(partnership_billing_buy_back_ratio{{{Y}}})"), unit="percentunit", w=4, decimals=1,
           steps=((None, "red"), (0.7, "orange"), (0.85, "green")))
    b.stat("Revenue", "Invoiced revenue net of credit notes in the academic year.",
           target(f"sum(partnership_billing_revenue_pence{{{Y}}}) / 100"), unit="currencyGBP", w=4, decimals=0)
    b.timeseries("Members by kind and status", "Membership records by kind and status (left and converted "
                                               "included).",
                 target("sum by (kind, status) (partnership_membership_members)", "{{kind}} {{status}}"), w=12)
    b.timeseries("Buy-back rate by year", "Share of the previous year's buyers who bought again, by academic year.",
                 target("max by (academic_year) (partnership_billing_buy_back_ratio)", "{{academic_year}}"),
                 unit="percentunit", w=12, minimum=0)
    b.row("Money")
    b.bargauge("Revenue by service area", "Invoiced revenue net of credit notes in the academic year, by "
                                          "service area.",
               target(f"sum by (service_area) (partnership_billing_revenue_pence{{{Y}}}) / 100", "{{service_area}}",
                      instant=True), unit="currencyGBP", decimals=0, w=12)
    b.bargauge("Debt by age band", "Outstanding invoice balances by age since due, as of today.",
               target("sum by (age) (partnership_billing_debt_pence) / 100", "{{age}}", instant=True),
               unit="currencyGBP", decimals=0, w=12, steps=((None, "green"), (1000, "orange"), (10000, "red")))
    b.timeseries("Revenue by academic year", "Net invoiced revenue per academic year, by service area.",
                 target("sum by (academic_year, service_area) (partnership_billing_revenue_pence) / 100",
                        "{{academic_year}} {{service_area}}"), unit="currencyGBP", w=12, stack=True)
    b.timeseries("Debt over time", "Outstanding balances by age band.",
                 target("sum by (age) (partnership_billing_debt_pence) / 100", "{{age}}"), unit="currencyGBP", w=12,
                 stack=True)
    return dashboard("partnership-trust", "Partnership: the trust's board",
                     "Members, paying members, buy-back rate, revenue by service area and debt by age band.",
                     b, [YEAR_VAR], time_from="now-90d", refresh="15m")


BOARDS = {"services": services_board, "events": events_board, "rabbitmq": rabbitmq_board, "trust": trust_board}


def documents() -> dict[str, str]:
    return {f"{name}.json": json.dumps(build(), indent=2, ensure_ascii=False) + "\n" for name, build in BOARDS.items()}


# -- what the checks and the test read ------------------------------------------------------------
def panels_of(board: dict) -> Iterator[dict]:
    for panel in board.get("panels", []):
        yield panel
        yield from panel.get("panels", [])  # a collapsed row holds its panels


def expressions(board: dict) -> Iterator[tuple[str, str]]:
    """(where, PromQL) of every query of a board: panel targets and query variables."""
    for panel in panels_of(board):
        for t in panel.get("targets", []):
            yield f"{board['uid']}: {panel['title']} [{t['refId']}]", t["expr"]
    for var in board.get("templating", {}).get("list", []):
        if var.get("type") == "query":
            query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
            yield f"{board['uid']}: variable {var['name']}", query


def schema_problems(board: dict) -> list[str]:
    """What Grafana's published schema refuses in `board`, plus the rules the schema cannot express."""
    import jsonschema

    def validator(name: str) -> jsonschema.Draft7Validator:
        return jsonschema.Draft7Validator(json.loads((SCHEMAS / name).read_text()))

    def errors(v, instance, where: str) -> list[str]:
        found = []
        for e in sorted(v.iter_errors(instance), key=lambda e: list(map(str, e.absolute_path))):
            if e.context and e.validator == "anyOf":
                # a panel is "Panel or RowPanel": name what the branch of its own type refuses
                wanted = "RowPanel" if isinstance(e.instance, dict) and e.instance.get("type") == "row" else "Panel"
                branch = [i for i, s in enumerate(e.schema["anyOf"]) if s.get("$ref", "").endswith(f"/{wanted}")]
                inner = [c for c in e.context if c.relative_schema_path[0] in branch]
                for c in inner or [jsonschema.exceptions.best_match(e.context)]:
                    found.append(f"{where}: {'/'.join(map(str, c.absolute_path)) or '(root)'}: {c.message}")
                continue
            found.append(f"{where}: {'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}")
        return found

    uid = board.get("uid", "?")
    problems = errors(validator("dashboard.schema.json"), board, uid)
    ids = [p.get("id") for p in panels_of(board)]
    if len(ids) != len(set(ids)):
        problems.append(f"{uid}: panel ids repeat")
    for panel in panels_of(board):
        where = f"{uid}: panel {panel.get('title')!r}"
        kind = panel.get("type")
        if kind == "row":
            continue
        options = SCHEMAS / "panels" / f"{kind}.options.schema.json"
        if not options.exists():
            problems.append(f"{where}: no schema for panel type {kind!r} (regenerate.sh lists the panel types)")
            continue
        problems += errors(validator(f"panels/{kind}.options.schema.json"),
                           panel.get("options", {}), f"{where} options")
        custom = panel.get("fieldConfig", {}).get("defaults", {}).get("custom")
        field = SCHEMAS / "panels" / f"{kind}.fieldconfig.schema.json"
        if custom is not None and field.exists():
            problems += errors(validator(f"panels/{kind}.fieldconfig.schema.json"), custom, f"{where} custom")
        grid = panel.get("gridPos", {})
        if all(isinstance(grid.get(k), int) for k in "xw") and grid["x"] + grid["w"] > 24:
            problems.append(f"{where}: wider than the 24 columns")
        for t in panel.get("targets", []):
            if t.get("datasource") != DATASOURCE:
                problems.append(f"{where}: target {t.get('refId')} does not read the data source uid 'prometheus'")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="fail when deploy/grafana/dashboards is out of date or a board breaks the schema")
    args = parser.parse_args(argv)
    wanted = documents()
    problems = [p for text in wanted.values() for p in schema_problems(json.loads(text))]
    if problems:
        print("\n".join(problems), file=sys.stderr)
        print(f"{len(problems)} problem(s) against Grafana's dashboard schema", file=sys.stderr)
        return 1
    return write_or_check(wanted, DASHBOARDS, check=args.check, pattern="*.json",
                          command="python -m deploy.grafana.generate")


if __name__ == "__main__":
    sys.exit(main())
