"""The pure rules of instant settlement (coupons.domain.instant): what a payout takes, its id, its window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coupons.domain import instant as rules
from coupons.domain.instant import InstantTerms, SettlementMode

INSTANT, SCHEDULED = SettlementMode.INSTANT, SettlementMode.SCHEDULED


def posting(journal_id, amount, *, account="merchant:m1", kind="REDEMPTION", currency="CNY", **more):
    return {"journal_id": journal_id, "amount": amount, "account": account, "source_kind": kind,
            "currency": currency, **more}  # fmt: skip


def test_a_payout_takes_a_merchants_redemption_postings_it_is_owed_and_nothing_else():
    assert rules.takes(posting("j1", 10))
    assert not rules.takes(posting("j2", -10, kind="REVERSAL"))  # a refund waits for the run
    assert not rules.takes(posting("j3", 10, account="brand:b1"))
    assert not rules.takes(posting("j4", 10, account="platform"))
    assert not rules.takes(posting("j5", 0))
    assert not rules.takes(posting("j6", 10, review_hold="review:r1"))


def test_a_posting_is_instant_when_its_merchant_or_its_campaign_is_instant():
    of = posting("j1", 10, campaign_id="c-fast")
    other = posting("j2", 10, campaign_id="c-slow")
    # A SCHEDULED merchant: only its INSTANT campaign's posting is paid instantly
    assert rules.is_instant(of, {}, {"c-fast": "INSTANT"}, SCHEDULED)
    assert not rules.is_instant(other, {}, {"c-fast": "INSTANT", "c-slow": "SCHEDULED"}, SCHEDULED)
    # An INSTANT merchant (its own or the tenant's default): a campaign's SCHEDULED takes nothing away
    assert rules.is_instant(other, {"m1": "INSTANT"}, {"c-slow": "SCHEDULED"}, SCHEDULED)
    assert rules.is_instant(other, {}, {"c-slow": "SCHEDULED"}, INSTANT)
    assert not rules.is_instant(other, {"m1": "SCHEDULED"}, {}, INSTANT)  # its own beats the default
    # What a payout never takes stays out whatever the modes
    assert not rules.is_instant(
        posting("j3", -10, kind="REVERSAL", campaign_id="c-fast"), {}, {"c-fast": "INSTANT"}, INSTANT
    )
    assert not rules.is_instant(posting("j4", 10), {}, {}, SCHEDULED)  # no campaign: the merchant decides
    found = rules.instant_by_party(
        [of, other, posting("j5", 5, account="merchant:m2", campaign_id="c-slow")],
        {},
        {"c-fast": "INSTANT"},
        SCHEDULED,
    )
    assert {p: [x["journal_id"] for x in xs] for p, xs in found.items()} == {"merchant:m1": ["j1"]}


def test_postings_are_grouped_per_party_in_journal_id_order_each_once():
    found = rules.by_party(
        [posting("j2", 5), posting("j1", 7), posting("j1", 7), posting("j3", 1, account="merchant:m2")]
    )
    assert {p: [x["journal_id"] for x in xs] for p, xs in found.items()} == {
        "merchant:m1": ["j1", "j2"],
        "merchant:m2": ["j3"],
    }


def test_the_payout_id_derives_from_party_and_window_and_the_window_is_aligned():
    at = datetime(2026, 3, 9, 10, 0, 42, tzinfo=UTC)
    window = rules.window_start(at, 60)
    assert window == datetime(2026, 3, 9, 10, 0, tzinfo=UTC)
    assert rules.window_start(at, 5) == datetime(2026, 3, 9, 10, 0, 40, tzinfo=UTC)
    first = rules.payout_id("merchant:m1", window)
    assert first == rules.payout_id("merchant:m1", window, 1)  # a redelivery computes the same
    assert first.startswith("ipo_20260309100000_") and first.endswith("_1")
    assert len({first, rules.payout_id("merchant:m2", window), rules.payout_id("merchant:m1", window, 2),
                rules.payout_id("merchant:m1", window + timedelta(seconds=60))}) == 4  # fmt: skip
    assert rules.is_payout(first) and not rules.is_payout("stl_20260309") and not rules.is_payout(None)
    with pytest.raises(ValueError):
        rules.payout_id("merchant:m1", window, rules.MAX_PAYOUTS_PER_WINDOW + 1)


def test_the_deployed_window_is_at_most_60_seconds_and_amounts_are_integers():
    assert InstantTerms().window_seconds == 60
    for bad in (
        {"window_seconds": 61},
        {"window_seconds": 0},
        {"minimums": {"CNY": 1.5}},
        {"max_attempts": 0},
    ):
        with pytest.raises(ValueError):
            InstantTerms(**bad)


def test_a_currency_below_the_tenants_instant_minimum_is_left_to_the_scheduled_run():
    postings = [posting("j1", 40), posting("j2", 50), posting("j3", 500, currency="EUR")]
    taken, left = rules.payable(postings, {"CNY": 100})
    assert [p["journal_id"] for p in taken] == ["j3"] and [p["journal_id"] for p in left] == ["j1", "j2"]
    # Without an instant minimum everything is paid, however small
    assert rules.payable(postings, {}) == (postings, [])


postings_strategy = st.lists(
    st.builds(
        posting,
        st.uuids().map(lambda u: f"jnl_{u.hex[:12]}"),
        st.integers(min_value=-10_000, max_value=10_000),
        account=st.sampled_from(["merchant:m1", "merchant:m2", "brand:b1", "platform"]),
        kind=st.sampled_from(["REDEMPTION", "REVERSAL"]),
        currency=st.sampled_from(["CNY", "EUR"]),
        campaign_id=st.sampled_from([None, "c1", "c2"]),
    ),
    max_size=60,
)
modes = st.sampled_from(["SCHEDULED", "INSTANT"])


@given(
    postings_strategy,
    st.dictionaries(st.sampled_from(["CNY", "EUR"]), st.integers(0, 20_000)),
    st.dictionaries(st.sampled_from(["m1", "m2"]), modes),
    st.dictionaries(st.sampled_from(["c1", "c2"]), modes),
    st.sampled_from([SCHEDULED, INSTANT]),
)
def test_property_what_instant_payouts_take_plus_what_is_left_to_the_run_is_what_cleared_never_twice(
    postings, minimums, merchant_modes, campaign_modes, default
):
    # Each posting is either taken by an instant payout of its party or left to the scheduled run,
    # never both, never lost: per currency Σ taken + Σ left = Σ cleared, to the unit; and what is taken
    # is instant by its merchant's mode in force or by its campaign's.
    taken_ids, left_ids = [], []
    instant = rules.instant_by_party(postings, merchant_modes, campaign_modes, default)
    for party, theirs in instant.items():
        for p in theirs:
            in_force = merchant_modes.get(rules.merchant_of(party), default)
            assert "INSTANT" in (in_force, campaign_modes.get(p.get("campaign_id") or ""))
        taken, left = rules.payable(theirs, minimums)
        assert all(p["account"] == party and p["amount"] > 0 for p in taken)
        assert sum(rules.pending(taken).values()) >= 0
        for currency, amount in rules.pending(taken).items():
            assert amount >= minimums.get(currency, 0)
        taken_ids += [p["journal_id"] + p["account"] for p in taken]
        left_ids += [p["journal_id"] + p["account"] for p in left]
    unique = {p["journal_id"] + p["account"]: p for p in postings}
    # ... and nothing instant is missed: every posting a payout takes whose merchant or campaign is INSTANT
    chosen = {p["journal_id"] + p["account"] for theirs in instant.values() for p in theirs}
    for key, p in unique.items():
        by_merchant = (
            rules.takes(p) and merchant_modes.get(rules.merchant_of(p["account"]), default) == "INSTANT"
        )
        by_campaign = rules.takes(p) and campaign_modes.get(p.get("campaign_id") or "") == "INSTANT"
        assert (key in chosen) == (by_merchant or by_campaign)
    assert len(taken_ids) == len(set(taken_ids)) and not set(taken_ids) & set(left_ids)
    to_the_run = [p for key, p in unique.items() if key not in set(taken_ids)]
    for currency in ("CNY", "EUR"):
        cleared = sum(p["amount"] for p in unique.values() if p["currency"] == currency)
        paid = sum(unique[k]["amount"] for k in taken_ids if unique[k]["currency"] == currency)
        left = sum(p["amount"] for p in to_the_run if p["currency"] == currency)
        assert isinstance(paid, int) and paid + left == cleared
