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


class TestProductionSettings:
    """A production service refuses development defaults, naming every missing setting."""

    FULL = {"PARTNERSHIP_ENV": "production", "OPERATOR_NAME": "bucks", "OPERATOR_LEGAL_NAME": "Bucks Learning Trust",
            "AMQP_URI": "amqp://billing:secret@rabbit:5672/", "DATABASE_URL": "postgresql://billing@db/billing",
            "AUTH_ISSUER": "https://login.microsoftonline.com/tenant/v2.0", "AUTH_AUDIENCE": "api://partnership",
            "METRICS_TOKEN_FILE": "/run/secrets/metrics-token"}

    def test_development_checks_nothing(self):
        from shared.config import check_production_settings

        check_production_settings("billing", ("OPERATOR_VAT_NUMBER",), environ={})

    def test_production_names_each_missing_setting(self):
        import pytest

        from shared.config import MissingSettings, check_production_settings

        environ = {"PARTNERSHIP_ENV": "production", "OPERATOR_NAME": "bucks"}
        with pytest.raises(MissingSettings) as refused:
            check_production_settings("billing", ("OPERATOR_VAT_NUMBER",), environ=environ)
        message = str(refused.value)
        for name in ("OPERATOR_LEGAL_NAME", "AMQP_URI", "DATABASE_URL", "OPERATOR_VAT_NUMBER", "AUTH_ISSUER",
                     "AUTH_AUDIENCE", "METRICS_TOKEN"):
            assert name in message
        assert "OPERATOR_NAME," not in message and message.startswith("billing refuses to start in production")

    def test_production_refuses_the_guest_account(self):
        import pytest

        from shared.config import MissingSettings, check_production_settings

        environ = {**self.FULL, "AMQP_URI": "amqp://guest:guest@rabbit:5672/"}
        with pytest.raises(MissingSettings, match="guest"):
            check_production_settings("catalogue", environ=environ)

    def test_production_refuses_the_development_token_issuer(self):
        import pytest

        from shared.auth import DEVELOPMENT_ISSUER
        from shared.config import MissingSettings, check_production_settings

        for extra, refusal in (({"AUTH_DEVELOPMENT": "1"}, "AUTH_DEVELOPMENT"),
                               ({"AUTH_ISSUER": DEVELOPMENT_ISSUER}, "development issuer")):
            with pytest.raises(MissingSettings, match=refusal):
                check_production_settings("membership", environ={**self.FULL, **extra})

    def test_production_with_every_setting_starts(self):
        from shared.config import check_production_settings

        check_production_settings("billing", ("OPERATOR_VAT_NUMBER",), environ={**self.FULL, "OPERATOR_VAT_NUMBER": "GB1"})

    def test_an_unknown_environment_is_refused(self):
        import pytest

        from shared.config import MissingSettings, environment

        with pytest.raises(MissingSettings, match="PARTNERSHIP_ENV"):
            environment({"PARTNERSHIP_ENV": "prod"})
