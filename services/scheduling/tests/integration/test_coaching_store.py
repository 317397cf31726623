"""Rule 16 through the handlers and the store (SQLite and PostgreSQL): pairs and sessions are stored and
published, a maximum matching is kept across calls, and a coaching session keeps the one diary."""
from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from scheduling.adapters import tables
from scheduling.messages.consumed import MemberJoined
from scheduling.service_layer import handlers

SCHOOLS = {"340001": "secondary", "340002": "primary", "340003": "all_through", "340004": "primary",
           "340005": "secondary", "340006": "secondary"}
TODAY = dt.date(2026, 9, 14)
DAY = dt.date(2026, 10, 7)  # a Wednesday in term


@pytest.fixture
def county(store):
    for urn, phase in SCHOOLS.items():
        handlers.record_member_joined(store(), MemberJoined().load({
            "urn": urn, "name": f"School {urn}", "phase": phase, "mat": None, "postcode": "HP19 8AA",
            "establishment_type": "community", "local_authority": "Buckinghamshire", "number_on_roll": 200,
            "joined_on": "2025-01-06"}))
    return store


MENTORS = [{"mentor_id": "MS", "urn": "340001", "phase": "secondary", "strengths": [], "capacity": 1},
           {"mentor_id": "MP", "urn": "340002", "phase": "primary", "strengths": [], "capacity": 1},
           {"mentor_id": "MA", "urn": "340003", "phase": "all_through", "strengths": ["x"], "capacity": 1}]
LEADERS = [{"leader_id": "L1", "urn": "340004", "phase": "primary", "needs": ["x"]},
           {"leader_id": "L2", "urn": "340005", "phase": "secondary", "needs": []},
           {"leader_id": "L3", "urn": "340006", "phase": "secondary", "needs": []}]


def outbox(store, event_type):
    with store.read() as session:
        rows = session.execute(sa.select(tables.outbox).where(tables.outbox.c.event_type == event_type)).all()
    return rows


def test_the_issues_example_stores_and_publishes_three_pairs(county):
    formed = handlers.form_coaching_pairs(county(), MENTORS, LEADERS, TODAY)
    assert formed["unmatched"] == [] and len(formed["pairs"]) == 3
    assert len(outbox(county, "coaching_pair_formed")) == 3
    with county.read() as session:
        stored = handlers.coaching_pair_view(session, formed["pairs"][0]["pair_id"])
    assert stored["status"] == "active" and stored["sessions"] == []


def test_pairs_already_formed_count_against_capacity_and_leaders_are_not_paired_twice(county):
    handlers.form_coaching_pairs(county(), MENTORS[1:2], LEADERS[:1], TODAY)  # L1 with MP
    again = handlers.form_coaching_pairs(county(), MENTORS, LEADERS, TODAY)
    assert "L1: already paired with mentor MP" in again["unmatched"]
    assert {p["leader_id"] for p in again["pairs"]} == {"L2", "L3"} and "MP" not in {p["mentor_id"] for p in again["pairs"]}


def test_a_coaching_session_is_stored_published_and_keeps_the_one_diary(county):
    pair = handlers.form_coaching_pairs(county(), MENTORS, LEADERS[:1], TODAY)["pairs"][0]
    booked = handlers.book_coaching_session(county(), pair["pair_id"], DAY, TODAY)
    assert booked["date"] == DAY and len(outbox(county, "coaching_session_booked")) == 1
    with pytest.raises(handlers.Refused) as refused:
        handlers.book_coaching_session(county(), pair["pair_id"], DAY, TODAY)
    assert refused.value.details == {"field": "date", "rule": "double_booked"}
    assert f"person {pair['mentor_id']} is already booked on {DAY}: coaching session of mentor {pair['mentor_id']} with L1" in str(refused.value)
    # the same diary refuses a course place for the leader that day
    handlers.create_course(county(), {"course_code": "C1", "title": "Phonics", "offering_code": None,
                                      "service_area": "school_improvement", "vat_treatment": "standard"})
    sid = handlers.add_session(county(), "C1", DAY, 10, 2)["session_id"]
    with county() as uow:
        uow.session.execute(tables.contacts.insert().values(contact_id="L1", urn="340004", display_name="L",
                                                            role="deputy_head", active=True, erased=False))
        uow.commit()
    with pytest.raises(handlers.Refused) as refused:
        handlers.book(county(), sid, "340004", "L1", TODAY)
    assert refused.value.details["rule"] == "double_booked" and "coaching session" in str(refused.value)


def test_a_coaching_session_falls_on_an_open_day(county):
    pair = handlers.form_coaching_pairs(county(), MENTORS, LEADERS[:1], TODAY)["pairs"][0]
    with pytest.raises(handlers.Refused) as refused:
        handlers.book_coaching_session(county(), pair["pair_id"], dt.date(2026, 10, 28), TODAY)  # half term
    assert refused.value.details == {"field": "date", "rule": "open_day"}
