"""The partnership's operator tooling: the `partnership-ops` command and what it runs.

Run by an operations team or a deployment job (the broker-topology and migration Jobs),
never by a running service: `shared` holds what the services import, and import-linter
(`.importlinter`) keeps `shared` and every service from importing this package.

- `ops`: the command line (`partnership-ops`, or `python -m partnership_ops`); dead letters,
  redelivery, the outbox report and migrations;
- `topology`: the broker's definitions from the services' code, applied and checked
  through the management API;
- `event_archive`: reading and replaying the archive streams;
- `archive`, `handover`, `links`: handing a service to another operator (export, import,
  drain, cut-over, shovels between brokers; docs/handover.md).
"""

__version__ = "0.1.0"
