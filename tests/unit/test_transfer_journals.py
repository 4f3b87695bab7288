"""Channel fees and settlement's journals: a payout, a collection and their confirmations move a party's
balance to the channel's settlement account and on to the bank, the fee to `fees:{channel}`; ids derive
from the transfer; every journal balances."""

from collections import defaultdict

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coupons.domain.channel_fees import Bearer, FeeSchedule, charge, check_fees_below_minimum
from coupons.domain.commission import for_redemption
from coupons.domain.funding import Shares
from coupons.domain.ledger import redemption_journal
from coupons.domain.payments import Direction
from coupons.domain.transfer_journals import confirmation_journal, transfer_journal, transferred
from infra.tenants import Tenant, load_tenant

INS = "ins_20261125_0123456789abcdef0123"
PARTY_BEARS = FeeSchedule(bps=60, borne_by="PARTY")
PLATFORM_BEARS = FeeSchedule(bps=60, minimum={"CNY": 50}, maximum={"CNY": 500}, borne_by="PLATFORM")


def legs(journal):
    return {leg.account: leg.amount for leg in journal.legs}


def test_the_acceptance_example_t1_under_5_percent_capped_at_300_and_a_0_6_percent_fee_the_merchant_bears():
    """Order 10,000, discount 1,000 funded by the brand: the merchant is owed 1,000 − 300 (5 % of the
    order is 500, capped at 300) = 700. Paid out: 0.6 % of 700 = 4.2 → 4; the merchant receives 696."""
    versions = [
        {
            "version": 1,
            "effective_from": "2026-01-01T00:00:00Z",
            "default": {"basis": "ORDER", "bps": 500, "maximum": {"CNY": 300}},
        }
    ]
    redemption = {
        "redemption_id": "rdm_1",
        "brand_id": "B",
        "merchant_id": "M",
        "campaign_id": "c",
        "currency": "CNY",
        "order_amount": 10_000,
        "discount": 1_000,
    }
    from datetime import UTC, datetime

    cleared = redemption_journal(
        redemption,
        Shares(PLATFORM=0, BRAND=10_000, MERCHANT=0),
        {},
        for_redemption(versions, redemption, datetime(2026, 11, 24, tzinfo=UTC)),
    )
    assert legs(cleared)["merchant:M"] == 700
    fee = charge(PARTY_BEARS, "simulated", 700, "CNY")
    payout = transfer_journal(
        INS,
        party="merchant:M",
        direction=Direction.PAYOUT,
        net=700,
        currency="CNY",
        channel="simulated",
        fee=fee,
    )
    assert legs(payout) == {"merchant:M": -700, "settlement:simulated": 696, "fees:simulated": 4}
    assert payout.charges["fee"] == {"amount": 4, "borne_by": "PARTY", "transferred": 696}
    balances = defaultdict(int)
    for journal in (cleared, payout):
        for leg in journal.legs:
            balances[leg.account] += leg.amount
    assert balances["merchant:M"] == 0  # nothing more is owed after the payout


def test_a_payout_the_platform_bears_the_fee_of_moves_the_whole_net():
    fee = charge(PLATFORM_BEARS, "simulated", 5_000, "CNY")
    assert fee.amount == 50  # 30 raised to the minimum
    payout = transfer_journal(
        INS,
        party="merchant:M",
        direction=Direction.PAYOUT,
        net=5_000,
        currency="CNY",
        channel="simulated",
        fee=fee,
    )
    assert legs(payout) == {
        "merchant:M": -5000,
        "settlement:simulated": 5000,
        "fees:simulated": 50,
        "platform": -50,
    }
    assert (payout.journal_id, payout.source_id, payout.kind) == (f"jnl_{INS}", INS, "PAYOUT")


def test_a_collection_takes_the_fee_the_party_bears_on_top():
    fee = charge(PARTY_BEARS, "simulated", 10_000, "CNY")
    collection = transfer_journal(
        INS,
        party="brand:B",
        direction=Direction.COLLECTION,
        net=10_000,
        currency="CNY",
        channel="simulated",
        fee=fee,
    )
    assert legs(collection) == {"brand:B": 10_000, "settlement:simulated": -10_060, "fees:simulated": 60}
    assert transferred(Direction.COLLECTION, 10_000, fee) == 10_060


