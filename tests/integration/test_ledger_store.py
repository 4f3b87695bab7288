"""The ledger store on its models: what it writes reads back whole (PynamoDB keeps only declared
attributes), in every currency, and nothing but integers is ever written as money."""

from __future__ import annotations

import pytest

from coupons.data.ledger import SHARDS, shard_of
from coupons.domain.ledger import Journal, Leg
from tests.integration.conftest import RULE, TABLE

RULE_APPLIED = {"rule_id": None, "source": "no rule: brand funds all"}
EXTRA = {
    "redemption_id": "rdm_1",
    "campaign_id": "cmp_1",
    "brand_id": "b1",
    "merchant_id": "m1",
    "store_id": "s1",
    "order_id": "o1",
    "code": "CODE1",
    "settlement_cycle": "T+1",
}


def journal(journal_id: str, amount: int = 100, currency: str = "CNY", **legs: int) -> Journal:
    return Journal(
        journal_id=journal_id,
        source_id=journal_id.removeprefix("jnl_"),
        kind="REDEMPTION",
        currency=currency,
        legs=(Leg("brand:b1", -amount), Leg("merchant:m1", amount)),
        party_shares={"PLATFORM": 0, "BRAND": amount, "MERCHANT": 0},
        rule=RULE_APPLIED,
    )


def post(ledger, entry: Journal) -> None:
    ledger.post(
        entry,
        business_date="2026-03-01",
        due_date="2026-03-02",
        posted_at="2026-03-01T10:00:00Z",
        extra=EXTRA,
    )


def scan(aws) -> list[dict]:
    return aws.scan(TableName=TABLE)["Items"]


def test_a_journal_reads_back_as_it_was_written_alone_and_in_a_transactional_read(ledger):
    post(ledger, journal("jnl_rdm_1"))
    expected = {
        "journal_id": "jnl_rdm_1",
        "source_id": "rdm_1",
        "kind": "JOURNAL",
        "source_kind": "REDEMPTION",
        "currency": "CNY",
        "legs": [{"account": "brand:b1", "amount": -100}, {"account": "merchant:m1", "amount": 100}],
        "party_shares": {"PLATFORM": 0, "BRAND": 100, "MERCHANT": 0},
        "rule": RULE_APPLIED,
        "business_date": "2026-03-01",
        "due_date": "2026-03-02",
        "posted_at": "2026-03-01T10:00:00Z",
        "reversed": {"PLATFORM": 0, "BRAND": 0, "MERCHANT": 0},
        "reversal_count": 0,
        **EXTRA,
    }
    assert ledger.journal("jnl_rdm_1") == expected
    assert ledger.journals(["jnl_rdm_1", "jnl_absent"]) == {"jnl_rdm_1": expected}


def test_a_settled_posting_is_listed_with_the_run_that_claimed_it_and_its_dates(ledger, aws):
    post(ledger, journal("jnl_rdm_1"))
    shard = shard_of("jnl_rdm_1")
    # What settlement writes on a posting it claims, then settles (coupons.data.settlement).
    aws.update_item(
        TableName=TABLE,
        Key={"pk": {"S": f"ENTRIES#merchant:m1#{shard}"}, "sk": {"S": "2026-03-01#jnl_rdm_1"}},
        UpdateExpression="SET run_id = :run, claimed_at = :c, settled = :t, settled_at = :s REMOVE gsi1pk, gsi1sk",
        ExpressionAttributeValues={
            ":run": {"S": "stl_20260302"},
            ":c": {"S": "2026-03-02T01:00:00Z"},
            ":t": {"BOOL": True},
            ":s": {"S": "2026-03-02T02:00:00Z"},
        },
    )
    entries, position = ledger.entries(
        "merchant:m1", from_date="2026-03-01", to_date="2026-03-01", start=(0, None), limit=10
    )
    assert position is None
    assert entries == [
        {
            "account": "merchant:m1",
            "amount": 100,
            "currency": "CNY",
            "journal_id": "jnl_rdm_1",
            "source_id": "rdm_1",
            "source_kind": "REDEMPTION",
            "business_date": "2026-03-01",
            "due_date": "2026-03-02",
            "posted_at": "2026-03-01T10:00:00Z",
            "settled": True,
            **{k: v for k, v in EXTRA.items() if k != "settlement_cycle"},
            "run_id": "stl_20260302",
            "claimed_at": "2026-03-02T01:00:00Z",
            "settled_at": "2026-03-02T02:00:00Z",
        }
    ]


def test_balances_add_up_per_currency_whatever_the_currency(ledger):
    post(ledger, journal("jnl_rdm_1", 100, "CNY"))
    post(ledger, journal("jnl_rdm_2", 7, "JPY"))
    post(ledger, journal("jnl_rdm_3", 1234, "KWD"))
    post(ledger, journal("jnl_rdm_4", 5, "JPY"))
    assert ledger.balance("merchant:m1") == {"CNY": 100, "JPY": 12, "KWD": 1234}
    assert ledger.balance("brand:b1") == {"CNY": -100, "JPY": -12, "KWD": -1234}
    assert ledger.balance("platform") == {}


