"""What the producer, the sink service and the driver share: tables, the event's schema, small helpers."""
from __future__ import annotations

import datetime as dt
import json
import math
import sys
from typing import Iterable, Sequence

import sqlalchemy as sa
from marshmallow import EXCLUDE, RAISE, Schema, fields, validate

from shared.envelope import PayloadSchemas
from shared.messaging_tables import define_messaging_tables

EVENT_TYPE = "bench_ticked"
SINK_SERVICE = "benchsink"
SINK_METHOD = "on_ticked"
MIGRATIONS = "bench:migrations"

# One metadata for both databases (the producer's and the sink's): both get
# every table; each side writes only its own.
metadata = sa.MetaData()
outbox, inbox = define_messaging_tables(metadata)

# The producer's throwaway state: one row per state change.
ticks = sa.Table(
    "bench_ticks", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run", sa.String(20), nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("value", sa.String(40), nullable=False),
)

# The sink's effect of each event: the producer's commit time travels in the payload,
# `applied_at` is taken in the handler's transaction just before its commit.
effects = sa.Table(
    "bench_effects", metadata,
    sa.Column("event_id", sa.String(36), primary_key=True),
    sa.Column("run", sa.String(20), nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("produced_at", sa.Float, nullable=False),
    sa.Column("applied_at", sa.Float, nullable=False),
)


class TickedV1(Schema):
    """What the producer publishes (strict, like a service's published schema)."""

    class Meta:
        unknown = RAISE

    run = fields.String(required=True, validate=validate.Length(min=1, max=20))
    seq = fields.Integer(required=True, strict=True)
    committed_at = fields.Float(required=True)


class TickedIn(Schema):
    """The sink's own lenient copy of it (unknown fields excluded)."""

    class Meta:
        unknown = EXCLUDE

    run = fields.String(required=True)
    seq = fields.Integer(required=True)
    committed_at = fields.Float(required=True)


PUBLISHED = PayloadSchemas({(EVENT_TYPE, 1): TickedV1()})
SINK_PUBLISHES = PayloadSchemas({})


def handler_queue(source: str) -> str:
    from shared.topology import handler_queue_name

    return handler_queue_name(source, EVENT_TYPE, SINK_SERVICE, SINK_METHOD)


def naive_utc_to_epoch(value: dt.datetime | None) -> float | None:
    if value is None:
        return None
    return value.replace(tzinfo=dt.timezone.utc).timestamp()


def percentile(sorted_values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile of already sorted values (q in 0..100)."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(q / 100.0 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def emit(result: dict) -> None:
    """A worker's result: one JSON line on stdout, prefixed so the driver can find it."""
    sys.stdout.write("RESULT " + json.dumps(result) + "\n")
    sys.stdout.flush()


def find_result(lines: Iterable[str]) -> dict | None:
    for line in reversed(list(lines)):
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    return None
