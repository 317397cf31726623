"""A consumer of the partnership's events written from the published contracts alone: plain pika.

It needs nothing from this repository at run time but the JSON Schemas the producers publish
(`services/<producer>/contracts/*.schema.json`, or the AsyncAPI document in `docs/asyncapi/`)
and a broker user made for it (`partnership-ops topology consumer-user NAME`). What it does:

- binds its own durable quorum queue, `consumer.<NAME>.events`, to each producer's topic
  exchange `<producer>.events` with the routing keys it reads: `<type>.v<version>`, so a new
  (breaking) version of an event never reaches code written for the old one;
- on its **first start** (no state file yet) it reads every archived event it subscribes to
  from the producers' archive streams `<producer>.events.archive`, from the first, before it
  consumes its queue: it learns the history published before it existed. The queue is bound
  *before* the archive is read, so nothing published in between is missed; what both carry
  is dropped as a duplicate;
- **de-duplicates** by message id (`message_id` = the envelope's `event_id`): delivery is at
  least once, so an id already applied is acknowledged without effect. The applied ids live in
  a SQLite file, written in the same transaction as the event's effect (here: a row in
  `events`), and the message is acknowledged only after that commit;
- **validates** each envelope against the producer's published JSON Schema for its type and
  version (`<type>.v<version>.schema.json`); one that fails is rejected (`basic_nack` without
  requeue: the broker drops it from this consumer's queue) and recorded in `rejected`.

Every outcome is printed as one JSON line (`{"outcome": "applied"|"duplicate"|"rejected", ...}`).

    python consumer.py --amqp amqp://consumer-finance:PASSWORD@broker:5672/ --name finance \
        --bind membership:member_joined.v1 --bind catalogue:subscription_started.v1 \
        --schemas ../../../services/membership/contracts --schemas ../../../services/catalogue/contracts \
        --state finance.sqlite3
"""
from __future__ import annotations

import argparse
import json
import re
import signal
import sqlite3
import sys
import time
from pathlib import Path

import jsonschema
import pika

ARCHIVE_PREFETCH = 200
LIVE_PREFETCH = 50


def topic_matches(pattern: str, key: str) -> bool:
    """AMQP topic matching (`*` one word, `#` zero or more), for filtering what the archive holds."""
    def match(p: list[str], k: list[str]) -> bool:
        if not p:
            return not k
        if p[0] == "#":
            return any(match(p[1:], k[i:]) for i in range(len(k) + 1))
        return bool(k) and p[0] in ("*", k[0]) and match(p[1:], k[1:])
    return match(pattern.split("."), key.split("."))


class Schemas:
    """The published JSON Schemas, by (type, version), read from contract folders."""

    def __init__(self, folders: list[Path]):
        self.validators: dict[tuple[str, int], jsonschema.protocols.Validator] = {}
        for folder in folders:
            for path in sorted(Path(folder).glob("*.v*.schema.json")):
                event_type, version = re.match(r"^(.+)\.v(\d+)\.schema\.json$", path.name).groups()
                schema = json.loads(path.read_text(encoding="utf-8"))
                cls = jsonschema.validators.validator_for(schema)
                self.validators[(event_type, int(version))] = cls(schema, format_checker=cls.FORMAT_CHECKER)

    def problems(self, envelope: object) -> list[str]:
        """Why `envelope` is not a valid published event (empty when it is)."""
        if not isinstance(envelope, dict):
            return ["the body is not a JSON object"]
        validator = self.validators.get((envelope.get("type"), envelope.get("version")))
        if validator is None:
            return [f"no published schema for {envelope.get('type')!r} v{envelope.get('version')!r}"]
        return [f"{'/'.join(map(str, error.absolute_path)) or '(envelope)'}: {error.message}"
                for error in validator.iter_errors(envelope)]


class State:
    """What this consumer applied (its inbox), what it rejected, and whether it replayed the archive."""

    def __init__(self, path: Path):
        self.first_start = not Path(path).exists()
        self.db = sqlite3.connect(path)
        self.db.executescript("""
            CREATE TABLE IF NOT EXISTS applied (event_id TEXT PRIMARY KEY, type TEXT, via TEXT);
            CREATE TABLE IF NOT EXISTS events (event_id TEXT PRIMARY KEY, body TEXT);
            CREATE TABLE IF NOT EXISTS rejected (message_id TEXT, error TEXT);
            CREATE TABLE IF NOT EXISTS replays (producer TEXT PRIMARY KEY, last_offset INTEGER);
        """)

    def apply(self, envelope: dict, via: str) -> bool:
        """Record and apply one event in one transaction; False if its id was applied before."""
        try:
            with self.db:
                self.db.execute("INSERT INTO applied VALUES (?, ?, ?)", (envelope["event_id"], envelope["type"], via))
                # The effect: a real consumer updates its own tables here, in the same transaction.
                self.db.execute("INSERT INTO events VALUES (?, ?)", (envelope["event_id"], json.dumps(envelope)))
        except sqlite3.IntegrityError:
            return False
        return True

    def reject(self, message_id: str | None, error: str) -> None:
        with self.db:
            self.db.execute("INSERT INTO rejected VALUES (?, ?)", (message_id, error))

    def replayed(self, producer: str, last_offset: int | None) -> None:
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO replays VALUES (?, ?)", (producer, last_offset))


