"""The soak's two-minute variant (`make soak` runs ten minutes): the same seeded load, chaos and checker
(tests/reliability/soak.py) on a three-node RabbitMQ cluster and a PostgreSQL cluster of its own, with
two replicas of every service. Every count the checker prints must be 0: nothing lost, nothing applied
twice, nothing unexpected; and every kind of chaos happened at least once."""
from __future__ import annotations

import os

import pytest

from tests.reliability import soak

pytestmark = pytest.mark.outage

MINUTES = float(os.environ.get("SOAK_TEST_MINUTES", "2"))
REPLICAS = int(os.environ.get("SOAK_TEST_REPLICAS", "2"))


@pytest.mark.timeout(900)
def test_a_short_soak_under_chaos_loses_duplicates_and_invents_nothing(tmp_path):
    report = soak.run(minutes=MINUTES, seed=17, replicas=REPLICAS, chaos_interval=(10.0, 20.0),
                      log_dir=tmp_path / "logs")
    soak.print_report(report)
    assert report["totals"] == {"lost": 0, "duplicated": 0, "unexpected": 0}, report
    assert set(report["chaos"]) == set(soak.Chaos.KINDS) and not report["chaos_errors"], report["chaos_errors"]
    assert report["load_error_count"] == 0, report["load_errors"]
    assert report["events_applied"] > 0 and report["operations"] > 0