def test_a_confirmation_moves_what_was_sent_from_settlement_to_bank():
    payout = confirmation_journal(
        INS, direction=Direction.PAYOUT, transferred_amount=696, currency="CNY", channel="simulated"
    )
    assert legs(payout) == {"settlement:simulated": -696, "bank:simulated": 696}
    assert (payout.journal_id, payout.kind) == (f"jnl_{INS}_confirmed", "PAYOUT_CONFIRMED")
    collection = confirmation_journal(
        INS, direction=Direction.COLLECTION, transferred_amount=10, currency="CNY", channel="c"
    )
    assert legs(collection) == {"settlement:c": 10, "bank:c": -10}


def test_the_fee_is_rounded_down_bounded_and_never_more_than_the_transfer():
    assert charge(PARTY_BEARS, "c", 1_666, "CNY").amount == 9  # 9.996
    assert charge(PLATFORM_BEARS, "c", 1_000_000, "CNY").amount == 500
    assert charge(FeeSchedule(bps=0, minimum={"CNY": 80}, borne_by="PLATFORM"), "c", 30, "CNY").amount == 30
    assert charge(None, "c", 30, "CNY").amount == 0
    with pytest.raises(ValueError):
        charge(PARTY_BEARS, "c", 0, "CNY")
    with pytest.raises(ValueError):  # a fee the party bears that would swallow the payout
        transfer_journal(
            INS,
            party="merchant:M",
            direction=Direction.PAYOUT,
            net=30,
            currency="CNY",
            channel="c",
            fee=charge(FeeSchedule(bps=0, minimum={"CNY": 80}, borne_by="PARTY"), "c", 30, "CNY"),
        )


def test_a_tenant_whose_party_borne_minimum_fee_reaches_its_minimum_transfer_is_refused():
    check_fees_below_minimum("c", FeeSchedule(bps=60, minimum={"EUR": 99}, borne_by="PARTY"), {"EUR": 100})
    with pytest.raises(ValueError, match="settlement_minimum_transfer.EUR"):
        check_fees_below_minimum(
            "c", FeeSchedule(bps=60, minimum={"EUR": 100}, borne_by="PARTY"), {"EUR": 100}
        )
    base = load_tenant("acme").model_dump()
    with pytest.raises(ValueError, match="channel_fees.simulated.minimum.EUR"):
        Tenant.model_validate(
            {**base, "channel_fees": {"simulated": {"bps": 1, "minimum": {"EUR": 100}, "borne_by": "PARTY"}}}
        )
    assert load_tenant("acme").channel_fees["simulated"].borne_by is Bearer.PARTY


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["merchant:a", "merchant:b", "brand:x", "platform"]), st.integers(-(10**9), 10**9)
        ),
        min_size=1,
        max_size=30,
    ),
    st.integers(0, 10_000),
    st.integers(0, 1_000),
    st.sampled_from(["PARTY", "PLATFORM"]),
    st.integers(1, 1_000),
)
def test_after_transfers_and_confirmations_every_transferred_balance_is_zero_and_the_ledger_sums_to_zero(
    lines, bps, least_fee, bearer, minimum
):
    schedule = FeeSchedule(bps=bps, minimum={"CNY": min(least_fee, minimum - 1)}, borne_by=bearer)
    balances = defaultdict(int)
    for account, amount in lines:  # what clearing left each party (each journal balanced by platform)
        balances[account] += amount
        balances["platform"] -= amount
    sent_through_settlement = 0
    for party, net in sorted(balances.items()):
        if abs(net) < minimum:
            continue  # carried forward: moves nothing
        direction = Direction.PAYOUT if net > 0 else Direction.COLLECTION
        fee = charge(schedule, "c", abs(net), "CNY")
        if bearer == "PARTY" and direction is Direction.PAYOUT and fee.amount >= abs(net):
            continue  # bps 10,000: the tenant check keeps such a schedule out of party-borne payouts
        journal = transfer_journal(
            f"ins_{party}",
            party=party,
            direction=direction,
            net=abs(net),
            currency="CNY",
            channel="c",
            fee=fee,
        )
        moved = transferred(direction, abs(net), fee)
        confirmed = confirmation_journal(
            f"ins_{party}", direction=direction, transferred_amount=moved, currency="CNY", channel="c"
        )
        for j in (journal, confirmed):
            assert sum(leg.amount for leg in j.legs) == 0
            for leg in j.legs:
                balances[leg.account] += leg.amount
        sent_through_settlement += moved if direction is Direction.PAYOUT else -moved
        if party != "platform" or bearer == "PARTY" or fee.amount == 0:
            assert balances[party] == 0  # a transferred party owes and is owed nothing
    assert sum(balances.values()) == 0
    assert balances["settlement:c"] == 0  # every transfer confirmed: nothing in transit
    assert balances["bank:c"] == sent_through_settlement
