"""Membership bulk-import benchmark: the whole of England (24,000 establishments) from a CSV in the DfE
register's column layout, imported, then re-imported unchanged, then re-imported with 5% changed, on SQLite
and on PostgreSQL. Targets: first import < 60 s, unchanged re-import < 30 s (and no events).

    .venv/bin/python -m bench.membership_import [--rows 24000] [--backends sqlite,postgresql] [--via-http]

Runs the command-line import's own code path (`membership.cli`): parse and validate every row, one
transaction, bulk inserts, one outbox row per event. PostgreSQL at TEST_POSTGRES_URL (a throwaway database is
created and dropped). `--via-http` instead posts the file twice to `POST /imports/schools` of the service
running as a process (nameko, on a throwaway RabbitMQ vhost). Bounded: one run per backend, nothing left
behind.
"""
from __future__ import annotations

import argparse
import csv
import io
import os
import random
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import func, select

from membership.adapters import reference
from membership.adapters.tables import members, outbox
from membership.cli import command_units
from membership.domain.la_codes import LA_CODES
from membership.service_layer import handlers
from shared.db import drop_postgres_database, ensure_postgres_database

import datetime as dt

PG_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
HEADER = ["URN", "LA (code)", "LA (name)", "EstablishmentNumber", "EstablishmentName",
          "TypeOfEstablishment (name)", "EstablishmentStatus (name)", "PhaseOfEducation (name)", "NumberOfPupils",
          "CensusDate", "Postcode", "Trusts (code)", "Trusts (name)"]
# roughly England's mix (GIAS 2025): academies ~45%, LA maintained ~45%, the rest special, nursery, PRU...
TYPES = [("Community school", 30), ("Voluntary aided school", 10), ("Voluntary controlled school", 6),
         ("Foundation school", 3), ("Academy converter", 28), ("Academy sponsor led", 8), ("Free schools", 3),
         ("Community special school", 3), ("Academy special converter", 2), ("Local authority nursery school", 1),
         ("Pupil referral unit", 1), ("Other independent school", 3), ("Further education", 1)]
PHASES = [("Primary", 75), ("Secondary", 15), ("All-through", 2), ("Nursery", 2), ("Not applicable", 6)]
AREAS = ["HP", "SL", "MK", "OX", "RG", "LU", "B", "M", "LS", "S", "NG", "L", "BS", "NE", "CB", "N", "E", "SE", "W"]
WORDS = ["St Mary's", "Oak", "Hill", "Park", "Church of England", "Green", "Brook", "Valley", "Meadow", "Abbey",
         "Castle", "Wood", "Field", "Saint John's", "Holy Trinity", "Riverside", "Kings", "Queens", "Manor"]


def generate(rows: int, seed: int = 2025) -> str:
    rng = random.Random(seed)
    types = [t for t, w in TYPES for _ in range(w)]
    phases = [p for p, w in PHASES for _ in range(w)]
    # real DfE LA codes with their names: membership refuses a LAESTAB whose code is not its authority's
    las = [(code, names[0]) for code, names in sorted(LA_CODES.items())]
    trusts = [(f"{rng.randint(1000, 17000)}", f"{rng.choice(WORDS)} {rng.choice(WORDS)} Academy Trust")
              for _ in range(1200)]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(HEADER)
    urns = rng.sample(range(100000, 150000), rows)
    for i, urn in enumerate(urns):
        la, la_name = rng.choice(las)
        kind = rng.choice(types)
        phase = rng.choice(phases)
        trust = rng.choice(trusts) if kind.startswith(("Academy", "Free")) else ("", "")
        pupils = rng.randint(15, 420) if phase in ("Primary", "Nursery") else rng.randint(300, 1800)
        postcode = f"{rng.choice(AREAS)}{rng.randint(1, 29)} {rng.randint(1, 9)}{rng.choice('ABDEFGHJLNPQRSTUWXYZ')}" \
                   f"{rng.choice('ABDEFGHJLNPQRSTUWXYZ')}"
        writer.writerow([urn, la, la_name, 2000 + i % 8000, f"{rng.choice(WORDS)} {rng.choice(WORDS)} School",
                         kind, "Open", phase, pupils, "16-01-2025", postcode, *trust])
    return out.getvalue()


