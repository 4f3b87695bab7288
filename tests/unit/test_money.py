import pytest
from hypothesis import given
from hypothesis import strategies as st

from coupons.domain.money import MAX_AMOUNT, Money, is_currency, minor_units, split

amounts = st.integers(min_value=-MAX_AMOUNT, max_value=MAX_AMOUNT)
weights = st.lists(st.integers(min_value=0, max_value=10_000), min_size=1, max_size=6).filter(any)


@given(amounts, weights)
def test_shares_always_sum_to_the_amount(amount, ws):
    shares = split(amount, list(enumerate(ws)))
    assert sum(shares.values()) == amount


@given(amounts, weights)
def test_each_share_is_within_one_unit_of_its_exact_proportion(amount, ws):
    total = sum(ws)
    for i, share in split(amount, list(enumerate(ws))).items():
        exact = amount * ws[i] / total
        assert abs(share - exact) < 1


@given(amounts, weights)
def test_a_negative_amount_mirrors_the_positive_split(amount, ws):
    pairs = list(enumerate(ws))
    assert split(-amount, pairs) == {k: -v for k, v in split(amount, pairs).items()}


@given(st.integers(min_value=0, max_value=MAX_AMOUNT), weights)
def test_a_zero_weight_gets_nothing(amount, ws):
    shares = split(amount, list(enumerate(ws)))
    assert all(shares[i] == 0 for i, w in enumerate(ws) if w == 0)


def test_the_worked_example_of_the_brief_splits_1001_into_501_300_200():
    assert split(1001, [("PLATFORM", 5000), ("BRAND", 3000), ("MERCHANT", 2000)]) == {
        "PLATFORM": 501,
        "BRAND": 300,
        "MERCHANT": 200,
    }


def test_equal_remainders_go_to_the_parties_in_the_order_given():
    assert split(2, [("A", 1), ("B", 1), ("C", 1)]) == {"A": 1, "B": 1, "C": 0}
    assert split(2, [("C", 1), ("B", 1), ("A", 1)]) == {"C": 1, "B": 1, "A": 0}


@pytest.mark.parametrize("bad", [1.0, "100", True])
def test_split_refuses_anything_but_integer_minor_units(bad):
    with pytest.raises(TypeError):
        split(bad, [("A", 1)])


def test_money_is_integer_minor_units_in_a_known_currency():
    assert Money(100, "CNY").as_dict() == {"amount": 100, "currency": "CNY"}
    with pytest.raises(TypeError):
        Money(1.5, "CNY")
    with pytest.raises(ValueError):
        Money(1, "XYZ")


def test_minor_units_follow_iso_4217():
    assert (minor_units("CNY"), minor_units("JPY"), minor_units("KWD")) == (2, 0, 3)
    assert not is_currency("XAU")  # a metal has no minor unit: never a coupon's currency
