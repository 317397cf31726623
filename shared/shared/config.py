"""Configuration: one YAML file per service with `${VAR:default}` substitution.

The file is read with nameko's own loader, so `nameko run --config` and the
service's command-line tools (migrations, operator commands) see the same values.
Defaults in each `config.yml` work on localhost with SQLite; secrets come only
from the environment.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml

AMQP_URI_KEY = "AMQP_URI"
DATABASE_URL_KEY = "DATABASE_URL"
OPERATOR_KEY = "OPERATOR"
EVENTS_KEY = "EVENTS"


def load_config(path: str | Path) -> dict[str, Any]:
    """Read a service's YAML config, substituting `${VAR:default}` from the environment."""
    from nameko.cli.main import setup_yaml_parser  # imports pkg_resources; only on demand

    setup_yaml_parser()
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle) or {}


ENVIRONMENT_VARIABLE = "PARTNERSHIP_ENV"
ENVIRONMENTS = ("development", "production")
# What every service needs from its operator in production: who runs it, where its broker and
# database are. The config.yml defaults (localhost, SQLite, the Bucks Learning Trust) are for a
# developer's machine only.
REQUIRED_IN_PRODUCTION = ("OPERATOR_NAME", "OPERATOR_LEGAL_NAME", "AMQP_URI", "DATABASE_URL",
                          # who may call it: the token issuer and audience (shared.auth)
                          "AUTH_ISSUER", "AUTH_AUDIENCE")


class MissingSettings(RuntimeError):
    """A production service must not start on development defaults."""


def environment(environ: Mapping[str, str] = os.environ) -> str:
    """`development` (a checkout: `make run`, the tests) or `production` (the images' default)."""
    value = (environ.get(ENVIRONMENT_VARIABLE) or "development").strip().lower()
    if value not in ENVIRONMENTS:
        raise MissingSettings(f"{ENVIRONMENT_VARIABLE}={value!r}: must be one of {', '.join(ENVIRONMENTS)}")
    return value


def check_production_settings(service: str, extra: Iterable[str] = (),
                              environ: Mapping[str, str] = os.environ) -> None:
    """In production, refuse to start unless every required setting is given (named, all at once),
    never on RabbitMQ's guest account, never without a token issuer and a metrics credential, and never
    with the development token issuer or AUTH_DEVELOPMENT. Nothing is checked in development."""
    if environment(environ) != "production":
        return
    missing = [name for name in (*REQUIRED_IN_PRODUCTION, *extra) if not (environ.get(name) or "").strip()]
    problems = []
    if missing:
        problems.append("missing " + ", ".join(missing))
    amqp = environ.get("AMQP_URI") or ""
    if "://guest:" in amqp or "://guest@" in amqp:
        problems.append("AMQP_URI uses the guest account: give the service its own broker user")
    if not any((environ.get(name) or "").strip() for name in ("METRICS_TOKEN", "METRICS_TOKEN_FILE")):
        problems.append("missing METRICS_TOKEN or METRICS_TOKEN_FILE (Prometheus's scrape credential for /metrics)")
    from shared.auth import DEVELOPMENT_ISSUER

    if (environ.get("AUTH_DEVELOPMENT") or "").strip().lower() not in ("", "0", "false", "no", "off"):
        problems.append("AUTH_DEVELOPMENT is set: the development token issuer is never accepted in production")
    if (environ.get("AUTH_ISSUER") or "").strip() == DEVELOPMENT_ISSUER:
        problems.append(f"AUTH_ISSUER is the development issuer {DEVELOPMENT_ISSUER}")
    if problems:
        raise MissingSettings(f"{service} refuses to start in production ({ENVIRONMENT_VARIABLE}=production): "
                              + "; ".join(problems))


def operator_of(config: Mapping[str, Any]) -> dict[str, Any]:
    """The operator block of a config: at least `name`, the organisation running this function."""
    operator = dict(config.get(OPERATOR_KEY) or {})
    if not operator.get("name"):
        raise ValueError("config OPERATOR.name is required: the organisation that runs this service")
    return operator


_EVENT_SETTING_TYPES = {
    "retry_delays_ms": "int list", "delivery_limit": int, "relay_batch_size": int, "relay_poll_seconds": float,
    "relay_linger_ms": float, "relay_max_backoff_seconds": float, "outbox_retention_hours": float,
    "transient_backoff_initial_seconds": float, "transient_backoff_max_seconds": float,
    "republish_confirm_timeout_seconds": float, "broker_startup_timeout_seconds": float,
    "batch_max_events": int, "batch_linger_ms": float,
}


def events_settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """Event plumbing settings with their defaults filled in and their types made right once (YAML and
    `${VAR}` substitution may give strings); a value that is not a number raises ValueError naming it."""
    settings = {
        # Delays between attempts of a failing handler; its last failure dead-letters.
        "retry_delays_ms": [1000, 5000, 30000],
        # Broker-side safety net: a message redelivered this often (e.g. it crashes
        # the process every time) is dead-lettered by RabbitMQ itself.
        "delivery_limit": 20,
        "relay_batch_size": 500,
        "relay_poll_seconds": 0.5,
        "relay_linger_ms": 5,
        "relay_max_backoff_seconds": 30.0,
        "outbox_retention_hours": 168,
        # A transient failure (database unreachable or locked, broker trouble) is never an
        # attempt: the handler pauses and tries again after a backoff that starts here and
        # doubles up to the maximum (full jitter), for as long as the outage lasts.
        "transient_backoff_initial_seconds": 0.5,
        "transient_backoff_max_seconds": 30.0,
        # How long a retry or dead-letter copy may wait for the broker's confirm.
        "republish_confirm_timeout_seconds": 10.0,
        # How long a starting service waits for the broker before it gives up, saying so.
        "broker_startup_timeout_seconds": 120.0,
        # A batched handler (`shared.batch_consumer`) gets up to this many events at once, or
        # what arrived within the linger after the first; max_workers (the prefetch) must be
        # at least batch_max_events.
        "batch_max_events": 10,
        "batch_linger_ms": 10.0,
    }
    settings.update(config.get(EVENTS_KEY) or {})
    for key, kind in _EVENT_SETTING_TYPES.items():
        value = settings[key]
        try:
            if kind == "int list":
                items = value.split(",") if isinstance(value, str) else value
                settings[key] = [int(item) for item in items]
            else:
                settings[key] = kind(value)
        except (TypeError, ValueError):
            expected = {"int list": "a list of whole milliseconds", int: "an integer", float: "a number"}[kind]
            raise ValueError(f"config {EVENTS_KEY}.{key} must be {expected}, got {value!r}") from None
    return settings
