"""scheduling.domain.model: eligibility for an offering's sessions, from an SLA's period."""
import dataclasses
import datetime as dt
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st
from marshmallow import ValidationError

from scheduling.domain.model import Eligibility, eligibility_from_subscription
from scheduling.domain.upstream import SLA
from scheduling.messages.consumed import SubscriptionStarted

PAYLOAD = {
    "subscription_id": "6b0f3c1e-8a43-4a8e-9a55-0f6f0f1b2c3d", "urn": "110394",
    "school_name": "Haddenham Community Infant School", "offering_code": "SI-CORE",
    "service_area": "school_improvement", "period_start": "2026-04-01", "period_end": "2027-03-31",
    "annual_price_pence": 291900,  # a field scheduling does not read: excluded by its schema
}


def loaded(**overrides) -> SLA:
    """A `subscription_started` payload as scheduling's consumer schema loads it."""
    return SubscriptionStarted().load({**PAYLOAD, **overrides})


class TestEligibilityFromSubscription:
    def test_copies_the_school_offering_and_period(self):
        eligibility = eligibility_from_subscription(loaded())
        assert eligibility == Eligibility(urn="110394", offering_code="SI-CORE", service_area="school_improvement",
                                          period_start=dt.date(2026, 4, 1), period_end=dt.date(2027, 3, 31),
                                          subscription_id="6b0f3c1e-8a43-4a8e-9a55-0f6f0f1b2c3d")

    def test_subscription_id_is_kept_as_a_string(self):
        subscription_id = uuid.UUID(PAYLOAD["subscription_id"])
        eligibility = eligibility_from_subscription(dataclasses.replace(loaded(), subscription_id=subscription_id))
        assert eligibility.subscription_id == PAYLOAD["subscription_id"]

    def test_fields_scheduling_does_not_read_are_ignored(self):
        assert not hasattr(loaded(), "annual_price_pence")
        eligibility_from_subscription(loaded())

    def test_a_payload_missing_a_field_it_needs_fails_loudly(self):
        payload = {k: v for k, v in PAYLOAD.items() if k != "offering_code"}
        with pytest.raises(ValidationError) as refused:
            SubscriptionStarted().load(payload)
        assert "offering_code" in refused.value.messages

    def test_loads_a_frozen_fact(self):
        with pytest.raises(dataclasses.FrozenInstanceError):
            loaded().urn = "999999"

    def test_eligibility_is_immutable(self):
        eligibility = eligibility_from_subscription(loaded())
        with pytest.raises(AttributeError):
            eligibility.period_end = dt.date(2030, 1, 1)


class TestCovers:
    ELIGIBILITY = eligibility_from_subscription(loaded())

    @pytest.mark.parametrize("day", [dt.date(2026, 4, 1), dt.date(2026, 11, 15), dt.date(2027, 3, 31)])
    def test_covers_every_day_of_the_period_including_both_ends(self, day):
        assert self.ELIGIBILITY.covers(day)

    @pytest.mark.parametrize("day", [dt.date(2026, 3, 31), dt.date(2027, 4, 1), dt.date(2020, 1, 1)])
    def test_does_not_cover_days_outside_the_period(self, day):
        assert not self.ELIGIBILITY.covers(day)

    def test_a_one_day_period_covers_that_day_only(self):
        eligibility = eligibility_from_subscription(loaded(period_start="2026-09-01", period_end="2026-09-01"))
        assert eligibility.covers(dt.date(2026, 9, 1))
        assert not eligibility.covers(dt.date(2026, 8, 31)) and not eligibility.covers(dt.date(2026, 9, 2))

    @given(start=st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2090, 1, 1)),
           length=st.integers(min_value=0, max_value=3 * 366),
           day=st.dates(min_value=dt.date(1999, 1, 1), max_value=dt.date(2095, 1, 1)))
    def test_covers_exactly_the_days_from_start_to_end(self, start, length, day):
        end = start + dt.timedelta(days=length)
        eligibility = eligibility_from_subscription(loaded(period_start=start.isoformat(),
                                                           period_end=end.isoformat()))
        assert eligibility.covers(day) == (start <= day <= end)
