"""Bulk inserts below SQLAlchemy's per-row work, for national-scale runs (renewal rounds, billing runs).

`insert_rows` writes many rows of Python values (dates, datetimes, ints, strings, booleans,
None, and for a JSON column what a Core insert is given: lists, dicts, ...) in the session's
transaction and stores exactly what a Core `insert()` of the same values would store:

- SQLite: the driver's `executemany`, each value converted by its column type's own
  SQLAlchemy bind processor (a date in ISO form by `date.isoformat`, the same text, checked
  on a probe date). What it skips is Core's per-row parameter bookkeeping, which was a third
  of a national billing run.
- PostgreSQL: one `COPY ... FROM STDIN` (text format). Under eventlet (psycogreen's wait callback)
  psycopg2 refuses COPY, so a green service gets multi-row INSERTs (`execute_values`) instead.
  A JSON column's value is serialised by its type's own bind processor first, as on SQLite
  (COPY would otherwise write Python's repr of a list).

So a JSON column is given the value, never text already serialised: that would be stored, as
by Core, as a JSON string holding the text.

Rows are tuples in `columns` order (`insert_dicts` takes dicts of one shape). Nothing is
validated beyond what the database itself enforces: these are for rows a run has built,
not for input. `cyclic_gc_paused()` is for the loop that builds them.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import gc
import io
from operator import itemgetter
from typing import Sequence

from sqlalchemy import JSON, Date
from sqlalchemy.exc import DBAPIError

SQLITE_CHUNK = 5000
_PROBE_DATE = dt.date(2026, 3, 9)


@contextlib.contextmanager
def cyclic_gc_paused():
    """Python's cyclic garbage collector paused for a bulk operation, resumed after it (if it ran before).

    A national run holds hundreds of thousands of rows, payloads and envelopes until it
    commits, and the collector rescanned them again and again: an eighth of a billing run's
    time, a fifteenth of a renewal round's. Bulk runs make no reference cycles, so reference
    counting still frees everything as it goes."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def insert_dicts(session, table, rows: Sequence[dict]) -> int:
    """`insert_rows` for dicts that all have the keys of the first (a missing key raises KeyError)."""
    if not rows:
        return 0
    columns = tuple(rows[0])
    getter = itemgetter(*columns)
    values = [getter(row) for row in rows] if len(columns) > 1 else [(getter(row),) for row in rows]
    return insert_rows(session, table, columns, values)


def insert_rows(session, table, columns: Sequence[str], rows: Sequence[Sequence]) -> int:
    """Insert `rows` (tuples in `columns` order) into `table` in the session's transaction; returns the count."""
    if not rows:
        return 0
    connection = session.connection()
    dialect = connection.dialect
    quote = dialect.identifier_preparer.quote
    names = ", ".join(quote(name) for name in columns)
    target = f"{quote(table.name)} ({names})"
    if dialect.name == "postgresql":
        # JSON only: psycopg2 (execute_values) and COPY's text form take every other value as it is
        converters = [(i, _bind_processor(table.c[name].type, dialect)) for i, name in enumerate(columns)
                      if isinstance(table.c[name].type, JSON)]
        if converters:
            rows = [_converted(row, converters) for row in rows]
        _postgres(connection.connection.dbapi_connection, target, rows)
    else:
        converters = [(i, processor) for i, processor in
                      enumerate(_bind_processor(table.c[name].type, dialect) for name in columns)
                      if processor is not None]
        sql = f"INSERT INTO {target} VALUES ({', '.join('?' * len(columns))})"
        for start in range(0, len(rows), SQLITE_CHUNK):
            chunk = rows[start:start + SQLITE_CHUNK]
            if converters:
                chunk = [_converted(row, converters) for row in chunk]
            connection.exec_driver_sql(sql, chunk)
    return len(rows)


def _converted(row: Sequence, converters) -> tuple:
    out = list(row)
    for i, processor in converters:
        out[i] = processor(out[i])
    return tuple(out)


def _bind_processor(column_type, dialect):
    processor = column_type.dialect_impl(dialect).bind_processor(dialect)
    if processor is not None and isinstance(column_type, Date) and processor(_PROBE_DATE) == _PROBE_DATE.isoformat():
        date = dt.date

        def iso_date(value):
            return value.isoformat() if type(value) is date else processor(value)
        return iso_date
    return processor


# COPY's text format: tab-separated, \N for NULL, backslash escapes in text.
_TEXT_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_text(value) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, str):
        return value.translate(_TEXT_ESCAPES)
    if value is True or value is False:
        return "t" if value else "f"
    if isinstance(value, dt.date):  # and datetime: ISO 8601, which PostgreSQL reads for both
        return value.isoformat()
    return str(value)


def _postgres(dbapi_connection, target: str, rows: Sequence[Sequence]) -> None:
    import psycopg2
    from psycopg2.extensions import get_wait_callback
    from psycopg2.extras import execute_values

    cursor = dbapi_connection.cursor()
    statement = f"COPY {target} FROM STDIN"
    try:
        if get_wait_callback() is None:
            buffer = io.StringIO()
            buffer.writelines("\t".join(map(_copy_text, row)) + "\n" for row in rows)
            buffer.seek(0)
            cursor.copy_expert(statement, buffer)
        else:
            statement = f"INSERT INTO {target} VALUES %s"
            execute_values(cursor, statement, rows, page_size=1000)
    except psycopg2.Error as exc:
        # The same exception a Core insert raises (a duplicate key is sqlalchemy's IntegrityError).
        raise DBAPIError.instance(statement, None, exc, psycopg2.Error) from None
    finally:
        cursor.close()
