"""`python -m deploy.backup dump|restore|verify`: see deploy/backup/__init__.py and the README's
"Backing up and restoring"."""
from __future__ import annotations

import argparse
import json
import sys

from deploy.backup import BackupError, dump, restore, verify


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.backup", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    d = commands.add_parser("dump", help="back up a service's database (pg_dump custom format, or a SQLite copy)")
    d.add_argument("--database-url", required=True, help="the service's DATABASE_URL (SQLAlchemy form)")
    d.add_argument("--out", required=True, help="the backup file to write (never overwritten)")
    r = commands.add_parser("restore", help="restore a backup into an EMPTY database")
    r.add_argument("--database-url", required=True, help="the empty database (create it first on PostgreSQL)")
    r.add_argument("--from", dest="source", required=True, help="the backup file")
    v = commands.add_parser("verify", help="read a backup through and list its tables")
    v.add_argument("--from", dest="source", required=True)
    args = parser.parse_args(argv)
    try:
        if args.command == "dump":
            out = dump(args.database_url, args.out)
            print(json.dumps({"backup": str(out), "tables": verify(out)}))
        elif args.command == "restore":
            print(json.dumps({"restored": restore(args.database_url, args.source)}))
        else:
            print(json.dumps({"backup": args.source, "tables": verify(args.source)}))
    except BackupError as exc:
        print(f"{args.command} failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
