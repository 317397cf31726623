"""Rules 5 and 6, scheduling's side, through the handlers and the store (SQLite and PostgreSQL).

5: a bundle gives the cover of each included offering as if bought separately (`components` of
`subscription_started` / `_renewed`; missing or empty: not a bundle): peer-review eligibility and
course entitlements, cut by the bundle's own ending.
6: a per-delegate SLA with quantity N gives N places that scheduling counts: the first N bookings are
not charged (billing charged the SLA), the N+1th is."""
from __future__ import annotations

import datetime as dt
import uuid

from scheduling.adapters import repository as repo
from scheduling.domain.ordering import Position
from scheduling.domain.upstream import EditionPrice, Offering
from scheduling.messages.consumed import (ContactRoleChanged, MemberJoined, SubscriptionCancelled,
                                          SubscriptionStarted)
from scheduling.service_layer import handlers

URN = "350001"
DAY = dt.date(2026, 11, 5)
TODAY = dt.date(2026, 10, 1)


def setup_school(store, people=3):
    handlers.record_member_joined(store(), MemberJoined().load({
        "urn": URN, "name": "School", "phase": "primary", "mat": None, "postcode": "HP19 8AA",
        "establishment_type": "community", "local_authority": "Buckinghamshire", "number_on_roll": 200,
        "joined_on": "2025-01-06"}))
    for k in range(people):
        handlers.record_contact(store(), ContactRoleChanged().load({
            "contact_id": f"c-{k}", "urn": URN, "display_name": f"P{k}", "role": "head_teacher" if k == 0 else "teacher",
            "may_commit_spending": True, "active": True, "effective_date": "2026-01-05"}), Position(f"contact:c-{k}", 1))


MISSING = object()


def sla(store, offering, components=MISSING, quantity=1, edition_year=2026, **extra):
    payload = {"subscription_id": str(uuid.uuid4()), "urn": URN, "offering_code": offering,
               "service_area": "governance", "period_start": "2026-09-01", "period_end": "2027-08-31",
               "entitlements": [], "continues_subscription_id": None, "quantity": quantity,
               "edition_year": edition_year, "school_name": "School", **extra}
    if components is not MISSING:
        payload["components"] = components
    fact = SubscriptionStarted().load(payload)
    handlers.record_eligibility(store(), fact)
    return fact


def component(code, places=0):
    return {"offering_code": code, "offering_name": code, "service_area": "governance", "vat_treatment": "standard",
            "entitlements": [{"kind": "included_place", "quantity": places}] if places else [],
            "annual_price_pence": 50000}


def course_session(store, offering, model="per_delegate", day=DAY, code=None):
    handlers.record_offering(store(), Offering(offering, offering, "governance", "standard"))
    handlers.record_edition_price(store(), EditionPrice(offering, 2026, model, 9500, 15000))
    code = code or f"C-{offering}-{day.isoformat()}"
    handlers.create_course(store(), {"course_code": code, "title": "Course", "offering_code": offering})
    return handlers.add_session(store(), code, day, 10, 2)["session_id"]


def prices(store, session_id, people, on=TODAY):
    return [(b["price_basis"], b["unit_price_pence"])
            for b in (handlers.book(store(), session_id, URN, person, on) for person in people)]


class TestBundleGivesEachComponentsCover:
    def test_a_bundle_including_peer_review_makes_the_school_a_peer_review_subscriber(self, store):
        setup_school(store)
        sla(store, "LEAD-BUNDLE", [component("PEER-REVIEW"), component("GOV-SAFE")])
        with store.read() as session:
            assert repo.subscribed_urns(session, "PEER-REVIEW", dt.date(2026, 9, 1), dt.date(2027, 8, 31)) == {URN}
            shown = repo.eligibility_of(session, URN)[0]
        assert [c["offering_code"] for c in shown["components"]] == ["GOV-SAFE", "PEER-REVIEW"]

    def test_a_components_included_places_count_as_if_bought_separately(self, store):
        setup_school(store)
        sla(store, "LEAD-BUNDLE", [component("GOV-SAFE", places=1)])
        session_id = course_session(store, "GOV-SAFE", model="per_delegate")
        assert prices(store, session_id, ["c-0", "c-1"]) == [("included_place", 0), ("subscriber", 9500)]

    def test_the_bundles_ending_ends_its_components_cover(self, store):
        setup_school(store)
        bundle = sla(store, "LEAD-BUNDLE", [component("PEER-REVIEW")])
        handlers.end_eligibility(store(), SubscriptionCancelled().load({
            "subscription_id": bundle.subscription_id, "urn": URN, "cancelled_on": "2026-06-01",
            "effective_date": "2026-09-01", "reason": "cancelled"}))
        with store.read() as session:
            assert repo.subscribed_urns(session, "PEER-REVIEW", dt.date(2026, 9, 1), dt.date(2027, 8, 31)) == set()

    def test_missing_null_or_empty_components_is_not_a_bundle(self, store):
        setup_school(store)
        for components in (MISSING, [], None):
            assert sla(store, "GOV-SAFE", components).components == ()
        with store.read() as session:
            assert repo.subscribed_urns(session, "PEER-REVIEW", dt.date(2026, 9, 1), dt.date(2027, 8, 31)) == set()


class TestPerDelegatePlaces:
    def test_a_per_delegate_sla_of_quantity_two_gives_two_places_and_the_third_is_charged(self, store):
        setup_school(store)
        sla(store, "GOV-SAFE", quantity=2)
        session_id = course_session(store, "GOV-SAFE", model="per_delegate")
        assert prices(store, session_id, ["c-0", "c-1", "c-2"]) == [
            ("included_place", 0), ("included_place", 0), ("subscriber", 9500)]

    def test_the_quantity_of_an_sla_of_another_model_gives_no_places(self, store):
        setup_school(store)
        sla(store, "GOV-SAFE", quantity=2)
        session_id = course_session(store, "GOV-SAFE", model="per_session")
        assert prices(store, session_id, ["c-0"]) == [("subscriber", 9500)]


class TestDelegatePlacesCarriedAtConversion:
    def test_the_academys_carried_sla_keeps_only_the_delegate_places_not_yet_used(self, store):
        setup_school(store)
        old = sla(store, "GOV-SAFE", quantity=2)
        session_id = course_session(store, "GOV-SAFE", model="per_delegate")
        assert prices(store, session_id, ["c-0"]) == [("included_place", 0)]
        # the agreement carried on from 1 January (same URN here: the rule is the count), the old one ended
        handlers.end_eligibility(store(), SubscriptionCancelled().load({
            "subscription_id": old.subscription_id, "urn": URN, "effective_date": "2027-01-01", "reason": "converted"}))
        sla(store, "GOV-SAFE", quantity=2, continues_subscription_id=old.subscription_id, period_start="2027-01-01")
        later = course_session(store, "GOV-SAFE", model="per_delegate", day=dt.date(2027, 2, 4))
        assert prices(store, later, ["c-1", "c-2"], on=dt.date(2027, 1, 20)) == [
            ("included_place", 0), ("subscriber", 9500)]
