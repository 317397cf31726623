"""Settings for every test folder (shared/, deploy/ops/, services/*, tests/).

Hypothesis's `deadline` and its "input generation is slow" health check are wall-clock
assertions; tests here never assert times (speed is measured by `make bench`), and on a
2-core machine running brokers and services beside the suite they only fail at random.
"""
import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("partnership", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("partnership")


# With `make test`'s two workers (pytest-xdist, `--dist loadgroup`), these run one after another on one
# worker: each stops or restarts brokers or databases, starts a cluster or containers, or loads the
# 2-core machine on purpose (a burst, a soak); two of them at once would measure each other.
SERIAL = ("tests/reliability/", "tests/operations/test_compose.py", "tests/operations/test_backup.py",
          "tests/e2e/test_county_year_replicas.py", "tests/handover/test_drill.py")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.nodeid.startswith(SERIAL):
            item.add_marker(pytest.mark.xdist_group("serial"))