def test_a_journal_in_a_currency_the_ledger_does_not_keep_is_refused_and_writes_nothing(ledger, aws):
    before = scan(aws)
    with pytest.raises(ValueError, match="XXY"):
        post(ledger, journal("jnl_rdm_1", 100, "XXY"))
    assert scan(aws) == before


def test_a_float_amount_is_refused_before_anything_is_written(ledger, aws):
    before = scan(aws)
    floating = Journal(
        journal_id="jnl_rdm_1",
        source_id="rdm_1",
        kind="REDEMPTION",
        currency="CNY",
        legs=(Leg("brand:b1", -1.5), Leg("merchant:m1", 1.5)),
        party_shares={"PLATFORM": 0, "BRAND": 1, "MERCHANT": 0},
        rule=RULE_APPLIED,
    )
    with pytest.raises(TypeError, match="float"):
        post(ledger, floating)
    assert scan(aws) == before


def test_a_version_with_windows_and_overrides_reads_back_whole_and_its_approval_keeps_the_first_start(ledger):
    version = {
        "version": 1,
        "shares": RULE,
        "merchant_overrides": {"m-9": {"PLATFORM": 0, "BRAND": 10_000, "MERCHANT": 0}},
        "windows": [
            {
                "starts_at": "2026-06-01T00:00:00Z",
                "ends_at": "2026-06-02T00:00:00Z",
                "shares": {"PLATFORM": 10_000, "BRAND": 0, "MERCHANT": 0},
            }
        ],
        "effective_from": "2026-05-01T00:00:00Z",
        "status": "PROPOSED",
        "created_at": "2026-04-01T00:00:00Z",
        "created_by": "issuer:b1",
    }
    header = {"rule_id": "fr_W", "name": "windows", "brand_id": "b1", "created_at": "2026-04-01T00:00:00Z",
              "created_by": "issuer:b1"}  # fmt: skip
    ledger.put_rule(header, version)
    assert ledger.rule("fr_W") == (header, [version])
    second = {**version, "version": 2, "merchant_overrides": None, "windows": None}
    assert ledger.put_version("fr_W", second) is True
    assert ledger.put_version("fr_W", second) is False  # version 2 is taken
    for _ in range(2):  # approving twice changes nothing the second time
        ledger.approve_version(
            "fr_W", 1, effective_from="2026-05-02T00:00:00Z", approved_at="2026-04-02T00:00:00Z",
            approved_by="admin",
        )  # fmt: skip
    found_header, versions = ledger.rule("fr_W")
    assert found_header == header
    assert sorted(versions, key=lambda v: v["version"]) == [
        {
            **version,
            "status": "APPROVED",
            "effective_from": "2026-05-02T00:00:00Z",
            "proposed_from": "2026-05-01T00:00:00Z",
            "approved_at": "2026-04-02T00:00:00Z",
            "approved_by": "admin",
        },
        {k: v for k, v in second.items() if v is not None},
    ]
    assert ledger.rule("fr_absent") is None


def test_an_entries_listing_picks_up_where_its_last_page_ended_across_shards(ledger):
    ids = [f"jnl_rdm_{i}" for i in range(12)]
    for journal_id in ids:
        post(ledger, journal(journal_id))
    seen, start = [], (0, None)
    while start is not None:
        page, start = ledger.entries(
            "merchant:m1", from_date="2026-03-01", to_date="2026-03-01", start=start, limit=5
        )
        assert len(page) <= 5
        seen += [entry["journal_id"] for entry in page]
        assert start is None or 0 <= start[0] < SHARDS
    assert sorted(seen) == sorted(ids)


def test_a_journal_on_the_channels_accounts_puts_only_the_partys_legs_where_settlement_runs_claim(ledger, aws):
    # A reconciliation compensation (a returned payout): the merchant is owed again (a run must pay
    # it), the channel's accounts move but no run may ever "pay" bank:, settlement: or suspense:.
    returned = Journal(
        journal_id="jnl_rcp_returned",
        source_id="rcp_returned",
        kind="RECONCILIATION",
        currency="CNY",
        legs=(Leg("bank:simulated", -700), Leg("merchant:m1", 700)),
        party_shares={},
        rule=RULE_APPLIED,
    )
    suspense = Journal(
        journal_id="jnl_rcp_unknown",
        source_id="rcp_unknown",
        kind="RECONCILIATION",
        currency="CNY",
        legs=(Leg("bank:simulated", 50), Leg("suspense:simulated", -50)),
        party_shares={},
        rule=RULE_APPLIED,
    )
    post(ledger, returned)
    post(ledger, suspense)
    postings = [i for i in scan(aws) if i["pk"]["S"].startswith("ENTRIES#")]
    indexed = sorted(i["account"]["S"] for i in postings if "gsi1pk" in i)
    assert sorted(i["account"]["S"] for i in postings) == [
        "bank:simulated", "bank:simulated", "merchant:m1", "suspense:simulated"
    ]  # fmt: skip
    assert indexed == ["merchant:m1"]
