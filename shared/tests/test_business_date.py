"""The business date is the UK's, whatever the server's clock or TZ says."""
import datetime as dt
import os
import time

import pytest

from shared import business_date

UTC = dt.timezone.utc


def test_between_midnight_and_one_in_summer_the_uk_date_is_already_tomorrow():
    # 30 June 2026 23:30 UTC is 1 July 00:30 BST: a notice date of 30 June has passed in the UK.
    assert business_date.today(lambda: dt.datetime(2026, 6, 30, 23, 30, tzinfo=UTC)) == dt.date(2026, 7, 1)


def test_in_winter_the_uk_date_is_the_utc_date():
    assert business_date.today(lambda: dt.datetime(2027, 1, 31, 23, 30, tzinfo=UTC)) == dt.date(2027, 1, 31)


def test_the_date_does_not_depend_on_the_process_time_zone():
    instant = dt.datetime(2026, 3, 29, 23, 15, tzinfo=UTC)   # 30 March 00:15 BST
    old = os.environ.get("TZ")
    try:
        os.environ["TZ"] = "America/Los_Angeles"
        time.tzset()
        assert business_date.today(lambda: instant) == dt.date(2026, 3, 30)
    finally:
        if old is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = old
        time.tzset()


def test_a_naive_clock_is_refused():
    with pytest.raises(ValueError, match="aware"):
        business_date.today(lambda: dt.datetime(2026, 6, 30, 23, 30))
