"""SQLite's lock timeout counts from when a writer asked for its transaction: writers queued in the
process behind one that timed out do not each wait the whole timeout again."""
from __future__ import annotations

import sqlite3
import threading
import time

from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from shared.db import Database
from shared.failures import is_transient


def test_queued_writers_share_one_lock_timeout_instead_of_waiting_it_in_turn(tmp_path):
    path = tmp_path / "locked.db"
    database = Database(f"sqlite:///{path}", lock_timeout=1.0)
    with database.transaction() as session:
        session.execute(text("CREATE TABLE t (x INTEGER)"))
        session.commit()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another process's lock, as far as the database can tell
    outcomes: list[BaseException | str] = []

    def write() -> None:
        try:
            with database.transaction() as session:
                session.execute(text("INSERT INTO t VALUES (1)"))
                session.commit()
            outcomes.append("written")
        except Exception as exc:  # noqa: BLE001 - asserted below
            outcomes.append(exc)

    writers = [threading.Thread(target=write) for _ in range(4)]
    started = time.monotonic()
    try:
        for writer in writers:
            writer.start()
        for writer in writers:
            writer.join(30)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    elapsed = time.monotonic() - started
    assert len(outcomes) == 4
    assert all(isinstance(o, OperationalError) and "database is locked" in str(o) for o in outcomes), outcomes
    assert all(is_transient(o) for o in outcomes)
    assert elapsed < 2.5, f"{elapsed:.1f} s: the writers waited the 1 s timeout one after another"
    # once the lock is gone, writing works at once
    write()
    assert outcomes[-1] == "written"
    database.dispose()
