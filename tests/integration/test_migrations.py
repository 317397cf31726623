"""Migrations before a rollout: a job applies them, replicas never race, a service refuses a stale schema."""
import threading
import time
import types

import pytest
import sqlalchemy as sa

from shared.db import Database
from partnership_ops.ops import main as ops_main
from shared.storage import SchemaNotAtHead, Storage
from tests.conftest import Databases

MIGRATIONS = "membership:migrations"


@pytest.fixture
def postgres_databases(tmp_path):
    dbs = Databases("postgresql", tmp_path)
    yield dbs
    dbs.drop_all()


def test_partnership_ops_migrate_brings_an_empty_database_to_head_and_is_idempotent(databases, capsys):
    url = databases.url("membership")
    assert ops_main(["migrate", "--service", "membership", "--database-url", url]) == 0
    database = Database(url)
    try:
        current, head = database.revisions(MIGRATIONS)
        assert current == head and head is not None
        assert ops_main(["migrate", "--service", "membership", "--database-url", url]) == 0
        assert database.revisions(MIGRATIONS) == (head, head)
    finally:
        database.dispose()
    assert '"to": "%s"' % head in capsys.readouterr().out


def test_migrate_without_a_database_is_refused_clearly(monkeypatch, capsys):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert ops_main(["migrate", "--service", "billing"]) == 2
    assert "no database" in capsys.readouterr().err


def _storage_on(url: str, migrate_on_start: str) -> Storage:
    storage = Storage(migrations=MIGRATIONS, published=None)
    # Storage.setup reads only these from its container; a nameko container is not needed to check it.
    storage.container = types.SimpleNamespace(
        service_name="membership",
        config={"DATABASE_URL": url, "AMQP_URI": "amqp://nowhere:1/", "MIGRATE_ON_START": migrate_on_start,
                "OPERATOR": {"name": "test-trust"}})
    return storage


def test_a_service_that_does_not_migrate_refuses_a_schema_behind_its_code(sqlite_databases):
    url = sqlite_databases.url("membership")
    with pytest.raises(SchemaNotAtHead, match="partnership-ops migrate --service membership"):
        _storage_on(url, "false").setup()
    assert ops_main(["migrate", "--service", "membership", "--database-url", url]) == 0
    storage = _storage_on(url, "false")
    storage.setup()  # at head now: it starts
    storage.database.dispose()


def test_a_second_migration_on_postgresql_waits_for_the_first_instead_of_racing(postgres_databases):
    url = postgres_databases.url("membership")
    holder = sa.create_engine(url)
    migrating = Database(url)
    errors = []
    try:
        with holder.connect() as connection:
            transaction = connection.begin()
            # What a first replica holds while it migrates.
            connection.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:name))"),
                               {"name": f"alembic:{MIGRATIONS}"})

            def second_replica():
                try:
                    migrating.upgrade(MIGRATIONS)
                except Exception as exc:  # noqa: BLE001 - asserted below
                    errors.append(exc)

            thread = threading.Thread(target=second_replica)
            thread.start()
            deadline = time.monotonic() + 30
            waiting = 0
            pause = threading.Event()
            while time.monotonic() < deadline and not waiting:
                pause.wait(0.05)
                waiting = connection.execute(sa.text(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")).scalar_one()
            assert waiting == 1, "the second migration should be waiting on the advisory lock"
            assert connection.execute(sa.text("SELECT to_regclass('alembic_version')")).scalar_one() is None
            transaction.commit()
        thread.join(timeout=60)
        assert not thread.is_alive() and errors == []
        current, head = migrating.revisions(MIGRATIONS)
        assert current == head
    finally:
        migrating.dispose()
        holder.dispose()
