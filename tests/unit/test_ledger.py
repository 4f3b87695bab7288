"""Clearing's money: every journal balances, shares are exact, reversals never give back too much."""

from collections import defaultdict

from hypothesis import given
from hypothesis import strategies as st

from coupons.domain.funding import PARTIES, Shares
from coupons.domain.ledger import redemption_journal, reversal_journal
from coupons.domain.money import MAX_AMOUNT
from coupons.domain.redemption import reversal_share

REDEMPTION = {"redemption_id": "rdm_1", "brand_id": "B", "merchant_id": "M", "currency": "CNY"}


@st.composite
def shares(draw):
    platform = draw(st.integers(0, 10_000))
    brand = draw(st.integers(0, 10_000 - platform))
    return Shares(PLATFORM=platform, BRAND=brand, MERCHANT=10_000 - platform - brand)


def test_the_briefs_example_1001_at_50_30_20():
    journal = redemption_journal(
        {**REDEMPTION, "discount": 1001}, Shares(PLATFORM=5000, BRAND=3000, MERCHANT=2000), {}
    )
    assert {leg.account: leg.amount for leg in journal.legs} == {
        "platform": -501,
        "brand:B": -300,
        "merchant:M": 801,
    }
    assert journal.party_shares == {"PLATFORM": 501, "BRAND": 300, "MERCHANT": 200}


def test_a_gift_card_without_a_rule_is_owed_by_the_brand_to_the_merchant():
    journal = redemption_journal({**REDEMPTION, "discount": 5000}, None, {})
    assert {leg.account: leg.amount for leg in journal.legs} == {"brand:B": -5000, "merchant:M": 5000}


@given(st.integers(1, MAX_AMOUNT), shares())
def test_a_redemption_journal_balances_and_its_shares_sum_to_the_discount(discount, rule):
    journal = redemption_journal({**REDEMPTION, "discount": discount}, rule, {})
    assert sum(leg.amount for leg in journal.legs) == 0
    assert sum(journal.party_shares.values()) == discount


@given(
    st.integers(1, 10**9),
    st.integers(1, 10**9),
    shares(),
    st.lists(st.integers(1, 10**9), min_size=1, max_size=6),
)
def test_any_sequence_of_reversals_never_gives_back_more_than_cleared_and_all_of_it_empties_every_party(
    order, raw_discount, rule, refunds
):
    discount = min(raw_discount, order)
    cleared = redemption_journal({**REDEMPTION, "discount": discount}, rule, {})
    balances = defaultdict(int)
    for leg in cleared.legs:
        balances[leg.account] += leg.amount
    refunded, reversed_so_far = 0, dict.fromkeys(PARTIES, 0)
    for i, refund in enumerate(refunds):
        refund = min(refund, order - refunded)
        if refund <= 0:
            break
        share = reversal_share(discount, order, refunded, refund)
        journal = reversal_journal(
            {**REDEMPTION, "reversal_id": f"rvs_{i}", "discount_reversed": share},
            cleared.party_shares,
            reversed_so_far,
            {},
        )
        assert sum(leg.amount for leg in journal.legs) == 0
        for party in PARTIES:
            reversed_so_far[party] += journal.party_shares[party]
            assert 0 <= reversed_so_far[party] <= cleared.party_shares[party]
        for leg in journal.legs:
            balances[leg.account] += leg.amount
        refunded += refund
    assert sum(balances.values()) == 0
    if refunded == order:
        assert reversed_so_far == cleared.party_shares
        assert all(v == 0 for v in balances.values())
