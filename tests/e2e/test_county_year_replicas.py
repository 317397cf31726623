"""The county's year (test_county_year) with TWO replicas of every service on PostgreSQL, every request
sent to the next replica in turn: the same invoices, totals and gap-free numbers as with one, every
event published once and applied once. Then the same while one replica of each service is SIGKILLed
in the middle of the purchases' events and started again: nothing lost and nothing applied twice
(an event may reach the broker twice, when a relay died between publishing and recording it; each
consumer's inbox absorbs that, and the invoices show it)."""
from __future__ import annotations

import pytest

from tests.conftest import Databases
from tests.e2e.steps import Observer
from tests.e2e.test_county_year import COUNTY_SETTINGS, county_year

SERVICES = ("membership", "catalogue", "billing", "scheduling")


@pytest.fixture
def pg_databases(tmp_path):
    dbs = Databases("postgresql", tmp_path)
    yield dbs
    dbs.drop_all()


@pytest.mark.timeout(420)
# The SIGKILL variant runs in `make test`; the plain one (which also checks that no event was published
# twice) in `make test-replicas`, to keep `make test` under its 30 minutes. Both replicas' relays sharing
# one outbox without a duplicate is also checked in `make test` by tests/reliability/test_relay_replicas.py.
@pytest.mark.parametrize("kill", [pytest.param(False, marks=pytest.mark.long, id="two-replicas"),
                                  pytest.param(True, id="one-of-each-killed-and-restarted")])
def test_a_county_year_on_two_replicas_of_every_service(stack_factory, pg_databases, amqp_uri, kill):
    observer = Observer(amqp_uri)
    stack = stack_factory(pg_databases, COUNTY_SETTINGS).start(replicas=2)

    def kill_and_restart():
        for name in SERVICES:
            stack.kill_replica(name, 1)
        for name in SERVICES:
            stack.restart_replica(name, 1, wait=False)
        for name in SERVICES:
            stack.replicas[name][1].wait_ready(90)

    county_year(stack, observer, midstream=kill_and_restart if kill else (lambda: None), republished=kill)
    assert all(len(stack.replicas[name]) == 2 and all(p.alive() for p in stack.replicas[name]) for name in SERVICES)
