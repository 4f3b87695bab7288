"""The discount math of redemption (domain/redemption.py): each coupon type's discount, a gift card's
take, and the cumulative floor rule that gives a discount back on partial refunds.

Examples first (the brief's coupon types with the terms the demo tenant is seeded with, and the worked
reversal of docs/redemption.md), then hypothesis properties over the whole input range the API accepts
(amounts 1..10^13 minor units, percent_bps 1..10000)."""

from fractions import Fraction

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from coupons.domain.money import MAX_AMOUNT
from coupons.domain.redemption import (
    DiscountZero,
    Method,
    OrderBelowMinimum,
    ReversalExceedsOrder,
    check_discount,
    check_terms,
    discount,
    gift_card_take,
    reversal_share,
)

# The demo tenant's campaigns (infra/local/seed.py), in CNY fen.
FIXED = {"type": "FIXED", "currency": "CNY", "amount": 1000, "min_order": 5000}  # 10 off (min 50)
PERCENT = {"type": "PERCENT", "currency": "CNY", "percent_bps": 1500, "max_discount": 3000}  # 15%, cap 30
THRESHOLD = {"type": "THRESHOLD", "currency": "CNY", "amount": 2000, "min_order": 10000}  # 满100减20


# -- examples --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("campaign", "order", "expected"),
    [
        # FIXED (代金券): `amount` off, never more than the order.
        (FIXED, 10000, 1000),
        (FIXED, 1000, 1000),
        (FIXED, 999, 999),
        (FIXED, 1, 1),
        # PERCENT (折扣券): percent_bps of the order, rounded DOWN to the minor unit, capped.
        (PERCENT, 10000, 1500),
        (PERCENT, 9999, 1499),  # 1499.85 → 1499
        (PERCENT, 10001, 1500),  # 1500.15 → 1500
        (PERCENT, 20000, 3000),  # exactly the cap
        (PERCENT, 20007, 3000),  # 3001.05 → capped at 3000
        (PERCENT, 50000, 3000),
        (PERCENT, 6, 0),  # 0.9 → 0: a tiny order gets nothing, never a negative or rounded-up unit
        (PERCENT, 7, 1),  # 1.05 → 1
        ({**PERCENT, "percent_bps": 10_000, "max_discount": 10**13}, 12345, 12345),  # 100 %: the order
        ({**PERCENT, "percent_bps": 1, "max_discount": 3000}, 9999, 0),  # 1 bp of 99.99
        # THRESHOLD (满减): `amount` off when the order is at least `min_order`.
        (THRESHOLD, 10000, 2000),
        (THRESHOLD, 25000, 2000),
    ],
)
def test_each_types_discount_on_examples(campaign, order, expected):
    assert discount(campaign, order) == expected


def test_threshold_and_minimum_orders_are_refused_below_the_minimum():
    for campaign, minimum in ((THRESHOLD, 10000), (FIXED, 5000)):
        order = {"merchant_id": "m-001", "currency": "CNY", "method": Method.CODE}
        check_terms(campaign, order_amount=minimum, **order)
        with pytest.raises(OrderBelowMinimum):
            check_terms(campaign, order_amount=minimum - 1, **order)


def test_a_gift_card_cannot_be_discounted_only_taken_from():
    with pytest.raises(ValueError):
        discount({"type": "GIFT_CARD", "amount": 50000}, 100)


@pytest.mark.parametrize(
    ("balance", "order", "requested", "expected"),
    [
        (15000, 10000, None, 10000),  # the order, when the balance covers it
        (5000, 8000, None, 5000),  # min(balance, order): the rest is paid otherwise
        (0, 8000, None, 0),
        (15000, 10000, 300, 300),  # the amount asked for
        (200, 10000, 300, 200),  # ... never more than the balance
        (15000, 100, 300, 100),  # ... never more than the order
        (40, 100, 1, 1),
    ],
)
def test_gift_card_take_on_examples(balance, order, requested, expected):
    assert gift_card_take(balance, order, requested) == expected


def test_the_worked_reversal_of_the_docs():
    """1,500 off 10,001: refunds of 3,333, 3,333, 3,335 give back 499, 500, 501 (docs/redemption.md)."""
    shares, refunded = [], 0
    for refund in (3333, 3333, 3335):
        shares.append(reversal_share(1500, 10001, refunded, refund))
        refunded += refund
    assert shares == [499, 500, 501] and sum(shares) == 1500
    assert reversal_share(1000, 10000, 0, 10000) == 1000  # one whole refund: the whole discount
    assert reversal_share(1000, 10000, 0, 1) == 0  # floor: 0.1 of a unit is not given back yet
    assert reversal_share(1000, 10000, 9, 1) == 1  # ... until the refunds reach a whole unit


@pytest.mark.parametrize(
    ("refunded_before", "refund"),
    [(0, 10001), (3333, 6669), (10000, 1), (10000, 0), (0, 0), (0, -1), (6666, 3336)],
)
def test_a_refund_beyond_what_remains_or_not_positive_is_refused(refunded_before, refund):
    with pytest.raises(ReversalExceedsOrder):
        reversal_share(1500, 10000, refunded_before, refund)


# -- properties ------------------------------------------------------------------------------------

orders = st.integers(min_value=1, max_value=MAX_AMOUNT)
amounts = st.integers(min_value=1, max_value=MAX_AMOUNT)
bps = st.integers(min_value=1, max_value=10_000)
# Small values too, where rounding matters most.
small = st.integers(min_value=1, max_value=300)


