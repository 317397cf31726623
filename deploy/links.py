"""Broker-link definitions for handing each service to an operator with its own RabbitMQ.

For every service, `deploy/rabbitmq/links/<service>.json` is a RabbitMQ
definitions document (see `partnership_ops.links`): the moved service's queues,
exchanges and bindings on the new broker, and the shovels that link it with
the old one. URIs, the vhost and the new operator's short name are left as
`${OLD_BROKER_URI}`, `${NEW_BROKER_URI}`, `${NEW_BROKER_VHOST}` and
`${NEW_OPERATOR}`; `deploy/rabbitmq/apply-links.sh` fills them from the
environment and applies the file. Queue arguments use the default event
settings (delivery limit 20, retries 1 s, 5 s, 30 s); a deployment that changed
them generates its own file with `partnership-ops link-brokers --dry-run
--write-definitions FILE --config ...`.

    python -m deploy.links          # (re)write the files
    python -m deploy.links --check  # exit 1 if any is missing or stale
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from deploy.local import SERVICES
from partnership_ops import links
from shared.config import events_settings

ROOT = Path(__file__).resolve().parents[1]
FOLDER = ROOT / "deploy" / "rabbitmq" / "links"
PLACEHOLDERS = {"old_uri": "${OLD_BROKER_URI}", "new_uri": "${NEW_BROKER_URI}", "label": "${NEW_OPERATOR}",
                "shovel_vhost": "${NEW_BROKER_VHOST}"}


def document(service: str) -> str:
    settings = events_settings({})
    body = links.definitions(service, delivery_limit=int(settings["delivery_limit"]),
                             retry_delays_ms=[int(d) for d in settings["retry_delays_ms"]], **PLACEHOLDERS)
    return json.dumps(body, indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    stale = []
    for spec in SERVICES:
        path = FOLDER / f"{spec.name}.json"
        wanted = document(spec.name)
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != wanted:
                stale.append(str(path.relative_to(ROOT)))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(wanted, encoding="utf-8")
    if stale:
        print("stale or missing (run python -m deploy.links):\n  " + "\n  ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
