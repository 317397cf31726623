"""scheduling.service_layer.handlers.record_eligibility on a real SQLite database: an SLA carried on at
academy conversion is the same agreement, so included places used before the conversion are not granted
again (found by tests/e2e/test_county_year.py: the academy got a second free place); a renewal is a new
term with fresh entitlements."""
from __future__ import annotations

import datetime as dt
import uuid

import pytest

from scheduling.adapters import repository as repo
from scheduling.adapters.tables import bookings, inbox, outbox
from scheduling.messages.consumed import SubscriptionRenewed, SubscriptionStarted
from scheduling.messages.published import PUBLISHED
from scheduling.service_layer import handlers
from shared.db import Database
from shared.unit_of_work import Origin, Producer, UnitsOfWork


@pytest.fixture
def uows(tmp_path):
    database = Database(f"sqlite:///{tmp_path / 'scheduling.db'}")
    database.upgrade("scheduling:migrations")
    yield UnitsOfWork(database, Producer("scheduling", "test-operator", PUBLISHED), outbox, inbox,
                      Origin(correlation_id="test"), lambda: None)
    database.dispose()


def sla(urn, start, end, places, continues=None, schema=SubscriptionStarted):
    return schema().load({
        "subscription_id": str(uuid.uuid4()), "urn": urn, "offering_code": "DSL", "service_area": "governance",
        "period_start": start, "period_end": end, "entitlements": [{"kind": "included_place", "quantity": places}],
        "continues_subscription_id": continues})  # the SLA fact, as the entrypoint hands it over


def use_included_place(uows, subscription_id, urn):
    with uows() as uow:
        uow.session.execute(bookings.insert().values(
            booking_id=str(uuid.uuid4()), session_id=str(uuid.uuid4()), urn=urn, contact_id=str(uuid.uuid4()),
            status="confirmed", position=1, price_basis="included_place", unit_price_pence=0,
            subscription_id=subscription_id, booked_on=dt.date(2026, 10, 1)))
        uow.commit()


def places(uows, subscription_id):
    with uows() as uow:
        return repo.eligibility_row(uow.session, subscription_id)["included_places"]


def test_an_sla_moved_at_conversion_keeps_only_the_included_places_not_yet_used(uows):
    old = sla("240005", "2026-04-01", "2027-03-31", 2)
    handlers.record_eligibility(uows(), old)
    use_included_place(uows, old.subscription_id, "240005")
    moved = sla("340005", "2027-01-01", "2027-03-31", 2, continues=old.subscription_id)
    handlers.record_eligibility(uows(), moved)
    assert places(uows, moved.subscription_id) == 1


def test_every_place_used_leaves_none_for_the_academy(uows):
    old = sla("240006", "2026-04-01", "2027-03-31", 1)
    handlers.record_eligibility(uows(), old)
    use_included_place(uows, old.subscription_id, "240006")
    moved = sla("340006", "2027-01-01", "2027-03-31", 1, continues=old.subscription_id)
    handlers.record_eligibility(uows(), moved)
    assert places(uows, moved.subscription_id) == 0


def test_a_renewal_is_a_new_term_with_its_full_entitlement(uows):
    old = sla("240007", "2026-04-01", "2027-03-31", 1)
    handlers.record_eligibility(uows(), old)
    use_included_place(uows, old.subscription_id, "240007")
    renewed = sla("240007", "2027-04-01", "2028-03-31", 1, continues=old.subscription_id,
                  schema=SubscriptionRenewed)
    handlers.record_eligibility(uows(), renewed, renewal=True)
    assert places(uows, renewed.subscription_id) == 1


def test_a_new_purchase_gets_its_full_entitlement(uows):
    bought = sla("240008", "2026-04-01", "2027-03-31", 2)
    handlers.record_eligibility(uows(), bought)
    assert places(uows, bought.subscription_id) == 2
