"""Catalogue renewal round at county-of-counties scale: 24,000 schools x 8 SLAs.

    .venv/bin/python -m bench.catalogue_renewal [--schools 24000] [--backend sqlite|postgresql|postgresql_green|all]

For each database: a fresh catalogue database (migrations applied), 24,000 member
schools (a mix of phases, maintained and academies), 8 offerings with 2026 editions
under every pricing model, and 8 SLAs per school bought for 2026 (loaded in bulk,
not timed). Then the timed part: the renewal round for 2027 exactly as
`POST /renewal-rounds` and the CLI run it (open the editions with a 3% uplift, renew
every SLA due, each renewal's `subscription_renewed` written to the outbox in the same
transaction). Checks the counts afterwards; prints and writes var/bench/catalogue_renewal.json.
Target: under 60 s on each database.

`postgresql` is the CLI's path (one COPY per chunk); `postgresql_green` runs the same round
with psycopg2 in green mode (a wait callback, as psycogreen sets inside the nameko service,
where COPY is refused), i.e. the `POST /renewal-rounds` path: multi-row INSERTs.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import tempfile
import time
import uuid
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa

from shared.db import drop_postgres_database, ensure_postgres_database

from catalogue.adapters.tables import editions, members, offerings, outbox, subscriptions
from catalogue.entrypoints.renewal_cli import units_of_work
from catalogue.service_layer import handlers

ROOT = Path(__file__).resolve().parents[1]
PG_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
TARGET_SECONDS = 60.0
PHASES = ["primary"] * 70 + ["secondary"] * 20 + ["special"] * 5 + ["all_through"] * 5
OFFERINGS = [
    ("SI-CORE", "school_improvement", {"model": "per_pupil", "base_fee_pence": 150000, "rate_by_phase": {
        "primary": "825", "secondary": "610", "special": "1200", "all_through": "700"},
        "minimum_pence": 200000, "maximum_pence": 900000}),
    ("SI-REVIEW", "school_improvement", {"model": "banded", "bands": [
        {"up_to_pupils": 150, "price_pence": 60000}, {"up_to_pupils": 400, "price_pence": 95000},
        {"up_to_pupils": None, "price_pence": 140000}]}),
    ("GOV-TRAIN", "governance", {"model": "flat", "flat_fee_pence": 95000}),
    ("GOV-CLERK", "governance", {"model": "per_session", "unit": "session", "unit_price_pence": 18500}),
    ("LD-COACH", "leadership_development", {"model": "per_session", "unit": "day", "unit_price_pence": 45000}),
    ("LD-NETWORK", "leadership_development", {"model": "per_delegate", "subscriber_price_pence": 9000,
                                              "non_subscriber_price_pence": 15000}),
    ("EYI-SEND", "early_years_and_inclusion", {"model": "per_pupil", "base_fee_pence": 50000, "rate_by_phase": {
        "primary": "120.5", "secondary": "95.25", "special": "300", "all_through": "110"}}),
    ("HR-BUNDLE", "hr_and_finance", {"model": "bundle", "bundle_price_pence": 250000,
                                     "includes": ["GOV-TRAIN", "GOV-CLERK"]}),
]
QUANTITY = {"GOV-CLERK": 6, "LD-COACH": 3, "LD-NETWORK": 4}


def load(uows, schools: int, rng: random.Random) -> None:
    """Members, offerings, 2026 editions and 8 SLAs per school, in bulk (not timed)."""
    with uows() as uow:
        session = uow.session
        session.execute(sa.insert(offerings), [
            {"code": code, "name": code.replace("-", " ").title(), "service_area": area, "provider": "bench",
             "vat_treatment": "standard", "eligible_phases": "", "description": "", "eligible_types": "",
             "capacity": None, "withdrawn_on": None} for code, area, _ in OFFERINGS])
        session.execute(sa.insert(editions), [
            {"offering_code": code, "year": 2026, "terms": terms, "on_sale": True,
             "entitlements": [{"kind": "included_place", "quantity": 2}]} for code, _, terms in OFFERINGS])
        member_rows, sub_rows = [], []
        for index in range(schools):
            urn = str(100000 + index)
            academy = rng.random() < 0.4
            phase = rng.choice(PHASES)
            roll = rng.randint(40, 1800 if phase != "primary" else 630)
            member_rows.append({
                "urn": urn, "name": f"School {urn}", "establishment_type": "academy_converter" if academy
                else "community", "phase": phase, "is_academy": academy,
                "mat_id": f"TR{index % 300:05d}" if academy else None,
                "mat_name": f"Trust {index % 300}" if academy else None, "number_on_roll": roll,
                "census_date": dt.date(2025, 10, 2), "status": "active", "joined_on": dt.date(2025, 1, 5)})
            start, end = ((dt.date(2026, 9, 1), dt.date(2027, 8, 31)) if academy
                          else (dt.date(2026, 4, 1), dt.date(2027, 3, 31)))
            for code, _, _ in OFFERINGS:
                sub_rows.append({
                    "id": str(uuid.uuid4()), "urn": urn, "offering_code": code, "edition_year": 2026,
                    "payer_type": "academy" if academy else "maintained", "period_start": start, "period_end": end,
                    "years": 1, "annual_price_pence": 100000, "breakdown": [{"label": "bench", "amount_pence": "100000"}],
                    "census_date": dt.date(2025, 10, 2), "number_on_roll": roll, "po_number": None,
                    "purchased_by_name": "bench", "purchased_by_role": "head_teacher",
                    "purchased_on": dt.date(2026, 3, 1), "status": "active", "quantity": QUANTITY.get(code, 1),
                    "entitlements": [], "purchased_by_contact_id": None, "continues_subscription_id": None,
                    "origin": "purchase", "auto_renew": True, "covered_until": end})
        for chunk in range(0, len(member_rows), 5000):
            session.execute(sa.insert(members), member_rows[chunk:chunk + 5000])
        for chunk in range(0, len(sub_rows), 10000):
            session.execute(sa.insert(subscriptions), sub_rows[chunk:chunk + 10000])
        uow.commit()


def count(uows, table, where=None) -> int:
    with uows.read() as session:
        query = sa.select(sa.func.count()).select_from(table)
        return session.execute(query.where(where) if where is not None else query).scalar_one()


def run(backend: str, schools: int) -> dict:
    rng = random.Random(2019)
    folder = None
    if backend == "postgresql_green":
        from psycopg2.extensions import set_wait_callback
        from psycopg2.extras import wait_select

        set_wait_callback(wait_select)
    if backend == "sqlite":
        folder = tempfile.TemporaryDirectory(prefix="catalogue-bench-")
        url = f"sqlite:///{folder.name}/catalogue.db"
    else:
        url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/bench_catalogue_{uuid.uuid4().hex[:8]}"
        ensure_postgres_database(url)
    uows = units_of_work(url, "bench-operator", correlation_id="bench-renewal-round")
    try:
        started = time.perf_counter()
        load(uows, schools, rng)
        loaded = time.perf_counter() - started
        started, cpu = time.perf_counter(), time.process_time()
        # after both notice dates (31 December, 31 May): one round renews maintained schools and academies
        summary = handlers.run_renewal_round(uows, year=2027, today=dt.date(2027, 6, 1),
                                             uplift_percent=Decimal("3"))
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        renewed_rows = count(uows, subscriptions, subscriptions.c.origin == "renewal")
        events = count(uows, outbox, outbox.c.event_type == "subscription_renewed")
        expected = schools * len(OFFERINGS)
        assert summary.renewed == renewed_rows == events == expected, (summary, renewed_rows, events)
        again = handlers.run_renewal_round(uows, year=2027, today=dt.date(2027, 6, 2))
        assert again.renewed == 0 and again.due == 0
        return {"backend": backend, "schools": schools, "slas": expected, "load_seconds": round(loaded, 1),
                "round_seconds": round(seconds, 2), "round_cpu_seconds_this_process": round(cpu, 2),
                "load_average_1m": os.getloadavg()[0], "renewed": summary.renewed,
                "events_in_outbox": events, "renewals_per_second": round(summary.renewed / seconds),
                "target_seconds": TARGET_SECONDS, "met": seconds < TARGET_SECONDS}
    finally:
        uows.database.dispose()
        if backend == "postgresql_green":
            from psycopg2.extensions import set_wait_callback

            set_wait_callback(None)
        if folder is not None:
            folder.cleanup()
        else:
            drop_postgres_database(url)


def main() -> None:
    parser = argparse.ArgumentParser(description="catalogue renewal round benchmark")
    parser.add_argument("--schools", type=int, default=24000)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "postgresql_green", "all"), default="all")
    args = parser.parse_args()
    backends = ("sqlite", "postgresql", "postgresql_green") if args.backend == "all" else (args.backend,)
    results = []
    for backend in backends:
        result = run(backend, args.schools)
        results.append(result)
        print(f"{backend:<16} {result['slas']:>7,} SLAs renewed in {result['round_seconds']:>6.2f} s "
              f"({result['renewals_per_second']:,}/s, {result['events_in_outbox']:,} events in the outbox; "
              f"target < {TARGET_SECONDS:.0f} s: {'met' if result['met'] else 'MISSED'}; "
              f"{result['round_cpu_seconds_this_process']} s CPU in this process; "
              f"machine load {result['load_average_1m']:.1f} on {os.cpu_count()} cores)",
              flush=True)
    out = ROOT / "var" / "bench" / "catalogue_renewal.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
