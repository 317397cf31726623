"""catalogue.domain.pricing.quote: flat and per-pupil prices, clamps, and rounding once, half up."""
import re
from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from catalogue.domain.pricing import PriceTerms, PricingError, allocate, quote


def per_pupil(rate="825", *, base=150000, minimum=None, maximum=None, phase="primary"):
    return PriceTerms(model="per_pupil", base_fee_pence=base, rate_by_phase={phase: Decimal(rate)},
                      minimum_pence=minimum, maximum_pence=maximum)


def steps_total(result) -> Decimal:
    return sum((Decimal(step["amount_pence"]) for step in result.breakdown()), Decimal(0))


class TestFlatPrice:
    def test_flat_fee_is_the_total_whatever_the_school(self):
        terms = PriceTerms(model="flat", flat_fee_pence=99000)
        for phase, pupils in (("primary", 10), ("secondary", 1500), ("special", 0)):
            result = quote(terms, phase=phase, number_on_roll=pupils)
            assert result.total_pence == 99000

    def test_flat_quote_has_one_step_and_no_number_on_roll(self):
        result = quote(PriceTerms(model="flat", flat_fee_pence=99000), phase="primary", number_on_roll=172)
        assert result.number_on_roll is None
        assert result.breakdown() == [{"label": "flat annual fee", "amount_pence": "99000"}]

    def test_flat_fee_ignores_phase_rates_and_clamps(self):
        terms = PriceTerms(model="flat", flat_fee_pence=5000, minimum_pence=10000, maximum_pence=20000)
        assert quote(terms, phase="nursery", number_on_roll=0).total_pence == 5000


class TestPerPupilPrice:
    def test_total_is_base_plus_rate_times_number_on_roll(self):
        result = quote(per_pupil("825", base=150000), phase="primary", number_on_roll=172)
        assert result.total_pence == 150000 + 825 * 172 == 291900
        assert result.number_on_roll == 172

    def test_breakdown_names_the_base_and_the_pupils(self):
        result = quote(per_pupil("825", base=150000), phase="primary", number_on_roll=172)
        assert result.breakdown() == [{"label": "base fee", "amount_pence": "150000"},
                                      {"label": "172 pupils x 825p (primary)", "amount_pence": "141900"}]

    def test_rate_differs_by_phase(self):
        terms = PriceTerms(model="per_pupil", base_fee_pence=0,
                           rate_by_phase={"primary": Decimal("800"), "secondary": Decimal("600")})
        assert quote(terms, phase="primary", number_on_roll=100).total_pence == 80000
        assert quote(terms, phase="secondary", number_on_roll=100).total_pence == 60000

    def test_total_is_an_int(self):
        result = quote(per_pupil("0.5", base=0), phase="primary", number_on_roll=3)
        assert type(result.total_pence) is int

    def test_zero_pupils_costs_the_base_fee(self):
        assert quote(per_pupil("825", base=150000), phase="primary", number_on_roll=0).total_pence == 150000


class TestPerPupilRefusals:
    def test_phase_without_a_rate_is_refused(self):
        with pytest.raises(PricingError) as refused:
            quote(per_pupil(phase="primary"), phase="secondary", number_on_roll=100)
        assert refused.value.field == "phase"

    def test_negative_number_on_roll_is_refused(self):
        with pytest.raises(PricingError) as refused:
            quote(per_pupil(), phase="primary", number_on_roll=-1)
        assert refused.value.field == "number_on_roll"

    def test_unknown_pricing_model_is_refused(self):
        with pytest.raises(PricingError) as refused:
            quote(PriceTerms(model="per_head"), phase="primary", number_on_roll=10)
        assert refused.value.field == "pricing_model"


