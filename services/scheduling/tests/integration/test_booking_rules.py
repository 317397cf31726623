"""Rule 17 through the handlers and the store (SQLite and PostgreSQL): only a person who may commit the
school's spending books a paid place (learnt from `contact_role_changed`, newest role event first,
erasure final); one diary for network meetings, courses, peer reviews (and coaching sessions, see
test_coaching_store.py); a course's booking cut-off besides its cancellation cut-off."""
from __future__ import annotations

import datetime as dt

import pytest

from scheduling.domain.ordering import Position
from scheduling.domain.upstream import SLA, EditionPrice, Entitlement, Offering
from scheduling.messages.consumed import ContactErased, ContactRoleChanged, MemberJoined
from scheduling.service_layer import handlers

URN, OTHER = "330001", "330002"
DAY = dt.date(2026, 11, 5)  # a Thursday in the autumn term
TODAY = dt.date(2026, 10, 1)


def join(store, urn):
    handlers.record_member_joined(store(), MemberJoined().load({
        "urn": urn, "name": f"School {urn}", "phase": "primary", "mat": None, "postcode": "HP19 8AA",
        "establishment_type": "community", "local_authority": "Buckinghamshire", "number_on_roll": 200,
        "joined_on": "2025-01-06"}))


def role(store, contact_id, name, spends, sequence, urn=URN, active=True):
    handlers.record_contact(store(), ContactRoleChanged().load({
        "contact_id": contact_id, "urn": urn, "display_name": contact_id, "role": name,
        "may_commit_spending": spends, "active": active, "effective_date": "2026-01-05"}),
        Position(f"contact:{contact_id}", sequence))


def paid_course(store, code="SAFE-1", offering="GOV-SAFE"):
    handlers.record_offering(store(), Offering(offering, "Safeguarding", "governance", "standard"))
    handlers.record_edition_price(store(), EditionPrice(offering, 2026, "per_delegate", 9500, 15000))
    handlers.create_course(store(), {"course_code": code, "title": "Safeguarding refresher", "offering_code": offering})
    return handlers.add_session(store(), code, DAY, 10, 2)["session_id"]


def free_course(store, code="FREE-1", day=DAY, booking_cutoff=0):
    handlers.create_course(store(), {"course_code": code, "title": "Phonics", "offering_code": None,
                                     "service_area": "school_improvement", "vat_treatment": "standard"})
    return handlers.add_session(store(), code, day, 10, 2, booking_cutoff)["session_id"]


def refusal(call, *args):
    with pytest.raises(handlers.Refused) as caught:
        call(*args)
    return caught.value


@pytest.fixture
def school(store):
    join(store, URN)
    role(store, "c-head", "head_teacher", True, 1)
    role(store, "c-senco", "senco", False, 1)
    return store


class TestOnlyAPersonWhoMayCommitSpendingBooksAPaidPlace:
    def test_a_senco_is_refused_a_paid_place_and_the_head_gets_it(self, school):
        session_id = paid_course(school)
        refused = refusal(handlers.book, school(), session_id, URN, "c-senco", TODAY)
        assert refused.details == {"field": "contact_id", "rule": "may_commit_spending"}
        assert "may not commit school 330001's spending" in str(refused)
        assert handlers.book(school(), session_id, URN, "c-head", TODAY)["unit_price_pence"] == 15000

    def test_an_included_or_free_place_needs_no_authority(self, school):
        handlers.record_eligibility(school(), SLA("00000000-0000-4000-8000-000000330001", URN, "GOV-SAFE", "governance",
                                                  dt.date(2026, 9, 1), dt.date(2027, 8, 31),
                                                  (Entitlement("included_place", 1),)))
        placed = handlers.book(school(), paid_course(school), URN, "c-senco", TODAY)
        assert placed["price_basis"] == "included_place"
        free = free_course(school, day=DAY + dt.timedelta(days=1))
        assert handlers.book(school(), free, URN, "c-senco", TODAY)["price_basis"] == "free"

    def test_authority_is_the_newest_role_event_whatever_the_delivery_order(self, school):
        session_id = paid_course(school)
        role(school, "c-bm", "business_manager", False, 3)  # newer: no longer allowed to spend...
        role(school, "c-bm", "business_manager", True, 2)   # ...an older event arriving late changes nothing
        assert refusal(handlers.book, school(), session_id, URN, "c-bm", TODAY).details["rule"] == "may_commit_spending"

    def test_a_role_ended_takes_the_authority_with_it(self, school):
        role(school, "c-head", "head_teacher", True, 2, active=False)
        role(school, "c-head", "dsl", False, 3)
        assert refusal(handlers.book, school(), paid_course(school), URN, "c-head",
                       TODAY).details["rule"] == "may_commit_spending"

    def test_a_person_who_ended_one_role_still_books_in_the_role_they_keep(self, school):
        role(school, "c-head", "dsl", True, 2)
        role(school, "c-head", "dsl", False, 3, active=False)  # newest event: the DSL role ended
        assert handlers.book(school(), paid_course(school), URN, "c-head", TODAY)["status"] == "confirmed"

    def test_an_erased_person_books_nothing_and_no_late_role_brings_them_back(self, school):
        session_id = paid_course(school)
        handlers.erase_contact(school(), ContactErased().load({"contact_id": "c-head"}), Position("contact:c-head", 5))
        role(school, "c-head", "head_teacher", True, 4)
        assert refusal(handlers.book, school(), session_id, URN, "c-head", TODAY).details["rule"] == "contact_of_school"