@given(st.sampled_from(["FIXED", "THRESHOLD"]), amounts | small, orders | small)
@example("FIXED", 1000, 999)
@example("THRESHOLD", MAX_AMOUNT, MAX_AMOUNT)
def test_fixed_and_threshold_discounts_are_the_amount_but_never_above_the_order(kind, amount, order):
    campaign = {"type": kind, "amount": amount, "min_order": amount}
    d = discount(campaign, order)
    assert type(d) is int
    assert 0 <= d <= order and d <= amount
    assert d == min(amount, order)  # the full amount whenever the order allows it


@given(bps, amounts | small, orders | small)
@example(10_000, MAX_AMOUNT, MAX_AMOUNT)
@example(1, 1, 1)
@example(9_999, 10**13, 10**13)
def test_a_percent_discount_is_an_integer_never_above_the_order_the_cap_or_the_exact_percentage(
    percent_bps, cap, order
):
    campaign = {"type": "PERCENT", "percent_bps": percent_bps, "max_discount": cap}
    d = discount(campaign, order)
    assert type(d) is int
    assert 0 <= d <= order
    assert d <= cap
    exact = Fraction(order * percent_bps, 10_000)
    assert d <= exact  # rounded down, never up
    # ... and by less than one minor unit, unless the cap binds.
    assert d == cap or exact - d < 1


@given(bps, amounts | small, orders | small, orders | small)
def test_a_bigger_order_never_gets_a_smaller_discount(percent_bps, cap, a, b):
    low, high = sorted((a, b))
    for campaign in (
        {"type": "PERCENT", "percent_bps": percent_bps, "max_discount": cap},
        {"type": "FIXED", "amount": cap},
    ):
        assert discount(campaign, low) <= discount(campaign, high)


@given(
    st.integers(min_value=0, max_value=MAX_AMOUNT) | st.integers(min_value=0, max_value=300),
    orders | small,
    st.none() | amounts | small,
)
def test_a_gift_card_takes_at_most_its_balance_the_order_and_what_was_asked(balance, order, requested):
    take = gift_card_take(balance, order, requested)
    assert type(take) is int
    assert 0 <= take <= balance
    assert take <= order
    if requested is not None:
        assert take <= requested
    # ... and exactly the most it may: the balance never stays unused where it was wanted.
    assert take == min(balance, order, order if requested is None else requested)


@st.composite
def redemption_and_refunds(draw, whole: bool):
    """(order, discount, refunds): positive refunds summing to at most the order (exactly it if `whole`)."""
    order = draw(st.integers(min_value=1, max_value=MAX_AMOUNT) | st.integers(min_value=1, max_value=500))
    d = draw(st.integers(min_value=0, max_value=order) | st.sampled_from([0, order]))
    # Cut points in (0, order]: the refunds are the gaps between them.
    cuts = draw(st.lists(st.integers(min_value=1, max_value=order), max_size=12, unique=True))
    if whole:
        cuts.append(order)
    cuts = sorted(set(cuts))
    refunds = [b - a for a, b in zip([0, *cuts], cuts, strict=False)]
    return order, d, refunds


def give_back(order: int, d: int, refunds: list[int]) -> list[int]:
    shares, refunded = [], 0
    for refund in refunds:
        shares.append(reversal_share(d, order, refunded, refund))
        refunded += refund
    return shares


@given(redemption_and_refunds(whole=False))
def test_partial_reversals_never_give_back_more_than_the_discount(case):
    order, d, refunds = case
    shares = give_back(order, d, refunds)
    assert all(type(s) is int and s >= 0 for s in shares)
    assert sum(shares) <= d
    # Cumulative floor rule: after refunds totalling R, exactly floor(D × R / O) has come back ...
    assert sum(shares) == d * sum(refunds) // order
    # ... so each share is its exact proportion, within one minor unit.
    for refund, share in zip(refunds, shares, strict=True):
        assert abs(share - Fraction(d * refund, order)) < 1


@given(redemption_and_refunds(whole=True))
@example((10001, 1500, [3333, 3333, 3335]))
@example((1, 1, [1]))
@example((MAX_AMOUNT, MAX_AMOUNT, [1, MAX_AMOUNT - 1]))
def test_refunding_the_whole_order_gives_back_exactly_the_discount(case):
    order, d, refunds = case
    assert sum(refunds) == order
    assert sum(give_back(order, d, refunds)) == d


@given(redemption_and_refunds(whole=False), st.integers(min_value=1, max_value=MAX_AMOUNT))
def test_a_refund_beyond_what_remains_is_refused(case, beyond):
    order, d, refunds = case
    refunded = sum(refunds)
    give_back(order, d, refunds)
    too_much = order - refunded + beyond
    with pytest.raises(ReversalExceedsOrder):
        reversal_share(d, order, refunded, too_much)
    assume(refunded < order)
    # What remains exactly is still accepted, and completes the discount.
    assert sum(give_back(order, d, refunds)) + reversal_share(d, order, refunded, order - refunded) == d


@given(orders | small, st.integers(min_value=-MAX_AMOUNT, max_value=0))
def test_a_refund_of_zero_or_less_is_refused(order, refund):
    with pytest.raises(ReversalExceedsOrder):
        reversal_share(min(order, 1000), order, 0, refund)


@pytest.mark.parametrize("amount", [0, -1])
def test_a_discount_of_nothing_is_refused_naming_the_order_amount(amount):
    with pytest.raises(DiscountZero) as refused:
        check_discount(amount)
    assert (refused.value.code, refused.value.field) == ("discount_zero", "order_amount")
    check_discount(1)
