"""catalogue's refusals declare their kind, so `shared.http` answers them as in every service
(a refusal that lost its kind would answer 500)."""
from __future__ import annotations

import importlib

import pytest

from shared.http import Refusal, answer_for


@pytest.mark.parametrize("module, name, status", [
    ("catalogue.domain.model", "CatalogueRuleBroken", 422),
    ("catalogue.domain.model", "NotAllowed", 422),
    ("catalogue.domain.model", "Overlapping", 409),
    ("catalogue.domain.model", "OverCapacity", 409),
    ("catalogue.domain.model", "Conflicting", 409),
    ("catalogue.domain.pricing", "PricingError", 422),
])
def test_each_refusal_answers_by_the_one_table(module, name, status):
    cls = getattr(importlib.import_module(module), name)
    exc = cls.__new__(cls)
    Exception.__init__(exc, "refused")
    assert isinstance(exc, Refusal)
    assert answer_for(exc).status == status


@pytest.mark.parametrize("name, field", [("UnknownOffering", "offering_code"),
                                         ("UnknownSubscription", "subscription_id")])
def test_unknown_things_are_a_404_naming_the_field(name, field):
    from catalogue.service_layer import handlers

    answer = answer_for(getattr(handlers, name)("X1"))
    assert (answer.status, answer.details) == (404, {"field": field})
    assert answer.message.endswith("X1")
