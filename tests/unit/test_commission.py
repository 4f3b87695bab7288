"""Platform commission: the schedule version in force, the most specific rule, bps with min and max,
its legs in the redemption's journal, and its proportional give-back with refunds."""

from collections import defaultdict
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coupons.domain.commission import (
    CommissionTerms,
    ScheduleVersionTerms,
    amount_for,
    check_version,
    for_redemption,
    given_back,
    terms_for,
    version_in_force,
)
from coupons.domain.errors import InvalidField
from coupons.domain.funding import Shares
from coupons.domain.ledger import redemption_journal, reversal_journal
from coupons.domain.redemption import reversal_share

AT = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
REDEMPTION = {
    "redemption_id": "rdm_1",
    "brand_id": "B",
    "merchant_id": "M",
    "campaign_id": "cmp_1",
    "currency": "CNY",
    "order_amount": 10_000,
    "discount": 1_000,
}
FIVE_PERCENT_CAPPED = {"basis": "ORDER", "bps": 500, "maximum": {"CNY": 300}}
VERSIONS = [
    {"version": 1, "effective_from": "2026-01-01T00:00:00Z", "default": FIVE_PERCENT_CAPPED, "rules": []},
    {
        "version": 2,
        "effective_from": "2026-12-01T00:00:00Z",
        "default": {"basis": "DISCOUNT", "bps": 1000},
        "rules": [
            {"merchant_id": "M", "terms": {"basis": "ORDER", "bps": 100}},
            {"campaign_id": "cmp_1", "terms": {"basis": "ORDER", "bps": 200}},
            {"merchant_id": "M", "campaign_id": "cmp_1", "terms": {"basis": "ORDER", "bps": 300}},
        ],
    },
]


def legs(journal):
    return {leg.account: leg.amount for leg in journal.legs}


def test_five_percent_of_the_order_capped_at_300_posts_merchant_minus_c_and_platform_plus_c():
    commission = for_redemption(VERSIONS, REDEMPTION, AT)
    assert (commission.amount, commission.schedule_version, commission.source) == (300, 1, "default")
    journal = redemption_journal(REDEMPTION, Shares(PLATFORM=0, BRAND=10_000, MERCHANT=0), {}, commission)
    # the brand funds the discount of 1,000; the platform takes 300 of what the merchant is owed
    assert legs(journal) == {"brand:B": -1000, "merchant:M": 700, "platform": 300}
    assert journal.charges["commission"]["amount"] == 300


def test_without_a_schedule_in_force_the_journal_is_what_it_always_was():
    before = datetime(2025, 12, 31, tzinfo=UTC)
    assert version_in_force(VERSIONS, before) is None and for_redemption(VERSIONS, REDEMPTION, before) is None
    shares = Shares(PLATFORM=5000, BRAND=3000, MERCHANT=2000)
    assert redemption_journal({**REDEMPTION, "discount": 1001}, shares, {}, None) == redemption_journal(
        {**REDEMPTION, "discount": 1001}, shares, {}
    )
    no_default = [{"version": 1, "effective_from": "2026-01-01T00:00:00Z", "rules": []}]
    assert for_redemption(no_default, REDEMPTION, AT) is None


def test_a_later_version_applies_from_its_start_and_the_most_specific_rule_wins():
    at = datetime(2026, 12, 2, tzinfo=UTC)
    version = version_in_force(VERSIONS, at)
    assert terms_for(version, merchant_id="M", campaign_id="cmp_1")[1] == "merchant:M+campaign:cmp_1"
    assert terms_for(version, merchant_id="N", campaign_id="cmp_1")[1] == "campaign:cmp_1"
    assert terms_for(version, merchant_id="M", campaign_id="cmp_2")[1] == "merchant:M"
    terms, source = terms_for(version, merchant_id="N", campaign_id="cmp_2")
    assert (source, terms.basis, terms.bps) == ("default", "DISCOUNT", 1000)
    assert for_redemption(VERSIONS, {**REDEMPTION, "merchant_id": "N", "campaign_id": "c2"}, at).amount == 100


def test_the_minimum_raises_and_the_order_bounds_a_commission():
    terms = CommissionTerms(basis="DISCOUNT", bps=100, minimum={"CNY": 50}, maximum={"CNY": 80})
    assert amount_for(terms, order_amount=10_000, discount=1_000, currency="CNY") == 50  # 10 → 50
    assert amount_for(terms, order_amount=10_000, discount=9_000, currency="CNY") == 80  # 90 → 80
    assert amount_for(terms, order_amount=30, discount=30, currency="CNY") == 30  # never above the order
    assert amount_for(terms, order_amount=10_000, discount=1_000, currency="EUR") == 10  # no EUR bounds
    with pytest.raises(ValueError):
        CommissionTerms(basis="ORDER", bps=100, minimum={"CNY": 50}, maximum={"CNY": 40})