def emit(**fields) -> None:
    print(json.dumps(fields), flush=True)


class Consumer:
    def __init__(self, args):
        self.args = args
        self.bindings = [tuple(b.split(":", 1)) for b in args.bind]  # (producer, routing key pattern)
        self.queue = f"consumer.{args.name}.events"
        self.schemas = Schemas([Path(f) for f in args.schemas])
        self.state = State(Path(args.state))
        self.connection = pika.BlockingConnection(pika.URLParameters(args.amqp))
        self.channel = self.connection.channel()

    def handle(self, channel, method, properties, body: bytes, *, via: str) -> None:
        try:
            envelope = json.loads(body)
        except ValueError as exc:
            envelope, problems = None, [f"not JSON: {exc}"]
        else:
            problems = self.schemas.problems(envelope)
        if problems:
            self.state.reject(properties.message_id, "; ".join(problems))
            emit(outcome="rejected", message_id=properties.message_id, via=via, errors=problems)
            # A stream keeps its messages whatever we answer; a queue drops a nacked one (no requeue).
            channel.basic_nack(method.delivery_tag, requeue=False) if via == "queue" else \
                channel.basic_ack(method.delivery_tag)
            return
        applied = self.state.apply(envelope, via)
        channel.basic_ack(method.delivery_tag)  # only after the commit: a crash before it redelivers
        emit(outcome="applied" if applied else "duplicate", event_id=envelope["event_id"], type=envelope["type"],
             version=envelope["version"], via=via)

    def declare(self) -> None:
        """The consumer's own queue and its bindings (idempotent: done on every start)."""
        self.channel.queue_declare(self.queue, durable=True, arguments={"x-queue-type": "quorum"})
        for producer, key in self.bindings:
            self.channel.queue_bind(self.queue, f"{producer}.events", routing_key=key)

    def replay_archive(self) -> None:
        """Every archived event this consumer subscribes to, from the first, until the archive is quiet."""
        for producer in sorted({p for p, _ in self.bindings}):
            keys = [k for p, k in self.bindings if p == producer]
            last_offset = None
            channel = self.connection.channel()
            channel.basic_qos(prefetch_count=ARCHIVE_PREFETCH)  # a stream consumer needs a prefetch
            for method, properties, body in channel.consume(f"{producer}.events.archive",
                                                            arguments={"x-stream-offset": "first"},
                                                            inactivity_timeout=self.args.archive_idle_seconds):
                if method is None:  # nothing more for a while: the end of the archive as it was
                    break
                last_offset = (properties.headers or {}).get("x-stream-offset", last_offset)
                if any(topic_matches(key, method.routing_key) for key in keys):
                    self.handle(channel, method, properties, body, via="archive")
                else:
                    channel.basic_ack(method.delivery_tag)
            channel.cancel()
            channel.close()
            self.state.replayed(producer, last_offset)
            emit(outcome="archive_replayed", producer=producer, last_offset=last_offset)

    def run(self) -> None:
        self.declare()
        if self.state.first_start:
            self.replay_archive()
        self.channel.basic_qos(prefetch_count=LIVE_PREFETCH)
        self.channel.basic_consume(self.queue, lambda ch, m, p, b: self.handle(ch, m, p, b, via="queue"))
        emit(outcome="consuming", queue=self.queue)
        deadline = time.monotonic() + self.args.run_seconds if self.args.run_seconds else None
        while not stopping and (deadline is None or time.monotonic() < deadline):
            self.connection.process_data_events(time_limit=0.5)
        self.connection.close()


stopping = False


def _stop(*_):
    global stopping
    stopping = True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--amqp", required=True, help="the consumer's own broker user and vhost")
    parser.add_argument("--name", required=True, help="the consumer's name: its queues are consumer.<name>.*")
    parser.add_argument("--bind", action="append", required=True,
                        help="producer:routing-key, e.g. membership:member_joined.v1 (repeatable)")
    parser.add_argument("--schemas", action="append", required=True, help="a folder of published *.schema.json")
    parser.add_argument("--state", required=True, help="SQLite file: applied ids, rejections, archive replays")
    parser.add_argument("--archive-idle-seconds", type=float, default=2.0,
                        help="the archive is read to its end: no new message for this long")
    parser.add_argument("--run-seconds", type=float, default=0, help="stop after this long (0: until SIGTERM)")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    Consumer(args).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
