"""Operator commands of the membership service, outside nameko (the running service's relay publishes the
events they commit to the outbox):

    python -m membership.cli import-schools FILE [--census-date YYYY-MM-DD] [--joined-on YYYY-MM-DD]
    python -m membership.cli import-links [FILE]        # default: $MEMBERSHIP_GIAS_LINKS
    partnership-ops tail --producer membership --type contact_erased | python -m membership.cli erase-again -

Each reads DATABASE_URL and OPERATOR_NAME like the service (through its config.yml, `--config`), prints a JSON
report (each rejected row with its line, column and reason) and exits 0, or 2 when the file cannot be read.

`erase-again` is for after a restore from a backup older than some erasures: it erases once more every
person named by the archived `contact_erased` events it reads (JSON lines, as `partnership-ops tail` prints
them, from FILE or `-` for standard input). A person already erased is left as is; one the restored
database does not know is reported (`unknown`); any other is erased as the first time was (name, email,
outbox, audit trail, roles ended) and `contact_erased` is published again, which the consumers' tombstones
and inboxes make harmless.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
import uuid
from pathlib import Path

from shared.config import load_config, operator_of
from shared.db import Database
from shared.unit_of_work import Origin, Producer, UnitsOfWork

from membership.adapters import reference
from membership.adapters.tables import inbox, outbox
from membership.messages.published import PUBLISHED
from membership.service_layer import handlers
from shared import business_date

DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "config.yml"


def command_units(config: dict) -> UnitsOfWork:
    """Units of work as the service makes them, for one command-line run (one correlation id); the
    running service's relay publishes what they commit."""
    database = Database(config["DATABASE_URL"])
    database.upgrade("membership:migrations")
    producer = Producer(service="membership", operator=operator_of(config)["name"], schemas=PUBLISHED)
    return UnitsOfWork(database, producer, outbox, inbox, Origin(correlation_id=f"cli-{uuid.uuid4()}"),
                       lambda: None)


def _erased_ids(lines) -> list[str]:
    """The contact ids of the `contact_erased` events among JSON lines, in order, once each."""
    ids: list[str] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except ValueError as exc:
            raise ValueError(f"line {number}: not JSON ({exc})") from None
        if event.get("type") == "contact_erased":
            contact_id = str((event.get("payload") or {}).get("contact_id") or "")
            if not contact_id:
                raise ValueError(f"line {number}: contact_erased without payload.contact_id")
            if contact_id not in ids:
                ids.append(contact_id)
    return ids


def erase_again(units: UnitsOfWork, contact_ids: list[str]) -> dict:
    """Erase each person once more unless already erased (see the module docstring); returns what was done."""
    report: dict[str, list[str]] = {"erased": [], "already_erased": [], "unknown": []}
    for contact_id in contact_ids:
        with units.read() as session:
            found = handlers.export_contact(session, contact_id)
        if found is None:
            report["unknown"].append(contact_id)
        elif found["erased_at"] is not None:
            report["already_erased"].append(contact_id)
        else:
            handlers.erase_contact(units(), contact_id)
            report["erased"].append(contact_id)
    return report


def _date(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m membership.cli", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default=os.environ.get("MEMBERSHIP_CONFIG", str(DEFAULT_CONFIG)))
    commands = parser.add_subparsers(dest="command", required=True)
    schools = commands.add_parser("import-schools", help="bulk import in the DfE register's column layout")
    schools.add_argument("file")
    schools.add_argument("--census-date", type=_date, default=None,
                         help="census of NumberOfPupils when the file has no CensusDate column")
    schools.add_argument("--joined-on", type=_date, default=business_date.today())
    schools.add_argument("--effective-date", type=_date, default=None, help="of detail changes (default joined-on)")
    schools.add_argument("--types", default=None, help="the GIAS establishment-types CSV (default: packaged copy)")
    links = commands.add_parser("import-links", help="the DfE register's predecessor/successor links")
    links.add_argument("file", nargs="?", default=os.environ.get(reference.LINKS_ENV))
    again = commands.add_parser("erase-again", help="after a restore: erase again everyone the archive says was erased")
    again.add_argument("file", help="JSON lines of archived contact_erased events (`-`: standard input)")
    args = parser.parse_args(argv)

    config = load_config(args.config)
    started = time.perf_counter()
    try:
        if args.command == "import-schools":
            known = reference.load_establishment_types(args.types or reference.types_path(config))
            text = reference.read_text(args.file, "schools CSV")
            columns, _ = handlers.read_register_csv(text)
            if args.census_date is None and "census_date" not in columns:
                raise ValueError("the file has no CensusDate column: give --census-date")
            units = command_units(config)
            report = handlers.import_schools(units(), text, known_types=known,
                                             census_date=args.census_date or args.joined_on,
                                             joined_on=args.joined_on, effective_date=args.effective_date)
            result = report.as_dict()
        elif args.command == "erase-again":
            units = command_units(config)
            lines = sys.stdin.read() if args.file == "-" else reference.read_text(args.file, "archived events")
            result = erase_again(units, _erased_ids(lines.splitlines()))
        else:
            if not args.file:
                raise ValueError(f"give the links file or set {reference.LINKS_ENV}")
            text = reference.read_text(args.file, "links CSV")
            units = command_units(config)
            result = handlers.import_links(units(), text).summary()
    except (ValueError, reference.ReferenceDataMissing) as exc:
        print(json.dumps({"error": str(exc)}), file=sys.stderr)
        return 2
    result["seconds"] = round(time.perf_counter() - started, 2)
    print(json.dumps(result, indent=1, default=str))
    units.database.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