def test_a_version_never_starts_in_the_past_and_names_what_it_matches():
    now = datetime(2026, 11, 24, 10, 0, 0, 500_000, tzinfo=UTC)
    assert check_version(ScheduleVersionTerms(), now=now) == datetime(2026, 11, 24, 10, 0, 1, tzinfo=UTC)
    with pytest.raises(InvalidField) as past:
        check_version(ScheduleVersionTerms(effective_from=datetime(2026, 11, 24, tzinfo=UTC)), now=now)
    assert past.value.field == "effective_from"
    rule = {"terms": {"basis": "ORDER", "bps": 1}}
    with pytest.raises(InvalidField) as unnamed:
        check_version(ScheduleVersionTerms.model_validate({"rules": [rule]}), now=now)
    assert unnamed.value.field == "rules.0"
    twice = {"rules": [{**rule, "merchant_id": "M"}, {**rule, "merchant_id": "M"}]}
    with pytest.raises(InvalidField) as duplicate:
        check_version(ScheduleVersionTerms.model_validate(twice), now=now)
    assert duplicate.value.field == "rules.1"


def test_half_a_refund_gives_back_half_and_ties_go_to_the_refund():
    assert (
        given_back(charged=300, given_back_before=0, order_amount=10_000, refunded_before=0, refund=5_000)
        == 150
    )
    # 301 over 1:1 → 150.5 each: the unit goes to the refund
    assert given_back(charged=301, given_back_before=0, order_amount=2, refunded_before=0, refund=1) == 151
    assert given_back(charged=301, given_back_before=151, order_amount=2, refunded_before=1, refund=1) == 150
    with pytest.raises(ValueError):
        given_back(charged=300, given_back_before=0, order_amount=100, refunded_before=50, refund=51)


@st.composite
def chains(draw):
    order = draw(st.integers(1, 10**9))
    discount = draw(st.integers(0, order))
    bps = draw(st.integers(0, 10_000))
    basis = draw(st.sampled_from(["ORDER", "DISCOUNT"]))
    low = draw(st.integers(0, 10**6))
    cap = draw(st.none() | st.integers(low, 10**7))
    terms = {
        "basis": basis,
        "bps": bps,
        "minimum": {"CNY": low},
        **({"maximum": {"CNY": cap}} if cap is not None else {}),
    }
    refunds = draw(st.lists(st.integers(1, 10**9), min_size=1, max_size=6))
    platform = draw(st.integers(0, 10_000))
    brand = draw(st.integers(0, 10_000 - platform))
    return (
        order,
        discount,
        terms,
        refunds,
        Shares(PLATFORM=platform, BRAND=brand, MERCHANT=10_000 - platform - brand),
    )


@given(chains())
def test_journals_balance_refunds_never_give_back_more_than_charged_and_a_full_refund_gives_back_all(chain):
    order, discount, terms, refunds, shares = chain
    versions = [{"version": 1, "effective_from": "2026-01-01T00:00:00Z", "default": terms}]
    redemption = {**REDEMPTION, "order_amount": order, "discount": discount}
    commission = for_redemption(versions, redemption, AT)
    charged = commission.amount
    assert 0 <= charged <= order
    journals = [redemption_journal(redemption, shares, {}, commission)]
    cleared = journals[0].party_shares
    reversed_so_far, refunded, back = defaultdict(int), 0, 0
    for asked in [*refunds, order]:  # the last refunds whatever is left
        refund = min(asked, order - refunded)
        if refund == 0:
            break
        share = reversal_share(discount, order, refunded, refund)
        part = given_back(
            charged=charged,
            given_back_before=back,
            order_amount=order,
            refunded_before=refunded,
            refund=refund,
        )
        journal = reversal_journal(
            {"reversal_id": f"rvs_{len(journals)}", "discount_reversed": share, **redemption},
            cleared,
            dict(reversed_so_far),
            {},
            part,
        )
        journals.append(journal)
        for party, amount in journal.party_shares.items():
            reversed_so_far[party] += amount
        refunded, back = refunded + refund, back + part
        assert 0 <= back <= charged
    assert back == charged  # the whole order refunded: the whole commission back
    balances = defaultdict(int)
    for journal in journals:
        assert sum(leg.amount for leg in journal.legs) == 0
        for leg in journal.legs:
            balances[leg.account] += leg.amount
    assert set(balances.values()) == {0}  # everything undone: every party back to 0


def test_commission_and_the_platforms_share_land_on_one_platform_leg():
    # the docs' example: D = 1,001 under 50/30/20 (platform 501, brand 300) with c = 300
    versions = [{"version": 1, "effective_from": "2026-01-01T00:00:00Z", "default": FIVE_PERCENT_CAPPED}]
    commission = for_redemption(versions, {**REDEMPTION, "discount": 1001}, AT)
    journal = redemption_journal(
        {**REDEMPTION, "discount": 1001}, Shares(PLATFORM=5000, BRAND=3000, MERCHANT=2000), {}, commission
    )
    assert journal.legs[0].account == "platform"
    assert legs(journal) == {"platform": -201, "brand:B": -300, "merchant:M": 501}
    assert journal.party_shares == {"PLATFORM": 501, "BRAND": 300, "MERCHANT": 200}
