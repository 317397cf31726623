"""Settings for every test folder (shared/, deploy/ops/, services/*, tests/).

Hypothesis's `deadline` and its "input generation is slow" health check are wall-clock
assertions; tests here never assert times (speed is measured by `make bench`), and on a
2-core machine running brokers and services beside the suite they only fail at random.
"""
from hypothesis import HealthCheck, settings

settings.register_profile("partnership", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("partnership")
