"""A conversion recorded before its date, through the handlers and the repository on SQLite (no
broker): the planner's view treats the two URNs as one school either side of the date, and a
booking follows the school on the session's day."""
from __future__ import annotations

import datetime as dt

import pytest

from shared.db import Database
from shared.unit_of_work import Origin, Producer, UnitsOfWork

from scheduling.adapters import repository as repo
from scheduling.adapters.tables import inbox, outbox
from scheduling.messages.consumed import ContactRoleChanged, MemberJoined, SchoolConvertedToAcademy
from scheduling.messages.published import PUBLISHED
from scheduling.service_layer import handlers

OLD, NEW, HOST = "310001", "310901", "310002"
CONVERSION = dt.date(2027, 1, 4)
MAT = {"id": "TR01234", "name": "Great Learners Trust"}


@pytest.fixture
def uows(tmp_path):
    database = Database(f"sqlite:///{tmp_path / 'scheduling.db'}")
    database.upgrade("scheduling:migrations")
    producer = Producer(service="scheduling", operator="test-operator", schemas=PUBLISHED)
    yield UnitsOfWork(database, producer, outbox, inbox, Origin(correlation_id="test"), lambda: None)
    database.dispose()


CONVERSION_EVENT = SchoolConvertedToAcademy().load({
    "conversion_date": CONVERSION.isoformat(), "predecessor": {"urn": OLD, "dfe_number": "825/2001", "name": "School"},
    "successor": {"urn": NEW, "dfe_number": "825/4001", "name": "Academy", "establishment_type": "academy_converter",
                  "phase": "primary", "local_authority": "Buckinghamshire", "postcode": "HP19 8AA",
                  "number_on_roll": 200, "census_date": "2026-10-01"},
    "mat": MAT})


def join(uows, urn, mat=None):
    handlers.record_member_joined(uows(), MemberJoined().load({
        "urn": urn, "name": f"School {urn}", "phase": "primary", "mat": mat, "postcode": "HP19 8AA",
        "establishment_type": "community" if mat is None else "academy_converter",
        "local_authority": "Buckinghamshire", "number_on_roll": 200, "joined_on": "2026-01-05"}))


def test_the_planners_view_is_one_school_either_side_of_a_future_conversion_date(uows):
    join(uows, OLD)
    join(uows, HOST, MAT)
    handlers.set_inset_days(uows(), OLD, 2026, [dt.date(2026, 11, 20)])
    handlers.record_conversion(uows(), CONVERSION_EVENT)
    with uows.read() as session:
        problem = repo.review_problem(session, 2026, [HOST], 2, 2)
    old, new = problem.schools[OLD], problem.schools[NEW]
    assert old.is_open(dt.date(2026, 12, 16)) and not old.is_open(CONVERSION)
    assert new.is_open(dt.date(2026, 12, 16)) and new.is_open(CONVERSION)
    assert not new.is_open(dt.date(2026, 11, 20))  # the maintained school's INSET day, before the date
    assert (new.mat_on(dt.date(2026, 12, 16)), new.mat_on(CONVERSION)) == (None, MAT["id"])
    assert OLD in new.same_school and NEW in old.same_school


def test_people_book_for_the_maintained_school_before_the_date_and_the_academy_from_it(uows):
    join(uows, OLD)
    handlers.record_contact(uows(), ContactRoleChanged().load({
        "contact_id": "c-head", "urn": OLD, "display_name": "Head", "role": "head_teacher",
        "may_commit_spending": True, "active": True, "effective_date": "2026-01-05"}))
    handlers.record_conversion(uows(), CONVERSION_EVENT)
    handlers.create_course(uows(), {"course_code": "C1", "title": "Phonics", "offering_code": None,
                                        "service_area": "school_improvement", "vat_treatment": "standard"})
    before = handlers.add_session(uows(), "C1", dt.date(2026, 12, 16), 10, 2)
    after = handlers.add_session(uows(), "C1", dt.date(2027, 1, 13), 10, 2)
    today = dt.date(2026, 11, 2)
    assert handlers.book(uows(), before["session_id"], OLD, "c-head", today)["status"] == "confirmed"
    with pytest.raises(handlers.Refused) as refused:
        handlers.book(uows(), before["session_id"], NEW, "c-head", today)
    assert refused.value.details == {"field": "urn", "rule": "member_school"}  # the academy is not open yet
    assert handlers.book(uows(), after["session_id"], NEW, "c-head", today)["status"] == "confirmed"
    with pytest.raises(handlers.Refused) as refused:
        handlers.book(uows(), after["session_id"], OLD, "c-head", today)
    assert refused.value.details == {"field": "urn", "rule": "member_school"}  # converted by then
