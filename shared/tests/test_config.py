"""events_settings: defaults, and values from YAML or `${VAR}` substitution made the right type once."""
from __future__ import annotations

import pytest

from shared.config import events_settings


def test_defaults_are_filled_in_with_their_types():
    settings = events_settings({})
    assert settings["retry_delays_ms"] == [1000, 5000, 30000]
    assert settings["delivery_limit"] == 20 and isinstance(settings["delivery_limit"], int)
    assert isinstance(settings["relay_linger_ms"], float) and settings["relay_linger_ms"] == 5.0


def test_strings_from_the_environment_become_numbers():
    settings = events_settings({"EVENTS": {"delivery_limit": "7", "retry_delays_ms": "100, 200",
                                           "relay_poll_seconds": "0.25", "relay_batch_size": 50}})
    assert settings["delivery_limit"] == 7
    assert settings["retry_delays_ms"] == [100, 200]
    assert settings["relay_poll_seconds"] == 0.25
    assert settings["relay_batch_size"] == 50


@pytest.mark.parametrize("key, value, expected", [
    ("delivery_limit", "twenty", "an integer"),
    ("relay_poll_seconds", None, "a number"),
    ("retry_delays_ms", ["1s"], "a list of whole milliseconds"),
])
def test_a_value_that_is_not_a_number_is_refused_by_name(key, value, expected):
    with pytest.raises(ValueError) as refused:
        events_settings({"EVENTS": {key: value}})
    assert f"EVENTS.{key} must be {expected}" in str(refused.value)
