"""Handler-level fixtures: scheduling's own database (migrated) on SQLite and on PostgreSQL, no broker."""
from __future__ import annotations

import os
import uuid

import pytest

from shared.db import Database, drop_postgres_database, ensure_postgres_database
from shared.unit_of_work import Origin, Producer, UnitsOfWork

from scheduling.adapters.tables import inbox, outbox
from scheduling.messages.published import PUBLISHED

PG_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    """Units of work on a freshly migrated scheduling database of each backend (`store.database`)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'scheduling.db'}"
    else:
        url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/t_scheduling_{uuid.uuid4().hex[:10]}"
        ensure_postgres_database(url)
    database = Database(url)
    database.upgrade("scheduling:migrations")
    producer = Producer(service="scheduling", operator="test-operator", schemas=PUBLISHED)
    uows = UnitsOfWork(database, producer, outbox, inbox, Origin(correlation_id="test"), lambda: None)
    uows.database = database
    yield uows
    database.dispose()
    if request.param == "postgresql":
        drop_postgres_database(url)