class TestClamps:
    def test_raised_to_the_minimum(self):
        result = quote(per_pupil("100", base=0, minimum=50000), phase="primary", number_on_roll=10)
        assert result.total_pence == 50000
        assert result.breakdown()[-1] == {"label": "raised to the minimum of 50000p", "amount_pence": "49000"}

    def test_capped_at_the_maximum(self):
        result = quote(per_pupil("100", base=0, maximum=50000), phase="primary", number_on_roll=1000)
        assert result.total_pence == 50000
        assert result.breakdown()[-1] == {"label": "capped at the maximum of 50000p", "amount_pence": "-50000"}

    def test_within_the_clamps_nothing_is_added(self):
        result = quote(per_pupil("100", base=0, minimum=500, maximum=50000), phase="primary", number_on_roll=10)
        assert result.total_pence == 1000
        assert len(result.steps) == 2

    def test_exactly_on_a_clamp_is_not_adjusted(self):
        result = quote(per_pupil("100", base=0, minimum=1000, maximum=1000), phase="primary", number_on_roll=10)
        assert result.total_pence == 1000
        assert len(result.steps) == 2

    def test_clamp_applies_to_the_exact_amount_before_rounding(self):
        # exact 999.5p: below the 1000p minimum, so raised to 1000 exactly (no rounding step)
        result = quote(per_pupil("0.5", base=999, minimum=1000), phase="primary", number_on_roll=1)
        assert result.total_pence == 1000
        assert [step["label"] for step in result.breakdown()][-1] == "raised to the minimum of 1000p"


class TestRounding:
    def test_half_a_penny_rounds_up(self):
        result = quote(per_pupil("0.5", base=0), phase="primary", number_on_roll=3)  # 1.5p
        assert result.total_pence == 2
        assert result.breakdown()[-1] == {"label": "rounded half up to whole pence", "amount_pence": "0.5"}

    def test_odd_number_on_roll_at_half_a_penny_rounds_up_not_to_even(self):
        # banker's rounding would give 2 for 2.5; half up gives 3
        assert quote(per_pupil("0.5", base=0), phase="primary", number_on_roll=5).total_pence == 3

    def test_even_number_on_roll_at_half_a_penny_needs_no_rounding(self):
        result = quote(per_pupil("0.5", base=0), phase="primary", number_on_roll=4)
        assert result.total_pence == 2
        assert len(result.steps) == 2

    def test_below_half_rounds_down(self):
        result = quote(per_pupil("0.4", base=0), phase="primary", number_on_roll=1)
        assert result.total_pence == 0
        assert result.breakdown()[-1]["amount_pence"] == "-0.4"

    def test_rounded_once_on_the_total_not_per_pupil(self):
        # per pupil 0.3p would round to 0p each; rounded once, 7 x 0.3p = 2.1p -> 2p
        assert quote(per_pupil("0.3", base=0), phase="primary", number_on_roll=7).total_pence == 2


rates = st.decimals(min_value=0, max_value=5000, places=2, allow_nan=False, allow_infinity=False)
pence = st.integers(min_value=0, max_value=10_000_000)
rolls = st.integers(min_value=0, max_value=5000)


@st.composite
def terms_with_clamps(draw, both=False):
    minimum = draw(pence if both else st.none() | pence)
    maximum = draw(pence if both else st.none() | pence)
    if minimum is not None and maximum is not None and minimum > maximum:
        minimum, maximum = maximum, minimum
    return PriceTerms(model="per_pupil", base_fee_pence=draw(pence), rate_by_phase={"primary": draw(rates)},
                      minimum_pence=minimum, maximum_pence=maximum)


