"""Exact money: integer pence, each amount rounded once, half up. Pure Python, no I/O.

Fractions are kept as `Fraction` until the one rounding of a line, so a
pro-rated amount and its VAT never go through a float.
"""
from __future__ import annotations

from fractions import Fraction

VAT_RATES = {"standard": Fraction(20, 100), "zero": Fraction(0), "exempt": Fraction(0)}
# The same rates as (numerator, denominator) for whole-number arithmetic on the hot path.
_VAT_RATIOS = {k: (v.numerator, v.denominator) for k, v in VAT_RATES.items()}
VAT_CODES = {"standard": "S", "zero": "Z", "exempt": "E"}


def round_half_up(value: Fraction | int) -> int:
    """The nearest whole penny; exactly half a penny goes away from zero (half up for positive amounts)."""
    value = Fraction(value)
    sign = -1 if value < 0 else 1
    magnitude = abs(value)
    whole = magnitude.numerator // magnitude.denominator
    if magnitude - whole >= Fraction(1, 2):
        whole += 1
    return sign * whole


def ratio_half_up(numerator: int, denominator: int) -> int:
    """round_half_up(numerator / denominator) in whole-number arithmetic (denominator > 0)."""
    if numerator >= 0:
        return (2 * numerator + denominator) // (2 * denominator)
    return -((-2 * numerator + denominator) // (2 * denominator))


def prorate(amount_pence: int, covered_days: int, whole_days: int) -> int:
    """`amount_pence` x covered/whole, rounded once; never more than the whole amount, never negative."""
    if whole_days <= 0:
        raise ValueError("a period has at least one day")
    covered_days = max(0, min(covered_days, whole_days))
    return ratio_half_up(amount_pence * covered_days, whole_days)


def vat_pence(net_pence: int, vat_treatment: str) -> int:
    """VAT of one line, rounded once half up (HMRC allows line-level rounding)."""
    try:
        numerator, denominator = _VAT_RATIOS[vat_treatment]
    except KeyError:
        raise ValueError(f"unknown VAT treatment {vat_treatment!r}") from None
    return ratio_half_up(net_pence * numerator, denominator) if numerator else 0


def allocate(amount_pence: int, weights: list[int] | tuple[int, ...]) -> list[int]:
    """Split `amount_pence` in proportion to `weights` (whole, not negative) so that the parts sum
    exactly to it: each part is rounded down, then the pence left over go one each to the parts
    with the largest remainders (the earlier part first on a tie). A negative amount is split as
    its magnitude and every part negated; weights that are all zero give everything to the first."""
    if not weights:
        raise ValueError("an amount is split into at least one part")
    if any(w < 0 for w in weights):
        raise ValueError("weights are zero or more")
    sign, magnitude = (-1, -amount_pence) if amount_pence < 0 else (1, amount_pence)
    whole = sum(weights)
    if whole == 0:
        return [sign * magnitude] + [0] * (len(weights) - 1)
    floors = [magnitude * w // whole for w in weights]
    remainders = [magnitude * w % whole for w in weights]
    left = magnitude - sum(floors)
    for i in sorted(range(len(weights)), key=lambda i: (-remainders[i], i))[:left]:
        floors[i] += 1
    return [sign * part for part in floors]
