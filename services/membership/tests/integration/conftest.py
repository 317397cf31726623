"""A real SQLite database with the service's migrations and a unit of work as the service builds it."""
import json
import uuid

import pytest
from sqlalchemy import select

from membership.adapters.tables import inbox, outbox
from membership.messages.published import PUBLISHED
from shared.db import Database
from shared.unit_of_work import Origin, Producer, UnitOfWork


class Uows:
    def __init__(self, database):
        self.database = database
        self.producer = Producer(service="membership", operator="test-operator", schemas=PUBLISHED)

    def __call__(self):
        return UnitOfWork(self.database, self.producer, outbox, inbox, Origin(correlation_id=str(uuid.uuid4())))

    def read(self):
        return self.database.reader()

    def events(self, event_type=None):
        with self.database.reader() as session:
            rows = session.execute(select(outbox.c.event_type, outbox.c.body).order_by(outbox.c.id)).all()
        return [json.loads(b)["payload"] | {"_type": t} for t, b in rows if event_type in (None, t)]


@pytest.fixture
def uows(tmp_path):
    database = Database(f"sqlite:///{tmp_path / 'membership.db'}")
    database.upgrade("membership:migrations")
    yield Uows(database)
    database.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def stores(request, tmp_path):
    """The same units of work on SQLite and on a fresh PostgreSQL database (for rules that live in storage)."""
    import os

    from shared.db import drop_postgres_database, ensure_postgres_database

    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'membership.db'}"
    else:
        admin = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
        url = admin.rsplit("/", 1)[0] + f"/t_membership_{uuid.uuid4().hex[:10]}"
        ensure_postgres_database(url)
    database = Database(url)
    database.upgrade("membership:migrations")
    yield Uows(database)
    database.dispose()
    if request.param == "postgresql":
        drop_postgres_database(url)
