"""Bounded numeric fields: bounds required, finite values only, no more places than allowed."""
from __future__ import annotations

from decimal import Decimal

import pytest
from marshmallow import Schema, ValidationError, fields

from shared.fields import MAX_PENCE, BoundedDecimal, BoundedFloat, BoundedInteger, Pence, unbounded_numbers


class Price(Schema):
    rate = BoundedDecimal(minimum=0, maximum=10_000, max_places=4)
    pence = Pence()
    ratio = BoundedFloat(minimum=0.5, maximum=120)
    count = BoundedInteger(minimum=1, maximum=10, strict=True)


def refusal(data: dict) -> dict:
    with pytest.raises(ValidationError) as caught:
        Price().load(data)
    return caught.value.messages


class TestBoundedNumbers:
    @pytest.mark.parametrize("rate", ["1e999999", "1E+400", 1e300, "10000.0001"])
    def test_a_huge_decimal_is_refused_naming_the_field_and_the_bounds(self, rate):
        assert refusal({"rate": rate}) == {"rate": ["Must be greater than or equal to 0 and less than or equal to "
                                                    "10000."]}

    @pytest.mark.parametrize("rate", ["NaN", "Infinity", "-Infinity", "sNaN", float("inf"), float("nan")])
    def test_nan_and_infinities_are_refused(self, rate):
        assert list(refusal({"rate": rate})) == ["rate"]

    @pytest.mark.parametrize("rate", ["1e-999999", "0.00001"])
    def test_more_places_than_allowed_are_refused_not_rounded(self, rate):
        assert refusal({"rate": rate}) == {"rate": ["at most 4 decimal places"]}

    def test_a_decimal_in_bounds_loads_exactly(self):
        assert Price().load({"rate": "825.5"}) == {"rate": Decimal("825.5")}
        assert Price().load({"rate": 0.1}) == {"rate": Decimal("0.1")}  # through str(), never the float's expansion

    def test_pence_are_whole_strict_and_within_max_pence(self):
        assert Price().load({"pence": MAX_PENCE}) == {"pence": MAX_PENCE}
        assert list(refusal({"pence": MAX_PENCE + 1})) == ["pence"]
        assert list(refusal({"pence": 10 ** 30})) == ["pence"]
        assert list(refusal({"pence": -1})) == ["pence"]
        assert list(refusal({"pence": 1.5})) == ["pence"]
        assert list(refusal({"pence": "150"})) == ["pence"]

    def test_floats_and_integers_keep_their_bounds(self):
        assert list(refusal({"ratio": float("inf")})) == ["ratio"]
        assert list(refusal({"ratio": 1e308})) == ["ratio"]
        assert list(refusal({"count": 11})) == ["count"]

    def test_a_bound_cannot_be_left_out(self):
        with pytest.raises(TypeError, match="both a minimum and a maximum"):
            BoundedInteger(minimum=0, maximum=None)


class TestUnboundedNumbers:
    def test_finds_bare_numbers_in_nested_lists_and_dict_values(self):
        class Inner(Schema):
            ok = Pence()
            bare = fields.Integer()

        class Outer(Schema):
            items = fields.List(fields.Nested(Inner))
            rates = fields.Dict(keys=fields.String(), values=fields.Decimal())
            fine = BoundedDecimal(minimum=0, maximum=1)

        assert unbounded_numbers(Outer()) == ["items[].bare", "rates{}"]
