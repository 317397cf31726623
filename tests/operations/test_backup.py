"""Backup and restore, per service, as the README's "Backing up and restoring" tells an operator to.

The services run as processes on the real broker. Their databases are filled through their HTTP
APIs (the first flow: a school joins, its head buys an SLA, billing charges it, scheduling makes it
eligible), backed up while the services run (`python -m deploy.backup dump`), restored into EMPTY
databases (`restore`), and the services started again on the restored databases must give the same
answers from their APIs, and go on working (a new school's events flow from the restored outbox).
"""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from deploy.backup import BackupError, restore
from shared.db import drop_postgres_database
from tests import factories
from tests.conftest import ROOT, Databases, eventually, http_json
from tests.operations.flow import first_flow

SERVICES = ("membership", "catalogue", "billing", "scheduling")


def backup_cli(*args: str) -> dict:
    result = subprocess.run([sys.executable, "-m", "deploy.backup", *args], cwd=ROOT, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def answers(stack, facts: dict) -> dict:
    """What each service says about the flow, through its own API."""
    urn = facts["urn"]
    asked = {
        "membership": [f"/members/{urn}", f"/members/{urn}/contacts", f"/members/{urn}/history"],
        "catalogue": [f"/members/{urn}", f"/subscriptions/{facts['subscription']}", f"/offerings/{facts['offering']}"],
        "billing": [f"/charges?urn={urn}", "/reports/sustainability?as_of=2026-06-01",
                    "/reports/aged-debt?as_of=2026-06-01"],
        "scheduling": [f"/schools/{urn}"],
    }
    found = {}
    for service, paths in asked.items():
        if service not in stack.processes:
            continue
        for path in paths:
            status, body = http_json("GET", f"{stack.url(service)}{path}")
            assert status == 200, (service, path, status, body)
            found[f"{service} {path}"] = body
    return found


@pytest.fixture
def postgres_databases(tmp_path):
    """Dropped after the stacks stop (requested before stack_factory, so torn down after it)."""
    databases = Databases("postgresql", tmp_path)
    yield databases
    databases.drop_all()


@pytest.mark.timeout(600)
def test_each_service_restored_from_pg_dump_into_an_empty_database_answers_the_same(postgres_databases,
                                                                                     stack_factory, tmp_path):
    databases = postgres_databases
    stack = stack_factory(databases).start(*SERVICES)
    facts = first_flow(stack)
    before = answers(stack, facts)

    # Backed up while the services run: pg_dump takes one consistent snapshot.
    backups = {}
    for service in SERVICES:
        out = tmp_path / "backups" / f"{service}.pgdump"
        listed = backup_cli("dump", "--database-url", stack.database_urls[service], "--out", str(out))
        assert {"outbox", "inbox", "alembic_version"} <= set(listed["tables"]), listed
        backups[service] = out
    stack.stop_all()
    for service in SERVICES:  # the originals are gone: only the backups remain
        drop_postgres_database(stack.database_urls[service])

    restored = stack_factory(databases)
    for service in SERVICES:
        empty = databases.url(service)  # a new, empty database, as the operator creates it
        tables = backup_cli("restore", "--database-url", empty, "--from", str(backups[service]))["restored"]
        assert "alembic_version" in tables
        restored.database_urls[service] = empty
        with pytest.raises(BackupError, match="not empty"):
            restore(empty, backups[service])  # never over a database that holds anything
    restored.start(*SERVICES)

    assert answers(restored, facts) == before
    # and they go on working: a new school's events leave the restored membership and reach the others
    newcomer = factories.school()
    assert http_json("POST", f"{restored.url('membership')}/members", newcomer)[0] == 201
    eventually(lambda: http_json("GET", f"{restored.url('catalogue')}/members/{newcomer['urn']}")[0] == 200,
               message="catalogue learning of a school that joined after the restore", timeout=60)
    eventually(lambda: http_json("GET", f"{restored.url('scheduling')}/schools/{newcomer['urn']}")[0] == 200,
               message="scheduling learning of it", timeout=60)


@pytest.mark.timeout(300)
def test_a_sqlite_service_backed_up_online_and_restored_answers_the_same(stack_factory, sqlite_databases, tmp_path):
    stack = stack_factory(sqlite_databases).start("membership")
    school = factories.school()
    assert http_json("POST", f"{stack.url('membership')}/members", school)[0] == 201
    before = {path: http_json("GET", f"{stack.url('membership')}{path}")
              for path in (f"/members/{school['urn']}", f"/members/{school['urn']}/history", "/members")}

    out = tmp_path / "membership.sqlite3"
    listed = backup_cli("dump", "--database-url", stack.database_urls["membership"], "--out", str(out))
    assert {"members", "outbox", "inbox", "alembic_version"} <= set(listed["tables"])
    assert backup_cli("verify", "--from", str(out))["tables"] == listed["tables"]
    stack.stop_all()

    restored = stack_factory(sqlite_databases)
    target = sqlite_databases.url("membership")
    backup_cli("restore", "--database-url", target, "--from", str(out))
    restored.database_urls["membership"] = target
    restored.start("membership")
    after = {path: http_json("GET", f"{restored.url('membership')}{path}") for path in before}
    assert after == before
    with pytest.raises(BackupError, match="not empty"):
        restore(target, out)
