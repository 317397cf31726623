"""The catalogue's request schemas load into the typed commands its use cases take."""
from __future__ import annotations

import datetime as dt

import pytest
from marshmallow import ValidationError

from catalogue.entrypoints import service
from catalogue.service_layer import commands


def test_an_offering_loads_with_its_first_edition_typed():
    loaded = service.PublishOffering().load({
        "code": "SI-CORE", "name": "Core offer", "service_area": "school_improvement", "vat_treatment": "standard",
        "eligible_phases": ["primary"], "edition": {"year": 2026, "terms": {"model": "flat", "flat_fee_pence": 100},
                                                    "entitlements": [{"kind": "advice_call", "quantity": 2}]}})
    assert isinstance(loaded, commands.PublishOffering)
    assert loaded.eligible_phases == ("primary",) and loaded.description == "" and loaded.capacity is None
    assert isinstance(loaded.edition, commands.PriceEdition)
    assert (loaded.edition.year, loaded.edition.on_sale) == (2026, True)
    assert loaded.edition.entitlements == ({"kind": "advice_call", "quantity": 2},)


def test_a_purchase_loads_with_its_defaults_and_no_buyer_until_the_entrypoint_names_one():
    loaded = service.BuySubscription().load({"urn": "100001", "offering_code": "SI-CORE", "edition_year": 2026})
    assert loaded == commands.BuySubscription(urn="100001", offering_code="SI-CORE", edition_year=2026)
    assert (loaded.years, loaded.quantity, loaded.renew, loaded.contact_id) == (1, 1, False, None)


def test_a_quote_query_and_a_cancellation_load_typed():
    assert service.QuoteQuery().load({"urn": "100001", "offering_code": "X", "edition_year": "2026"}) == \
        commands.Quote(urn="100001", offering_code="X", edition_year=2026)
    assert service.Cancel().load({"reason": "budget", "effective_date": "2026-09-01"}) == \
        commands.CancelSubscription(reason="budget", effective_date=dt.date(2026, 9, 1))
    assert service.ConfirmRenewal().load({}) == commands.ConfirmRenewal()


def test_a_bad_field_is_still_refused_by_name():
    with pytest.raises(ValidationError) as refused:
        service.BuySubscription().load({"urn": "1", "offering_code": "SI-CORE", "edition_year": 2026})
    assert set(refused.value.messages) == {"urn"}
