"""Structured logs: one JSON object per line, carrying who logged it and what it was handling.

Every line has `timestamp` (ISO 8601, UTC), `level`, `service`, `operator`, `logger`, `message`, and,
inside a worker, the `correlation_id` of the request or event being handled and the `causation_id`
(the event that caused the work; none for an HTTP request). A request's `X-Correlation-ID` is
carried into the events it causes and from them into their consumers' lines, so one id follows
one piece of work through every service.

Configured in each service's `LOGGING` (config.yml): the `context` filter and the `shared.logs.formatter`
factory, whose `style` is `json` (default) or `plain` for a developer's terminal (`LOG_FORMAT=plain`).
"""
from __future__ import annotations

import datetime as dt
import logging
import re
import threading

from nameko.extensions import DependencyProvider
from pythonjsonlogger.json import JsonFormatter

from shared.config import operator_of

# Eventlet patches threading.local, so under nameko this is one context per green thread (worker).
_local = threading.local()
# One service per process in production; tests that host several in one process see the last one here,
# and the right one in each worker's own context.
_process: dict[str, str | None] = {"service": None, "operator": None}

FIELDS = ("service", "operator", "correlation_id", "causation_id")


def current() -> dict[str, str | None]:
    """The log context of the running green thread (falls back to the process's service)."""
    context = getattr(_local, "context", None) or {}
    return {field: context.get(field, _process.get(field)) for field in FIELDS}


def bind(**fields) -> None:
    """Set fields of the running green thread's context (a relay or consumer thread names its service)."""
    context = dict(getattr(_local, "context", None) or {})
    context.update(fields)
    _local.context = context


def clear() -> None:
    _local.context = None


class ContextFilter(logging.Filter):
    """Adds service, operator, correlation_id and causation_id to every record; `service` and
    `operator` (from the logging config) name the process before any container has started."""

    def __init__(self, service: str | None = None, operator: str | None = None):
        super().__init__()
        for field, value in (("service", service), ("operator", operator)):
            if value and not _process.get(field):
                _process[field] = value

    def filter(self, record: logging.LogRecord) -> bool:
        for field, value in current().items():
            if not hasattr(record, field):
                setattr(record, field, value)
        return True


# A password in a broker URI (`amqp://user:password@host`). nameko masks the first URI of an
# `AMQP_URI` that lists a cluster's nodes and prints the others whole; every line is masked here.
_URI_PASSWORD = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^:/@\s;\"']+:)[^@\s;\"']+@", re.IGNORECASE)


def redact(text: str) -> str:
    """`text` with the password of every URI in it masked."""
    return _URI_PASSWORD.sub(r"\1**@", text)


class _Redacting:
    def format(self, record):
        return redact(super().format(record))


class _Json(_Redacting, JsonFormatter):
    def formatTime(self, record, datefmt=None):  # noqa: N802 - logging's name
        return dt.datetime.fromtimestamp(record.created, dt.timezone.utc).isoformat(timespec="milliseconds")


class _Plain(_Redacting, logging.Formatter):
    pass


def formatter(style: str = "json") -> logging.Formatter:
    """The formatter of the services' log handler: JSON lines, or plain text for a terminal; either masks
    the password of any URI a line carries."""
    if str(style).strip().lower() == "plain":
        return _Plain("%(asctime)s %(levelname)s %(service)s %(name)s [%(correlation_id)s] %(message)s")
    return _Json("%(asctime)s %(levelname)s %(service)s %(operator)s %(name)s %(message)s "
                 "%(correlation_id)s %(causation_id)s",
                 rename_fields={"asctime": "timestamp", "levelname": "level", "name": "logger"})


class LogContext(DependencyProvider):
    """Binds each worker's log context: the service, its operator, and the work's correlation and
    causation ids (from the worker's context data, set by the HTTP and event entrypoints)."""

    def setup(self):
        self.service = self.container.service_name
        self.operator = operator_of(self.container.config)["name"]
        _process.update(service=self.service, operator=self.operator)

    def worker_setup(self, worker_ctx):
        data = worker_ctx.data
        _local.context = {"service": self.service, "operator": self.operator,
                          "correlation_id": data.get("correlation_id") or worker_ctx.call_id,
                          "causation_id": data.get("causation_id")}

    def worker_teardown(self, worker_ctx):
        clear()