def mutate(text: str, share: float, seed: int = 7) -> str:
    rng = random.Random(seed)
    lines = text.split("\r\n")
    for i in range(1, len(lines)):
        if lines[i] and rng.random() < share:
            cells = next(csv.reader([lines[i]]))
            cells[8] = str(int(cells[8]) + 1)
            if rng.random() < 0.5:
                cells[4] = cells[4] + " Renamed"
            buffer = io.StringIO()
            csv.writer(buffer, lineterminator="").writerow(cells)
            lines[i] = buffer.getvalue()
    return "\r\n".join(lines)


def run_backend(backend: str, text: str, changed: str, tmp: Path) -> dict:
    if backend == "sqlite":
        url = f"sqlite:///{tmp / 'bench-membership.db'}"
    else:
        url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/bench_membership_{uuid.uuid4().hex[:8]}"
        ensure_postgres_database(url)
    try:
        units = command_units({"DATABASE_URL": url, "OPERATOR": {"name": "bench"}})
        known = reference.load_establishment_types()
        figures = {}
        for label, body in (("import", text), ("reimport_unchanged", text), ("reimport_5pct_changed", changed)):
            before = _events(units)
            started = time.perf_counter()
            report = handlers.import_schools(units(), body, known_types=known, census_date=dt.date(2025, 1, 16),
                                             joined_on=dt.date(2025, 4, 1))
            seconds = time.perf_counter() - started
            figures[label] = {"seconds": round(seconds, 2), "joined": report.joined,
                              "details_changed": report.changed, "census_recorded": report.census_updated,
                              "unchanged": report.unchanged, "rejected": len(report.rejected),
                              "events": _events(units) - before}
            print(f"  {backend:10s} {label:22s} {seconds:6.2f} s  {figures[label]}", flush=True)
        with units.database.reader() as session:
            figures["members"] = session.execute(select(func.count()).select_from(members)).scalar()
        units.database.dispose()
        return figures
    finally:
        if backend == "postgresql":
            drop_postgres_database(url)


def _events(units) -> int:
    with units.database.reader() as session:
        return session.execute(select(func.count()).select_from(outbox)).scalar()


def run_http(backends: list[str], text: str) -> None:
    import json
    import urllib.request

    from tests import tokens
    from tests.conftest import Databases, Stack, Vhost

    host = Vhost()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for backend in backends:
                databases = Databases(backend, Path(tmp))
                stack = Stack(host.amqp_uri, databases, Path(tmp) / "logs").start("membership")
                try:
                    url = stack.url("membership") + "/imports/schools?joined_on=2025-04-01"
                    for label in ("import", "reimport_unchanged"):
                        started = time.perf_counter()
                        request = urllib.request.Request(url, data=text.encode(), method="POST",
                                                         headers={"Content-Type": "text/csv",
                                                                  **tokens.bearer(tokens.trust_staff())})
                        report = json.loads(urllib.request.urlopen(request, timeout=300).read())
                        print(f"  {backend:10s} http {label:17s} {time.perf_counter() - started:6.2f} s  "
                              f"joined {report['joined']}, unchanged {report['unchanged']}, "
                              f"rejected {report['rejected_count']}", flush=True)
                finally:
                    stack.stop_all()
                    databases.drop_all()
    finally:
        host.delete()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=24000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--via-http", action="store_true")
    args = parser.parse_args(argv)
    text = generate(args.rows)
    changed = mutate(text, 0.05)
    print(f"membership import benchmark: {args.rows} rows, {len(text) / 1e6:.1f} MB CSV (DfE column layout)")
    if args.via_http:
        run_http(args.backends.split(","), text)
        return
    with tempfile.TemporaryDirectory() as tmp:
        for backend in args.backends.split(","):
            run_backend(backend, text, changed, Path(tmp))


if __name__ == "__main__":
    main()