class TestQuoteProperties:
    @given(terms=terms_with_clamps(), roll=rolls, extra=st.integers(min_value=0, max_value=500))
    def test_monotone_non_decreasing_in_number_on_roll(self, terms, roll, extra):
        smaller = quote(terms, phase="primary", number_on_roll=roll).total_pence
        larger = quote(terms, phase="primary", number_on_roll=roll + extra).total_pence
        assert smaller <= larger

    @given(terms=terms_with_clamps(both=True), roll=rolls)
    def test_total_within_minimum_and_maximum(self, terms, roll):
        total = quote(terms, phase="primary", number_on_roll=roll).total_pence
        assert terms.minimum_pence <= total <= terms.maximum_pence

    @given(terms=terms_with_clamps(), roll=rolls)
    def test_total_is_round_half_up_of_the_clamped_exact_amount(self, terms, roll):
        exact = Decimal(terms.base_fee_pence) + Decimal(terms.rate_by_phase["primary"]) * roll
        if terms.minimum_pence is not None:
            exact = max(exact, Decimal(terms.minimum_pence))
        if terms.maximum_pence is not None:
            exact = min(exact, Decimal(terms.maximum_pence))
        expected = int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP))
        assert quote(terms, phase="primary", number_on_roll=roll).total_pence == expected

    @given(terms=terms_with_clamps(), roll=rolls)
    def test_breakdown_steps_sum_exactly_to_the_total(self, terms, roll):
        result = quote(terms, phase="primary", number_on_roll=roll)
        assert all(isinstance(step["amount_pence"], str) for step in result.breakdown())
        assert steps_total(result) == result.total_pence

    @given(fee=pence, roll=rolls)
    def test_flat_total_equals_the_fee(self, fee, roll):
        result = quote(PriceTerms(model="flat", flat_fee_pence=fee), phase="primary", number_on_roll=roll)
        assert result.total_pence == fee and steps_total(result) == fee


PUBLISHED_AMOUNT = re.compile(r"^-?\d+(\.\d+)?$")  # catalogue.messages.published.PriceStep.amount_pence
# up to 8 decimal places, some normalised so that exponents appear: 1000 -> 1E+3, 0.0000001 -> 1E-7
any_exponent_rates = st.integers(min_value=0, max_value=8).flatmap(
    lambda places: st.decimals(min_value=0, max_value=5000, places=places)).flatmap(
    lambda rate: st.sampled_from([rate, rate.normalize()]))


class TestBreakdownFormat:
    def test_a_rate_written_with_an_exponent_still_gives_fixed_point_amounts(self):
        # the API accepts "1E+3" for a rate; 172 x 1E+3 is Decimal("1.72E+5"), sent as "172000"
        result = quote(per_pupil("1E+3", base=0), phase="primary", number_on_roll=172)
        assert result.breakdown()[1]["amount_pence"] == "172000"

    @given(rate=any_exponent_rates, base=pence, roll=rolls)
    def test_every_amount_matches_the_published_pattern(self, rate, base, roll):
        terms = PriceTerms(model="per_pupil", base_fee_pence=base, rate_by_phase={"primary": rate})
        result = quote(terms, phase="primary", number_on_roll=roll)
        assert all(PUBLISHED_AMOUNT.match(step["amount_pence"]) for step in result.breakdown())
        assert steps_total(result) == result.total_pence


class TestAllocate:
    """Issue 14, rule 5: a bundle's price is shared among its components in proportion to their own
    prices, in whole pence that sum exactly to the bundle's price (largest remainders)."""

    def test_in_proportion_to_the_components_own_prices(self):
        assert allocate(200000, [291900, 95000]) == [150892, 49108]  # 150891.70 and 49108.30

    def test_largest_remainders_take_the_pence_left_over_earlier_first_on_a_tie(self):
        assert allocate(100, [1, 1, 1]) == [34, 33, 33]
        assert allocate(10, [1, 2]) == [3, 7]

    def test_equal_shares_when_no_component_has_a_price(self):
        assert allocate(101, [0, 0]) == [51, 50]

    @given(total=st.integers(min_value=0, max_value=10 ** 9),
           weights=st.lists(st.integers(min_value=0, max_value=10 ** 7), min_size=1, max_size=6))
    def test_shares_sum_exactly_and_each_is_within_a_penny_of_its_exact_share(self, total, weights):
        shares = allocate(total, weights)
        assert sum(shares) == total and all(share >= 0 for share in shares)
        if any(weights):
            for share, weight in zip(shares, weights):
                assert abs(Decimal(share) - Decimal(total) * weight / sum(weights)) < 1