class TestOneDiary:
    def test_a_course_place_on_a_network_meeting_day_is_refused_naming_the_meeting(self, school):
        join(school, OTHER)
        network = handlers.create_network(school(), "Aylesbury heads", [URN, OTHER], ["c-head"], None)
        meetings = handlers.plan_meetings(school(), network["network_id"], 2026)["meetings"]
        day = meetings[0]["date"]
        refused = refusal(handlers.book, school(), free_course(school, day=day), URN, "c-head", TODAY)
        assert refused.details == {"field": "contact_id", "rule": "double_booked"}
        assert f"person c-head is already booked on {day}: network meeting of Aylesbury heads" in str(refused)

    def test_a_network_meeting_is_never_put_on_a_day_a_member_person_is_on_a_course(self, school):
        join(school, OTHER)
        booked = {}
        for k in range(60):  # every open autumn day from 1 Sep: the meeting cannot fall in autumn then
            day = dt.date(2026, 9, 1) + dt.timedelta(days=k)
            if day.weekday() < 5:
                booked[day] = handlers.book(school(), free_course(school, f"C{k}", day), URN, "c-head", dt.date(2026, 8, 1))
        network = handlers.create_network(school(), "Aylesbury heads", [URN, OTHER], ["c-head"], None)
        meetings = handlers.plan_meetings(school(), network["network_id"], 2026)["meetings"]
        assert all(m["date"] not in booked for m in meetings)

    def test_a_course_place_on_a_peer_review_day_is_refused_and_a_cancelled_place_frees_the_day(self, school):
        third = "330003"
        join(school, OTHER)
        join(school, third)
        for urn in (URN, OTHER, third):
            handlers.record_eligibility(school(), SLA(f"00000000-0000-4000-8000-000000{urn}", urn, "PEER-REVIEW",
                                                      "school_improvement", dt.date(2026, 9, 1), dt.date(2027, 8, 31)))
            handlers.register_reviewer(school(), "c-head" if urn == URN else f"{urn}-1", urn, True, True, [],
                                       today=dt.date(2026, 7, 1))
            handlers.register_reviewer(school(), f"{urn}-2", urn, True, False, [], today=dt.date(2026, 7, 1))
        reviews = handlers.plan_cycle(school(), 2026, "PEER-REVIEW", 1, 2, 1.0)["reviews"]
        review = next(r for r in reviews if "c-head" in {m["reviewer_id"] for m in r["team"]})
        day = review["dates"][0]
        refused = refusal(handlers.book, school(), free_course(school, day=day), URN, "c-head", dt.date(2026, 8, 1))
        assert refused.details["rule"] == "double_booked"
        assert f"already booked on {day}: peer review of school {review['host_urn']}" in str(refused)
        other_day = free_course(school, "FREE-2", day=DAY if DAY != day else DAY + dt.timedelta(days=1))
        placed = handlers.book(school(), other_day, URN, "c-head", dt.date(2026, 8, 1))
        handlers.cancel_booking(school(), placed["booking_id"], dt.date(2026, 8, 2))
        assert handlers.book(school(), other_day, URN, "c-head", dt.date(2026, 8, 3))["status"] == "confirmed"


class TestBookingCutOff:
    def test_a_session_refuses_bookings_after_its_booking_cut_off(self, school):
        session_id = free_course(school, booking_cutoff=3)
        refused = refusal(handlers.book, school(), session_id, URN, "c-head", DAY - dt.timedelta(days=2))
        assert refused.details == {"field": "booked_on", "rule": "booking_cut_off"}
        assert "can be booked until 2026-11-02" in str(refused)
        placed = handlers.book(school(), session_id, URN, "c-head", DAY - dt.timedelta(days=3))
        assert placed["status"] == "confirmed"
        with school.read() as session:
            view = handlers.session_view(session, session_id)
        assert (view["booking_cutoff_days"], view["cutoff_days"]) == (3, 2)
