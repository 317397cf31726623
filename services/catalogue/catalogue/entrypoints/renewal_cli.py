"""The renewal round from the command line (the same use case as `POST /renewal-rounds`).

    DATABASE_URL=... python -m catalogue.entrypoints.renewal_cli --config config.yml --year 2027 [--uplift 3]

Opens `year`'s editions and renews every SLA due into them, committing chunk by
chunk with the events in the outbox; the running service's relay publishes them
(it polls the outbox). Safe to run again: nothing is renewed twice.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import uuid
from decimal import Decimal

from shared.config import load_config, operator_of
from shared.db import Database
from shared.unit_of_work import Origin, Producer, UnitsOfWork

from catalogue.adapters.tables import inbox, outbox
from catalogue.messages.published import PUBLISHED
from catalogue.service_layer import handlers
from shared import business_date


def units_of_work(database_url: str, operator: str, correlation_id: str | None = None) -> UnitsOfWork:
    database = Database(database_url)
    database.upgrade("catalogue:migrations")
    producer = Producer(service=handlers.SERVICE, operator=operator, schemas=PUBLISHED)
    return UnitsOfWork(database, producer, outbox, inbox,
                       Origin(correlation_id=correlation_id or f"renewal-round-{uuid.uuid4()}"), lambda: None)


class _ProgressBar:
    """A job control for the command line: a progress bar on stderr (tqdm); Ctrl-C stops the round
    between chunks (what is committed stays, and a second run renews the rest)."""

    def __init__(self):
        from tqdm import tqdm

        self._bar = tqdm(total=0, unit="SLA", desc="renewal round", file=sys.stderr, disable=None)

    def progress(self, done: int, total: int | None = None) -> None:
        if total is not None and self._bar.total != total:
            self._bar.total = total
        self._bar.update(done - self._bar.n)

    def check(self) -> None:
        pass

    def close(self) -> None:
        self._bar.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="the service's config.yml (DATABASE_URL, OPERATOR)")
    parser.add_argument("--year", type=int, required=True, help="edition year to renew into, e.g. 2027 for 2027/28")
    parser.add_argument("--uplift", type=Decimal, default=Decimal(0), help="percent added to last year's prices")
    parser.add_argument("--chunk-size", type=int, default=5000)
    args = parser.parse_args(argv)
    config = load_config(args.config)
    uows = units_of_work(config["DATABASE_URL"], operator_of(config)["name"])
    bar = _ProgressBar()
    try:
        summary = handlers.run_renewal_round(uows, year=args.year, today=business_date.today(), uplift_percent=args.uplift,
                                             chunk_size=args.chunk_size, control=bar)
    finally:
        bar.close()
        uows.database.dispose()
    print(json.dumps(summary.as_dict(), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
