"""Who may book: a school is a member up to the day before the date it leaves or converts from, which
membership announces in advance (found by tests/e2e/test_county_year.py: a school that had given notice
was refused a place at a session weeks before it left)."""
from __future__ import annotations

import datetime as dt

from scheduling.service_layer.handlers import _member_on

KNOWN = {"details_sequence": 2, "lifecycle_sequence": 5}
LEAVING = {"urn": "240006", "active": False, "closed_on": dt.date(2027, 1, 1), **KNOWN}


def test_a_school_that_has_given_notice_may_book_a_session_before_it_leaves():
    assert _member_on(LEAVING, dt.date(2026, 12, 3))
    assert _member_on(LEAVING, dt.date(2026, 12, 31))


def test_not_a_session_on_or_after_the_day_it_leaves():
    assert not _member_on(LEAVING, dt.date(2027, 1, 1))
    assert not _member_on({**LEAVING, "closed_on": "2027-01-01"}, dt.date(2027, 1, 14))


def test_an_open_school_may_book_and_an_unknown_or_closed_one_may_not():
    assert _member_on({"urn": "1", "active": True, "closed_on": None, **KNOWN}, dt.date(2030, 1, 1))
    assert not _member_on(None, dt.date(2026, 12, 3))
    assert not _member_on({"urn": "1", "active": False, "closed_on": None, **KNOWN}, dt.date(2026, 12, 3))


def test_a_partial_copy_is_no_member_even_before_a_leaving_date_it_knows():
    # `member_left` arrived before `member_joined`: the leaving date is known, the school's details not yet
    assert not _member_on({**LEAVING, "details_sequence": None}, dt.date(2026, 12, 3))
    # `member_details_changed` arrived first: details known, membership not yet
    assert not _member_on({"urn": "1", "active": False, "closed_on": None, "details_sequence": 2,
                           "lifecycle_sequence": None}, dt.date(2026, 12, 3))
