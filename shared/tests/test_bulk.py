"""shared.bulk stores exactly what a Core insert of the same values stores, on SQLite and PostgreSQL.

The awkward values are the point: NULL beside an empty string, booleans, tabs, newlines,
backslashes and quotes in text, non-ASCII text, dates before year 1000, timestamps with and
without microseconds, integers beyond 32 bits, and JSON columns given Python values (as a Core
insert is given them): nested lists and dicts, None (JSON null, as Core stores it), a bare string.
The PostgreSQL case runs COPY (this test is not under eventlet) and, with a wait callback set as
psycogreen sets one, multi-row INSERTs.
"""
from __future__ import annotations

import datetime as dt
import gc
import json

import pytest
import sqlalchemy as sa

from shared import bulk
from shared.db import scratch_database


metadata = sa.MetaData()
things = sa.Table(
    "things", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("source", sa.String(10), nullable=False),
    sa.Column("label", sa.String(200)),
    sa.Column("note", sa.Text),
    sa.Column("flag", sa.Boolean),
    sa.Column("day", sa.Date),
    sa.Column("moment", sa.DateTime),
    sa.Column("pence", sa.BigInteger),
    sa.Column("details", sa.JSON),
)
COLUMNS = ("id", "source", "label", "note", "flag", "day", "moment", "pence", "details")
AWKWARD = [
    ("", None, True, dt.date(2026, 9, 1), dt.datetime(2026, 11, 22, 15, 0, 0), 0,
     [{"label": "base fee", "amount_pence": "150000"}, {"label": "tab\there", "amount_pence": "-1.5"}]),
    (None, "", False, dt.date(999, 1, 31), dt.datetime(2026, 11, 22, 15, 0, 0, 7), -(2**40), None),
    ("tab\there", "line\nbreak\r\nand \\N and \\ backslash", None, None, None, 2**62,
     {"note": "line\nbreak \\N \\ back", "n": [1, 2.5, None, True], "empty": {}}),
    ('"quoted", comma', "O'Brien – £1,000 ✓", True, dt.date(2024, 2, 29), dt.datetime(1999, 12, 31, 23, 59, 59, 999999),
     None, "O'Brien – £1,000 ✓ \"quoted\""),
]


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, tmp_path):
    with scratch_database(request.param, tmp_path, "shared_bulk") as db:
        metadata.create_all(db.engine)
        yield db


def _stored(database, source: str) -> list[tuple]:
    with database.reader() as session:
        rows = session.execute(sa.select(things).where(things.c.source == source).order_by(things.c.id))
        return [tuple(row)[2:] for row in rows]


def _write_both(database, write_bulk) -> None:
    bulk_rows = [(i, "bulk", *values) for i, values in enumerate(AWKWARD)]
    core_rows = [dict(zip(COLUMNS, (100 + i, "core", *values))) for i, values in enumerate(AWKWARD)]
    with database.transaction() as session:
        assert write_bulk(session, bulk_rows) == len(AWKWARD)
        session.execute(sa.insert(things), core_rows)
        session.commit()


def test_insert_rows_stores_what_core_stores(database):
    _write_both(database, lambda session, rows: bulk.insert_rows(session, things, COLUMNS, rows))
    assert _stored(database, "bulk") == _stored(database, "core") == [tuple(values) for values in AWKWARD]
    # the stored text itself, not only what reads back: dates on SQLite, and JSON (not JSON text inside JSON)
    dates = ", day, moment" if database.engine.dialect.name == "sqlite" else ""
    with database.reader() as session:
        raw = session.connection().exec_driver_sql(
            f"SELECT source, CAST(details AS TEXT){dates} FROM things ORDER BY id").fetchall()
    assert [r[1:] for r in raw if r[0] == "bulk"] == [r[1:] for r in raw if r[0] == "core"]
    assert [json.loads(r[1]) for r in raw if r[0] == "bulk"] == [values[-1] for values in AWKWARD]


def test_insert_dicts_is_insert_rows_by_key(database):
    _write_both(database, lambda session, rows: bulk.insert_dicts(session, things, [dict(zip(COLUMNS, r)) for r in rows]))
    assert _stored(database, "bulk") == _stored(database, "core")


def test_green_connections_get_multi_row_inserts(tmp_path):
    """The wait callback only changes PostgreSQL's path: COPY is refused under psycogreen."""
    from psycopg2.extensions import get_wait_callback, set_wait_callback
    from psycopg2.extras import wait_select

    with scratch_database("postgresql", tmp_path, "shared_bulk_green") as database:
        metadata.create_all(database.engine)
        set_wait_callback(wait_select)  # what psycogreen installs; COPY would raise with it
        try:
            _write_both(database, lambda session, rows: bulk.insert_rows(session, things, COLUMNS, rows))
        finally:
            set_wait_callback(None)
        assert get_wait_callback() is None
        assert _stored(database, "bulk") == _stored(database, "core")


def test_nothing_to_insert_is_a_no_op(database):
    with database.transaction() as session:
        assert bulk.insert_rows(session, things, COLUMNS, []) == 0
        assert bulk.insert_dicts(session, things, []) == 0
    assert _stored(database, "bulk") == []


def test_a_failed_bulk_insert_leaves_nothing_behind(database):
    rows = [(1, "bulk", *AWKWARD[0]), (1, "bulk", *AWKWARD[1])]  # the same primary key twice
    with pytest.raises(sa.exc.IntegrityError):
        with database.transaction() as session:
            bulk.insert_rows(session, things, COLUMNS, rows)
            session.commit()
    assert _stored(database, "bulk") == []


@pytest.mark.parametrize("enabled_before", [True, False])
def test_a_bulk_run_pauses_the_cyclic_collector_and_restores_it(enabled_before):
    was = gc.isenabled()
    try:
        (gc.enable if enabled_before else gc.disable)()
        with bulk.cyclic_gc_paused():
            assert not gc.isenabled()
        assert gc.isenabled() is enabled_before
        with pytest.raises(RuntimeError), bulk.cyclic_gc_paused():
            raise RuntimeError("the run failed")
        assert gc.isenabled() is enabled_before
    finally:
        (gc.enable if was else gc.disable)()
