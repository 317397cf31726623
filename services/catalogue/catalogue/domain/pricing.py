"""Price calculation: one pure function from an edition's price terms and a school to a quote.

Money is integer pence. A per-pupil price is base fee + rate x number on roll
(the rate may differ by phase), clamped to the optional minimum and maximum.
Rates may carry fractions of a penny (Decimal); the total is rounded once,
half up, to whole pence, after the clamp is applied to the exact figure.
"""
from __future__ import annotations

import dataclasses
from decimal import ROUND_HALF_UP, Decimal

PRICING_MODELS = ("flat", "per_pupil")


class PricingError(Exception):
    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


@dataclasses.dataclass(frozen=True)
class PriceTerms:
    """How an edition is priced. Amounts in pence; `rate_by_phase` values are pence per pupil."""

    model: str
    flat_fee_pence: int = 0
    base_fee_pence: int = 0
    rate_by_phase: dict[str, Decimal] = dataclasses.field(default_factory=dict)
    minimum_pence: int | None = None
    maximum_pence: int | None = None


@dataclasses.dataclass(frozen=True)
class Step:
    label: str
    amount: Decimal


@dataclasses.dataclass(frozen=True)
class Quote:
    total_pence: int
    steps: tuple[Step, ...]
    number_on_roll: int | None

    def breakdown(self) -> list[dict]:
        # fixed-point, never exponent form ("1.72E+5"), which the published PriceStep pattern refuses
        return [{"label": s.label, "amount_pence": format(s.amount, "f")} for s in self.steps]


def _whole_pence(amount: Decimal) -> int:
    return int(amount.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def quote(terms: PriceTerms, *, phase: str, number_on_roll: int) -> Quote:
    """The annual price of `terms` for a school of `phase` with `number_on_roll` pupils."""
    if terms.model == "flat":
        amount = Decimal(terms.flat_fee_pence)
        return Quote(_whole_pence(amount), (Step("flat annual fee", amount),), None)
    if terms.model != "per_pupil":
        raise PricingError("pricing_model", f"unknown pricing model {terms.model!r}")
    if phase not in terms.rate_by_phase:
        raise PricingError("phase", f"this edition has no per-pupil rate for phase {phase!r}")
    if number_on_roll < 0:
        raise PricingError("number_on_roll", "the number on roll cannot be negative")
    rate = Decimal(terms.rate_by_phase[phase])
    base = Decimal(terms.base_fee_pence)
    pupils = rate * number_on_roll
    exact = base + pupils
    steps = [Step("base fee", base), Step(f"{number_on_roll} pupils x {rate}p ({phase})", pupils)]
    if terms.minimum_pence is not None and exact < terms.minimum_pence:
        steps.append(Step(f"raised to the minimum of {terms.minimum_pence}p", Decimal(terms.minimum_pence) - exact))
        exact = Decimal(terms.minimum_pence)
    if terms.maximum_pence is not None and exact > terms.maximum_pence:
        steps.append(Step(f"capped at the maximum of {terms.maximum_pence}p", Decimal(terms.maximum_pence) - exact))
        exact = Decimal(terms.maximum_pence)
    total = _whole_pence(exact)
    if total != exact:
        steps.append(Step("rounded half up to whole pence", Decimal(total) - exact))
    return Quote(total, tuple(steps), number_on_roll)
