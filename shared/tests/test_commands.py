"""A `CommandSchema` loads into its frozen dataclass, after (and only after) validating."""
from __future__ import annotations

import dataclasses

import pytest
from marshmallow import ValidationError, fields, validate

from shared.commands import CommandSchema


@dataclasses.dataclass(frozen=True)
class Enrol:
    urn: str
    phases: tuple[str, ...]
    note: str | None = None


class EnrolSchema(CommandSchema):
    command = Enrol
    urn = fields.String(required=True, validate=validate.Length(equal=6))
    phases = fields.List(fields.String(), load_default=list)


class PlainSchema(CommandSchema):
    urn = fields.String(required=True)


def test_a_load_is_the_command_with_lists_as_tuples():
    loaded = EnrolSchema().load({"urn": "100001", "phases": ["primary"]})
    assert loaded == Enrol(urn="100001", phases=("primary",))
    with pytest.raises(dataclasses.FrozenInstanceError):
        loaded.urn = "100002"


def test_a_bad_field_is_refused_by_name_before_any_command_is_built():
    with pytest.raises(ValidationError) as refused:
        EnrolSchema().load({"urn": "1"})
    assert set(refused.value.messages) == {"urn"}


def test_without_a_command_it_loads_a_dict():
    assert PlainSchema().load({"urn": "100001"}) == {"urn": "100001"}
