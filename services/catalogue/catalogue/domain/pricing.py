"""Price calculation: one pure function from an edition's price terms and a school to a quote.

Money is integer pence. Models:
- `flat`: one annual fee;
- `per_pupil`: base fee + rate x number on roll (the rate may differ by phase),
  clamped to the optional minimum and maximum;
- `banded`: the price of the band the number on roll falls in (bands are
  "up to N pupils", inclusive, the last one may be open);
- `per_session`: a unit price per session or per day (`unit`) x the quantity bought;
- `per_delegate`: a subscriber price and a non-subscriber price per delegate place
  x the quantity bought;
- `bundle`: a package of offerings at one package price.

Rates may carry fractions of a penny (Decimal). Every step is exact; the total
is rounded once, half up, to whole pence, after any clamp was applied to the
exact figure, so the breakdown's steps always add up to the total exactly.
"""
from __future__ import annotations

import dataclasses
from decimal import ROUND_HALF_UP, Decimal

PRICING_MODELS = ("flat", "per_pupil", "banded", "per_session", "per_delegate", "bundle")
SESSION_UNITS = ("session", "day")
QUANTITY_MODELS = ("per_session", "per_delegate")


class PricingError(Exception):
    """A price list or quantity the pricing rules refuse; `field` names it (a broken rule, 422)."""

    refusal = "rule_broken"

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


@dataclasses.dataclass(frozen=True)
class Band:
    """Up to and including `up_to_pupils` pupils (None: no upper limit), the price is `price_pence`."""

    up_to_pupils: int | None
    price_pence: int


@dataclasses.dataclass(frozen=True)
class PriceTerms:
    """How an edition is priced. Amounts in pence; `rate_by_phase` values are pence per pupil."""

    model: str
    flat_fee_pence: int = 0
    base_fee_pence: int = 0
    rate_by_phase: dict[str, Decimal] = dataclasses.field(default_factory=dict)
    minimum_pence: int | None = None
    maximum_pence: int | None = None
    bands: tuple[Band, ...] = ()
    unit: str = "session"
    unit_price_pence: int = 0
    subscriber_price_pence: int = 0
    non_subscriber_price_pence: int = 0
    bundle_price_pence: int = 0
    includes: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class Step:
    label: str
    amount: Decimal


@dataclasses.dataclass(frozen=True)
class Quote:
    total_pence: int
    steps: tuple[Step, ...]
    number_on_roll: int | None
    quantity: int = 1

    def breakdown(self) -> list[dict]:
        # fixed-point, never exponent form ("1.72E+5"), which the published PriceStep pattern refuses
        return [{"label": s.label, "amount_pence": format(s.amount, "f")} for s in self.steps]


