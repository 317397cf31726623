"""membership's refusals declare their kind, so `shared.http` answers them as in every service
(a refusal that lost its kind would answer 500)."""
from __future__ import annotations

import importlib

import pytest

from shared.http import Refusal, answer_for


@pytest.mark.parametrize("module, name, status", [
    ("membership.domain.model", "MembershipRuleBroken", 422),
    ("membership.domain.model", "AlreadyMember", 409),
    ("membership.domain.model", "NotAMember", 404),
])
def test_each_refusal_answers_by_the_one_table(module, name, status):
    cls = getattr(importlib.import_module(module), name)
    exc = cls.__new__(cls)
    Exception.__init__(exc, "refused")
    assert isinstance(exc, Refusal)
    assert answer_for(exc).status == status
