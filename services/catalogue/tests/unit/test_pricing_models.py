"""catalogue.domain.pricing beyond flat and per pupil: banded, per session or day, per delegate,
bundles, the terms check, uplifts and the wire form of terms; with property tests."""
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from catalogue.domain.pricing import (Band, PriceTerms, PricingError, check_terms, quote, terms_from_json,
                                      terms_to_json, uplifted)

BANDED = PriceTerms(model="banded", bands=(Band(100, 50000), Band(250, 90000), Band(600, 150000), Band(None, 210000)))


def total(terms, roll=200, **kwargs):
    return quote(terms, phase="primary", number_on_roll=roll, **kwargs).total_pence


def steps_sum(result) -> Decimal:
    return sum((Decimal(s["amount_pence"]) for s in result.breakdown()), Decimal(0))


class TestBanded:
    @pytest.mark.parametrize(("roll", "price"), [(0, 50000), (100, 50000), (101, 90000), (250, 90000),
                                                 (251, 150000), (600, 150000), (601, 210000), (5000, 210000)])
    def test_band_edges_are_inclusive_upper_limits(self, roll, price):
        assert total(BANDED, roll) == price

    def test_breakdown_names_the_band_and_the_roll(self):
        result = quote(BANDED, phase="secondary", number_on_roll=251)
        assert result.breakdown() == [{"label": "band up to 600 pupils (251 on roll)", "amount_pence": "150000"}]
        assert quote(BANDED, phase="secondary", number_on_roll=900).breakdown()[0]["label"] == "top band (900 on roll)"

    def test_roll_above_a_closed_top_band_is_refused(self):
        with pytest.raises(PricingError) as refused:
            total(PriceTerms(model="banded", bands=(Band(100, 1000),)), 101)
        assert refused.value.field == "number_on_roll"


class TestPerSessionAndDay:
    def test_quantity_times_unit_price(self):
        terms = PriceTerms(model="per_session", unit="day", unit_price_pence=45000)
        result = quote(terms, phase="primary", number_on_roll=10, quantity=3)
        assert result.total_pence == 135000 and result.quantity == 3
        assert result.breakdown() == [{"label": "3 days x 45000p", "amount_pence": "135000"}]

    def test_quantity_refused_for_models_priced_per_agreement(self):
        with pytest.raises(PricingError) as refused:
            total(PriceTerms(model="flat", flat_fee_pence=100), quantity=2)
        assert refused.value.field == "quantity"

    def test_zero_quantity_refused(self):
        with pytest.raises(PricingError):
            total(PriceTerms(model="per_session", unit_price_pence=100), quantity=0)


class TestPerDelegate:
    TERMS = PriceTerms(model="per_delegate", subscriber_price_pence=9000, non_subscriber_price_pence=15000)

    def test_subscribers_pay_the_subscriber_price(self):
        assert total(self.TERMS, quantity=4, subscriber=True) == 36000

    def test_non_subscribers_pay_the_full_price(self):
        result = quote(self.TERMS, phase="primary", number_on_roll=1, quantity=4)
        assert result.total_pence == 60000
        assert "non-subscriber" in result.breakdown()[0]["label"]


class TestBundle:
    def test_package_price_names_what_it_includes(self):
        terms = PriceTerms(model="bundle", bundle_price_pence=250000, includes=("SI-CORE", "GOV-TRAIN"))
        result = quote(terms, phase="primary", number_on_roll=300)
        assert result.total_pence == 250000
        assert result.breakdown() == [{"label": "package price (SI-CORE, GOV-TRAIN)", "amount_pence": "250000"}]


class TestCheckTerms:
    @pytest.mark.parametrize(("terms", "field"), [
        (PriceTerms(model="per_head"), "model"),
        (PriceTerms(model="per_pupil"), "rate_by_phase"),
        (PriceTerms(model="per_pupil", rate_by_phase={"primary": Decimal(1)}, minimum_pence=10, maximum_pence=5),
         "minimum_pence"),
        (PriceTerms(model="banded"), "bands"),
        (PriceTerms(model="banded", bands=(Band(None, 10), Band(100, 20))), "bands"),
        (PriceTerms(model="banded", bands=(Band(100, 10), Band(100, 20))), "bands"),
        (PriceTerms(model="banded", bands=(Band(100, 30), Band(200, 20))), "bands"),
        (PriceTerms(model="per_session", unit="week"), "unit"),
        (PriceTerms(model="per_delegate", subscriber_price_pence=200, non_subscriber_price_pence=100),
         "subscriber_price_pence"),
        (PriceTerms(model="bundle", bundle_price_pence=100, includes=("A1",)), "includes"),
        (PriceTerms(model="flat", flat_fee_pence=-1), "flat_fee_pence"),
    ])
    def test_inconsistent_terms_are_refused_naming_the_field(self, terms, field):
        with pytest.raises(PricingError) as refused:
            check_terms(terms)
        assert refused.value.field == field

    def test_consistent_terms_pass(self):
        check_terms(BANDED)
        check_terms(PriceTerms(model="per_delegate", subscriber_price_pence=100, non_subscriber_price_pence=100))