def _whole_pence(amount: Decimal) -> int:
    return int(amount.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def check_terms(terms: PriceTerms) -> None:
    """Refuse terms that cannot price consistently (raises `PricingError` naming the field)."""
    if terms.model not in PRICING_MODELS:
        raise PricingError("model", f"unknown pricing model {terms.model!r}; one of {', '.join(PRICING_MODELS)}")
    amounts = {"flat_fee_pence": terms.flat_fee_pence, "base_fee_pence": terms.base_fee_pence,
               "unit_price_pence": terms.unit_price_pence, "subscriber_price_pence": terms.subscriber_price_pence,
               "non_subscriber_price_pence": terms.non_subscriber_price_pence,
               "bundle_price_pence": terms.bundle_price_pence, "minimum_pence": terms.minimum_pence or 0,
               "maximum_pence": terms.maximum_pence or 0}
    for name, value in amounts.items():
        if value < 0:
            raise PricingError(name, f"{name} cannot be negative")
    if terms.model == "per_pupil":
        if not terms.rate_by_phase:
            raise PricingError("rate_by_phase", "a per-pupil price needs a rate for at least one phase")
        if any(Decimal(rate) < 0 for rate in terms.rate_by_phase.values()):
            raise PricingError("rate_by_phase", "a per-pupil rate cannot be negative")
        if (terms.minimum_pence is not None and terms.maximum_pence is not None
                and terms.minimum_pence > terms.maximum_pence):
            raise PricingError("minimum_pence", "the minimum is above the maximum")
    if terms.model == "banded":
        if not terms.bands:
            raise PricingError("bands", "a banded price needs at least one band")
        previous_limit, previous_price = -1, -1
        for index, band in enumerate(terms.bands):
            last = index == len(terms.bands) - 1
            if band.up_to_pupils is None and not last:
                raise PricingError("bands", "only the last band may be open (no up_to_pupils)")
            if band.up_to_pupils is not None and band.up_to_pupils <= previous_limit:
                raise PricingError("bands", "bands must rise: each up_to_pupils above the one before")
            if band.price_pence < previous_price:
                raise PricingError("bands", "a larger band cannot cost less than a smaller one")
            if band.price_pence < 0:
                raise PricingError("bands", "a band price cannot be negative")
            previous_limit = band.up_to_pupils if band.up_to_pupils is not None else previous_limit
            previous_price = band.price_pence
    if terms.model == "per_session" and terms.unit not in SESSION_UNITS:
        raise PricingError("unit", f"a per-session price is per {' or per '.join(SESSION_UNITS)}")
    if terms.model == "per_delegate" and terms.subscriber_price_pence > terms.non_subscriber_price_pence:
        raise PricingError("subscriber_price_pence", "subscribers cannot pay more than non-subscribers")
    if terms.model == "bundle" and len(terms.includes) < 2:
        raise PricingError("includes", "a bundle packages at least two offerings")


def quote(terms: PriceTerms, *, phase: str, number_on_roll: int, quantity: int = 1,
          subscriber: bool = False) -> Quote:
    """The annual price of `terms` for a school of `phase` with `number_on_roll` pupils.

    `quantity` counts sessions, days or delegate places (per-session and per-delegate
    models only); `subscriber` picks the per-delegate price.
    """
    if number_on_roll < 0:
        raise PricingError("number_on_roll", "the number on roll cannot be negative")
    if quantity < 1:
        raise PricingError("quantity", "the quantity is at least 1")
    if quantity != 1 and terms.model not in QUANTITY_MODELS:
        raise PricingError("quantity", f"a {terms.model} price is for one agreement; only per-session and "
                                       f"per-delegate prices take a quantity")
    if terms.model == "flat":
        amount = Decimal(terms.flat_fee_pence)
        return Quote(_whole_pence(amount), (Step("flat annual fee", amount),), None)
    if terms.model == "per_pupil":
        return _per_pupil(terms, phase, number_on_roll)
    if terms.model == "banded":
        for band in terms.bands:
            if band.up_to_pupils is None or number_on_roll <= band.up_to_pupils:
                label = (f"band up to {band.up_to_pupils} pupils" if band.up_to_pupils is not None
                         else "top band") + f" ({number_on_roll} on roll)"
                amount = Decimal(band.price_pence)
                return Quote(_whole_pence(amount), (Step(label, amount),), number_on_roll)
        raise PricingError("number_on_roll", f"no price band covers {number_on_roll} pupils")
    if terms.model == "per_session":
        unit = Decimal(terms.unit_price_pence)
        amount = unit * quantity
        return Quote(_whole_pence(amount), (Step(f"{quantity} {terms.unit}s x {unit}p", amount),), None, quantity)
    if terms.model == "per_delegate":
        price = terms.subscriber_price_pence if subscriber else terms.non_subscriber_price_pence
        amount = Decimal(price) * quantity
        label = f"{quantity} delegate places x {price}p ({'subscriber' if subscriber else 'non-subscriber'} price)"
        return Quote(_whole_pence(amount), (Step(label, amount),), None, quantity)
    if terms.model == "bundle":
        amount = Decimal(terms.bundle_price_pence)
        return Quote(_whole_pence(amount), (Step(f"package price ({', '.join(terms.includes)})", amount),), None)
    raise PricingError("pricing_model", f"unknown pricing model {terms.model!r}")


def _per_pupil(terms: PriceTerms, phase: str, number_on_roll: int) -> Quote:
    if phase not in terms.rate_by_phase:
        raise PricingError("phase", f"this edition has no per-pupil rate for phase {phase!r}")
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


def allocate(total_pence: int, weights: list[int]) -> list[int]:
    """Split `total_pence` in proportion to `weights` (e.g. a bundle's price over its components' own
    prices) into whole pence that sum to it exactly: each share rounded down, then the pence left over
    go one each to the largest remainders (the earlier share on a tie). Equal shares if every weight is 0."""
    if not weights:
        return []
    if any(w < 0 for w in weights):
        raise PricingError("weights", "an allocation weight cannot be negative")
    if not any(weights):
        weights = [1] * len(weights)
    whole = sum(weights)
    shares = [total_pence * w // whole for w in weights]
    remainders = [total_pence * w % whole for w in weights]
    for index in sorted(range(len(weights)), key=lambda i: (-remainders[i], i))[:total_pence - sum(shares)]:
        shares[index] += 1
    return shares


def uplifted(terms: PriceTerms, percent: Decimal) -> PriceTerms:
    """Next year's terms: every amount raised by `percent`, pence rounded half up, rates kept exact."""
    factor = 1 + Decimal(percent) / 100

    def pence(value: int | None) -> int | None:
        return None if value is None else _whole_pence(Decimal(value) * factor)

    return dataclasses.replace(
        terms, flat_fee_pence=pence(terms.flat_fee_pence), base_fee_pence=pence(terms.base_fee_pence),
        rate_by_phase={k: (Decimal(v) * factor).normalize() if v else Decimal(0) for k, v in terms.rate_by_phase.items()},
        minimum_pence=pence(terms.minimum_pence), maximum_pence=pence(terms.maximum_pence),
        bands=tuple(Band(b.up_to_pupils, pence(b.price_pence)) for b in terms.bands),
        unit_price_pence=pence(terms.unit_price_pence), subscriber_price_pence=pence(terms.subscriber_price_pence),
        non_subscriber_price_pence=pence(terms.non_subscriber_price_pence),
        bundle_price_pence=pence(terms.bundle_price_pence))


def terms_to_json(terms: PriceTerms) -> dict:
    """The model's own terms only, as in `edition_priced` (rates as decimal strings)."""
    data: dict = {"model": terms.model}
    if terms.model == "flat":
        data["flat_fee_pence"] = terms.flat_fee_pence
    elif terms.model == "per_pupil":
        data.update(base_fee_pence=terms.base_fee_pence,
                    rate_by_phase={k: format(Decimal(v), "f") for k, v in sorted(terms.rate_by_phase.items())},
                    minimum_pence=terms.minimum_pence, maximum_pence=terms.maximum_pence)
    elif terms.model == "banded":
        data["bands"] = [{"up_to_pupils": b.up_to_pupils, "price_pence": b.price_pence} for b in terms.bands]
    elif terms.model == "per_session":
        data.update(unit=terms.unit, unit_price_pence=terms.unit_price_pence)
    elif terms.model == "per_delegate":
        data.update(subscriber_price_pence=terms.subscriber_price_pence,
                    non_subscriber_price_pence=terms.non_subscriber_price_pence)
    elif terms.model == "bundle":
        data.update(bundle_price_pence=terms.bundle_price_pence, includes=list(terms.includes))
    return data


def terms_from_json(data: dict) -> PriceTerms:
    return PriceTerms(
        model=data["model"], flat_fee_pence=data.get("flat_fee_pence") or 0,
        base_fee_pence=data.get("base_fee_pence") or 0,
        rate_by_phase={k: Decimal(str(v)) for k, v in (data.get("rate_by_phase") or {}).items()},
        minimum_pence=data.get("minimum_pence"), maximum_pence=data.get("maximum_pence"),
        bands=tuple(Band(b.get("up_to_pupils"), b["price_pence"]) for b in (data.get("bands") or ())),
        unit=data.get("unit") or "session", unit_price_pence=data.get("unit_price_pence") or 0,
        subscriber_price_pence=data.get("subscriber_price_pence") or 0,
        non_subscriber_price_pence=data.get("non_subscriber_price_pence") or 0,
        bundle_price_pence=data.get("bundle_price_pence") or 0, includes=tuple(data.get("includes") or ()))
