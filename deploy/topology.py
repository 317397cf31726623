"""The broker topology of the whole system, as one RabbitMQ definitions document.

`deploy/rabbitmq/definitions.json` is generated from the four services' own handler
declarations (`partnership_ops.topology.definitions`, default event settings: delivery limit 20,
retries 1 s, 5 s, 30 s; archive kept 13 months): exchanges, handler/dead-letter/retry
queues, the archive streams, bindings, policies and each service user's permissions.
Users and their passwords are not in it: `partnership-ops topology apply` creates them.

    python -m deploy.topology                  # (re)write the file
    python -m deploy.topology --check          # exit 1 if it is missing or stale (make lint)


"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from deploy.local import SERVICES
from partnership_ops import links, topology
from shared.config import events_settings

ROOT = Path(__file__).resolve().parents[1]
FILE = ROOT / "deploy" / "rabbitmq" / "definitions.json"


def document(settings: dict | None = None, *, user_prefix: str = "",
             archive_max_age: str = topology.ARCHIVE_MAX_AGE, consumers: list[str] | None = None) -> dict:
    """The definitions of all four services with these event settings (the defaults if None).

    `consumers` (default: all) limits whose handler queues are included; every service still gets
    its exchange, archive and user. Tests provision this way, each service's queues just before
    it first starts, because a full topology per test vhost (70 queues) cost seconds a test."""
    settings = events_settings({"EVENTS": settings} if settings else {})
    wanted = {spec.name for spec in SERVICES} if consumers is None else set(consumers)

    full = sorted((links.topology_of(spec.name) for spec in SERVICES), key=lambda t: t.service)
    document = topology.definitions(
        [t if t.service in wanted else dataclasses.replace(t, handlers=()) for t in full],
        delivery_limit=settings["delivery_limit"], retry_delays_ms=settings["retry_delays_ms"],
        archive_max_age=archive_max_age, user_prefix=user_prefix)
    # every user gets its whole permissions, whichever queues are provisioned yet
    document["permissions"] = [{"user": f"{user_prefix}{t.service}", **topology.permissions_of(t)} for t in full]
    return document


def text() -> str:
    return json.dumps(document(), indent=2) + "\n"


def apply(amqp_uri: str, *, vhost: str | None = None, passwords: dict[str, str], settings: dict | None = None,
          user_prefix: str = "", admin_uri: str | None = None, consumers: list[str] | None = None,
          management_url: str | None = None) -> dict:
    """Provision the broker `amqp_uri` names (its vhost unless `vhost`), through its management API."""
    management = topology.Management.for_amqp_uri(admin_uri or amqp_uri, url=management_url)
    return topology.apply(management, document(settings, user_prefix=user_prefix, consumers=consumers),
                          vhost=vhost or links.vhost_of(amqp_uri), passwords=passwords)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    wanted = text()
    if args.check:
        if not FILE.exists() or FILE.read_text(encoding="utf-8") != wanted:
            print(f"{FILE.relative_to(ROOT)} is stale: run `python -m deploy.topology`", file=sys.stderr)
            return 1
        return 0
    FILE.parent.mkdir(parents=True, exist_ok=True)
    FILE.write_text(wanted, encoding="utf-8")
    print(f"wrote {FILE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