class TestUpliftAndWireForm:
    def test_uplift_raises_amounts_rounded_half_up_and_rates_exactly(self):
        terms = PriceTerms(model="per_pupil", base_fee_pence=150000, rate_by_phase={"primary": Decimal("825")},
                           minimum_pence=1005, maximum_pence=None)
        up = uplifted(terms, Decimal("3"))
        assert up.base_fee_pence == 154500 and up.minimum_pence == 1035  # 1035.15 -> 1035
        assert up.rate_by_phase["primary"] == Decimal("849.75") and up.maximum_pence is None
        assert uplifted(PriceTerms(model="flat", flat_fee_pence=50), Decimal("1")).flat_fee_pence == 51  # 50.5

    def test_wire_form_carries_only_the_models_terms_and_round_trips(self):
        assert terms_to_json(BANDED) == {"model": "banded", "bands": [
            {"up_to_pupils": 100, "price_pence": 50000}, {"up_to_pupils": 250, "price_pence": 90000},
            {"up_to_pupils": 600, "price_pence": 150000}, {"up_to_pupils": None, "price_pence": 210000}]}
        for terms in (BANDED, PriceTerms(model="per_delegate", subscriber_price_pence=1, non_subscriber_price_pence=2),
                      PriceTerms(model="per_session", unit="day", unit_price_pence=5),
                      PriceTerms(model="bundle", bundle_price_pence=9, includes=("A1", "B2")),
                      PriceTerms(model="per_pupil", base_fee_pence=3, rate_by_phase={"primary": Decimal("0.5")})):
            assert terms_to_json(terms_from_json(terms_to_json(terms))) == terms_to_json(terms)


@st.composite
def banded_terms(draw):
    limits = sorted(draw(st.sets(st.integers(min_value=0, max_value=3000), min_size=1, max_size=6)))
    prices = sorted(draw(st.lists(st.integers(min_value=0, max_value=1_000_000), min_size=len(limits) + 1,
                                  max_size=len(limits) + 1)))
    bands = [Band(limit, price) for limit, price in zip(limits, prices)] + [Band(None, prices[-1])]
    return PriceTerms(model="banded", bands=tuple(bands))


class TestProperties:
    @given(terms=banded_terms(), roll=st.integers(min_value=0, max_value=4000),
           extra=st.integers(min_value=0, max_value=1000))
    def test_banded_is_monotone_in_number_on_roll(self, terms, roll, extra):
        check_terms(terms)
        assert total(terms, roll) <= total(terms, roll + extra)

    @given(terms=banded_terms())
    def test_every_band_edge_belongs_to_its_own_band_and_the_next_pupil_to_the_next(self, terms):
        for index, band in enumerate(terms.bands[:-1]):
            assert total(terms, band.up_to_pupils) == band.price_pence
            assert total(terms, band.up_to_pupils + 1) == terms.bands[index + 1].price_pence

    @given(unit=st.integers(min_value=0, max_value=500_000), quantity=st.integers(min_value=1, max_value=200),
           more=st.integers(min_value=0, max_value=50))
    def test_per_session_is_linear_and_monotone_in_quantity(self, unit, quantity, more):
        terms = PriceTerms(model="per_session", unit_price_pence=unit)
        assert total(terms, quantity=quantity) == unit * quantity
        assert total(terms, quantity=quantity) <= total(terms, quantity=quantity + more)

    @given(low=st.integers(min_value=0, max_value=100_000), gap=st.integers(min_value=0, max_value=100_000),
           quantity=st.integers(min_value=1, max_value=100))
    def test_a_subscriber_never_pays_more_than_a_non_subscriber(self, low, gap, quantity):
        terms = PriceTerms(model="per_delegate", subscriber_price_pence=low, non_subscriber_price_pence=low + gap)
        assert total(terms, quantity=quantity, subscriber=True) <= total(terms, quantity=quantity)

    @given(terms=banded_terms(), roll=st.integers(min_value=0, max_value=4000))
    def test_steps_sum_to_the_total_for_every_model(self, terms, roll):
        for each in (terms, PriceTerms(model="bundle", bundle_price_pence=roll, includes=("A1", "B2")),
                     PriceTerms(model="per_session", unit_price_pence=roll)):
            result = quote(each, phase="primary", number_on_roll=roll)
            assert steps_sum(result) == result.total_pence

    @given(base=st.integers(min_value=0, max_value=1_000_000),
           rate=st.decimals(min_value=0, max_value=2000, places=3),
           percent=st.decimals(min_value=0, max_value=20, places=2), roll=st.integers(min_value=0, max_value=3000))
    def test_an_uplift_never_lowers_a_price(self, base, rate, percent, roll):
        terms = PriceTerms(model="per_pupil", base_fee_pence=base, rate_by_phase={"primary": rate})
        assert total(terms, roll) <= total(uplifted(terms, percent), roll)
