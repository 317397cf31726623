"""Numeric request fields that always have bounds and only ever hold finite values.

Every number a service takes over HTTP is one of these (a test walks each service's request
schemas and fails on a bare `fields.Integer`, `fields.Float` or `fields.Decimal`), because an
unbounded number is accepted by marshmallow and then breaks something later: a per-pupil rate
of `1e999999` passed validation and raised in rounding (a 500); `10**30` pence overflows a
BIGINT column. Guarantees:
- a lower and an upper bound are required; a value outside them is refused naming the field
  and the bounds (marshmallow's `Range` message);
- NaN and infinities are refused, whatever their spelling;
- `BoundedDecimal` refuses more decimal places than it allows (so `1e-999999` cannot reach
  the arithmetic either) and never goes through a float;
- `Pence` is a whole number of pence within `MAX_PENCE` unless told otherwise.
"""
from __future__ import annotations

import decimal

from marshmallow import fields, validate

# £10,000,000,000: far above any invoice, payment or price a trust handles, far below what
# a BIGINT column or exact integer arithmetic would find awkward.
MAX_PENCE = 1_000_000_000_000


def _with_range(kwargs: dict, minimum, maximum, error: str | None) -> dict:
    if minimum is None or maximum is None:
        raise TypeError("a bounded number needs both a minimum and a maximum")
    extra = kwargs.pop("validate", None)
    validators = [validate.Range(min=minimum, max=maximum, error=error)]
    if extra is not None:
        validators += list(extra) if isinstance(extra, (list, tuple)) else [extra]
    kwargs["validate"] = validators
    return kwargs


class BoundedInteger(fields.Integer):
    """A whole number between `minimum` and `maximum` (both included)."""

    def __init__(self, *, minimum: int, maximum: int, error: str | None = None, **kwargs):
        self.minimum, self.maximum = minimum, maximum
        super().__init__(**_with_range(kwargs, minimum, maximum, error))


class Pence(BoundedInteger):
    """An amount of money in whole pence; strict (`1.5` and `"150"` are refused), 0..MAX_PENCE by default."""

    def __init__(self, *, minimum: int = 0, maximum: int = MAX_PENCE, **kwargs):
        kwargs.setdefault("strict", True)
        super().__init__(minimum=minimum, maximum=maximum, **kwargs)


class BoundedFloat(fields.Float):
    """A finite float between `minimum` and `maximum`; never for money (use `Pence` or `BoundedDecimal`)."""

    def __init__(self, *, minimum: float, maximum: float, error: str | None = None, **kwargs):
        self.minimum, self.maximum = minimum, maximum
        kwargs["allow_nan"] = False
        super().__init__(**_with_range(kwargs, minimum, maximum, error))


class BoundedDecimal(fields.Decimal):
    """A finite decimal between `minimum` and `maximum`, with at most `max_places` decimal places.

    Loaded as given (no rounding, `places=None`): a value with too many places is refused
    rather than silently rounded."""

    default_error_messages = {"too_precise": "at most {max_places} decimal places"}

    def __init__(self, *, minimum, maximum, max_places: int = 4, error: str | None = None, **kwargs):
        self.minimum, self.maximum = decimal.Decimal(minimum), decimal.Decimal(maximum)
        self.max_places = max_places
        kwargs["allow_nan"] = False
        kwargs.setdefault("places", None)
        super().__init__(**_with_range(kwargs, self.minimum, self.maximum, error))

    def _validated(self, value):
        number = super()._validated(value)
        if number is not None and number.is_finite() and number.as_tuple().exponent < -self.max_places:
            # Refused before any arithmetic: quantising `1e-999999` is harmless, but a huge
            # exponent in a product is not, and no price needs more places than this.
            raise self.make_error("too_precise", max_places=self.max_places)
        return number


BOUNDED_NUMBERS = (BoundedInteger, BoundedFloat, BoundedDecimal)


def unbounded_numbers(schema, path: str = "") -> list[str]:
    """The dotted names of numeric fields in `schema` (nested schemas, lists and dict values
    included) that are not one of the bounded kinds above: what a service must not declare."""
    found: list[str] = []

    def visit(field, name: str) -> None:
        if isinstance(field, fields.Number) and not isinstance(field, BOUNDED_NUMBERS):
            found.append(name)
        elif isinstance(field, fields.Nested):
            found.extend(unbounded_numbers(field.schema, f"{name}."))
        elif isinstance(field, fields.List):
            visit(field.inner, f"{name}[]")
        elif isinstance(field, fields.Dict) and field.value_field is not None:
            visit(field.value_field, f"{name}{{}}")

    for name, field in schema.fields.items():
        visit(field, f"{path}{name}")
    return found


__all__ = ["MAX_PENCE", "BoundedInteger", "Pence", "BoundedFloat", "BoundedDecimal", "unbounded_numbers"]
