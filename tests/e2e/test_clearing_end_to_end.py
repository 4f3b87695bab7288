"""Issue #5's end-to-end acceptance on the stack `make local` serves: redemptions and partial reversals
made over HTTP reach the ledger through the table's stream and the real event source mapping (the
clearing function in its worker, fed by the local stream poller), and the ledger reads show the
balances worked out by hand below.

The campaign's brand and its two merchants are new to this test (their keys made by the admin), so
their balances are this test's alone whatever else the session redeemed; the platform account is
shared, so its change over the test is checked, and its postings by journal.

Funding rule: PLATFORM 50% / BRAND 30% / MERCHANT 20%; PERCENT coupon, 10% off, capped at 50.00.
Shares are a largest-remainder split, ties to PLATFORM, BRAND, MERCHANT in that order.

  R1 at M1, order 10,010 → discount 1,001: 500.5/300.3/200.2 → floors 500/300/200, 1 left → PLATFORM
     → shares 501/300/200; legs platform −501, brand −300, M1 +801
  R2 at M1, order 3,333 → discount 333: 166.5/99.9/66.6 → 166/99/66, 2 left → BRAND (.9), MERCHANT (.6)
     → 166/100/67; legs platform −166, brand −100, M1 +266
  R3 at M2, order 20,000 → discount 2,000 → 1000/600/400; legs platform −1000, brand −600, M2 +1600

Reversals give back floor(D × refunded so far / order) minus what earlier ones gave, split over what
each party still has cleared (weights = what is left):
  V1 R1 refund 5,000: floor(1001 × 5000/10010) = 500; over 501/300/200 (of 1001): 250.25/149.85/99.90
     → 250/149/99, 2 left → MERCHANT (.90), BRAND (.85) → 250/150/100; legs platform +250, brand +150, M1 −400
  V2 R1 refund 2,002: floor(1001 × 7002/10010) = 700 → 200; over 251/150/100 (of 501):
     100.20/59.88/39.92 → 100/59/39, 2 left → MERCHANT, BRAND → 100/60/40; legs +100, +60, M1 −160
  V3 R1 the rest (3,008): 1001 − 700 = 301 = all that is left, 151/90/60; legs +151, +90, M1 −241
  V4 R3 refund 7,777: floor(2000 × 7777/20000) = 777; over 1000/600/400: 388.5/233.1/155.4
     → 388/233/155, 1 left → PLATFORM → 389/233/155; legs platform +389, brand +233, M2 −622

  platform −501 −166 −1000 +250 +100 +151 +389 = −777
  brand    −300 −100 −600 +150 +60 +90 +233    = −467
  M1       +801 +266 −400 −160 −241             = +266
  M2       +1600 −622                           = +978      sum: 0
"""

from __future__ import annotations

import time
import uuid
from datetime import date, datetime, timedelta

import pytest

from tests.e2e.support import CLEARING_WAIT_S, Api, redeem, reverse, wait_for_clearing

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]


SHARES = {"PLATFORM": 5000, "BRAND": 3000, "MERCHANT": 2000}
EXPECTED = {"platform": -777, "brand": -467, "m1": 266, "m2": 978}


@pytest.fixture(scope="module")
def world(api: Api, keys):
    """A new brand, two new merchants (and their keys), the rule, the campaign, three coupons."""
    admin = keys["admin"]
    tag = uuid.uuid4().hex[:8]
    brand, m1, m2 = f"brand-e2e-{tag}", f"m-e2e-{tag}-1", f"m-e2e-{tag}-2"
    made = {}
    for principal in (f"issuer:{brand}", f"merchant:{m1}", f"merchant:{m2}"):
        made[principal] = api.ok(
            "POST", "/v1/api-keys", admin, {"principal": principal, "description": "e2e"}
        )["api_key"]
    rule = api.ok(
        "POST",
        "/v1/funding-rules",
        admin,
        {"name": f"e2e 50/30/20 {tag}", "shares": SHARES, "brand_ids": [brand]},
    )
    campaign = api.ok(
        "POST",
        "/v1/campaigns",
        admin,
        {
            "name": f"e2e clearing {tag}",
            "brand_id": brand,
            "type": "PERCENT",
            "currency": "CNY",
            "percent_bps": 1000,
            "max_discount": 5000,
            "valid_days": 30,
            "total_quantity": 10,
            "funding_rule_id": rule["rule_id"],
            "settlement_cycle": "T+2",
        },
    )
    api.ok("POST", f"/v1/campaigns/{campaign['campaign_id']}/activate", admin)
    codes = [
        api.ok(
            "POST", f"/v1/campaigns/{campaign['campaign_id']}/coupons", admin, {"user_id": f"u-{tag}-{i}"}
        )["code"]
        for i in range(3)
    ]
    # Work-around, reported: a redemption's time is kept to the second, the rule's version takes effect
    # at its microsecond, so a redemption within the second the rule was made finds no version in force
    # and fails clearing for good. Redeem from the next second on.
    effective = datetime.fromisoformat(rule["versions"][0]["effective_from"].replace("Z", "+00:00"))
    time.sleep(max(0.0, effective.timestamp() + 1.05 - time.time()))
    return {
        "admin": admin,
        "brand": f"brand:{brand}",
        "m1": f"merchant:{m1}",
        "m2": f"merchant:{m2}",
        "m1_id": m1,
        "m2_id": m2,
        "keys": made,
        "issuer": made[f"issuer:{brand}"],
        "m1_key": made[f"merchant:{m1}"],
        "m2_key": made[f"merchant:{m2}"],
        "rule": rule,
        "codes": codes,
    }


@pytest.fixture(scope="module")
def cleared(api: Api, world, keys):
    """The three redemptions and four reversals, made over HTTP; returns once the ledger shows them."""
    admin = world["admin"]
    platform_before = api.balance("platform", admin).get("CNY", 0)
    started = time.monotonic()
    r1 = redeem(api, world["m1_key"], world["m1_id"], world["codes"][0], 10_010)
    r2 = redeem(api, world["m1_key"], world["m1_id"], world["codes"][1], 3_333)
    r3 = redeem(api, world["m2_key"], world["m2_id"], world["codes"][2], 20_000)
    assert [r["discount"] for r in (r1, r2, r3)] == [1001, 333, 2000]

    # The first redemption's clearing, before any reversal: the legs of the example.
    first = wait_for_clearing(api, world["m1_key"], r1["redemption_id"])
    first_seen_s = time.monotonic() - started

    reversals = [
        reverse(api, world["m1_key"], r1["redemption_id"], 5_000),
        reverse(api, world["m1_key"], r1["redemption_id"], 2_002),
        reverse(api, world["m1_key"], r1["redemption_id"], None),
        reverse(api, world["m2_key"], r3["redemption_id"], 7_777),
    ]
    deadline = time.monotonic() + CLEARING_WAIT_S
    while True:
        now = {
            "brand": api.balance(world["brand"], admin).get("CNY", 0),
            "m1": api.balance(world["m1"], admin).get("CNY", 0),
            "m2": api.balance(world["m2"], admin).get("CNY", 0),
        }
        if all(now[k] == EXPECTED[k] for k in now) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    return {
        "redemptions": (r1, r2, r3),
        "reversals": reversals,
        "first": first,
        "first_seen_s": first_seen_s,
        "all_seen_s": time.monotonic() - started,
        "platform_before": platform_before,
    }


def test_a_redemption_is_cleared_by_the_stream_with_the_rules_shares(world, cleared):
    first = cleared["first"]
    assert first["legs"] == [
        {"account": "platform", "amount": -501},
        {"account": world["brand"], "amount": -300},
        {"account": world["m1"], "amount": 801},
    ]
    assert first["party_shares"] == {"PLATFORM": 501, "BRAND": 300, "MERCHANT": 200}
    assert first["rule"] == {"rule_id": world["rule"]["rule_id"], "version": 1, "source": "default"}
    assert first["reversed"] == {"PLATFORM": 0, "BRAND": 0, "MERCHANT": 0}
    business_date = date.fromisoformat(first["business_date"])
    assert first["due_date"] == (business_date + timedelta(days=2)).isoformat()  # T+2
    print(f"\nfirst journal visible {cleared['first_seen_s']:.2f} s after the first redeem; "
          f"all {cleared['all_seen_s']:.2f} s")  # fmt: skip


def test_reversals_give_back_the_hand_computed_parts_and_a_full_refund_clears_to_zero(
    api: Api, world, cleared
):
    assert [v["discount_reversed"] for v in cleared["reversals"]] == [500, 200, 301, 777]
    r1, r2, r3 = cleared["redemptions"]
    after = {
        r["redemption_id"]: api.ok("GET", f"/v1/redemptions/{r['redemption_id']}", world["admin"])
        for r in (r1, r2, r3)
    }
    assert after[r1["redemption_id"]]["clearing"]["reversed"] == {
        "PLATFORM": 501,
        "BRAND": 300,
        "MERCHANT": 200,
    }
    assert after[r2["redemption_id"]]["clearing"]["reversed"] == {"PLATFORM": 0, "BRAND": 0, "MERCHANT": 0}
    assert after[r2["redemption_id"]]["clearing"]["party_shares"] == {
        "PLATFORM": 166,
        "BRAND": 100,
        "MERCHANT": 67,
    }
    assert after[r3["redemption_id"]]["clearing"]["reversed"] == {
        "PLATFORM": 389,
        "BRAND": 233,
        "MERCHANT": 155,
    }


def test_balances_are_the_hand_computed_ones_and_sum_to_zero(api: Api, world, cleared):
    admin = world["admin"]
    balances = {
        "brand": api.balance(world["brand"], admin),
        "m1": api.balance(world["m1"], admin),
        "m2": api.balance(world["m2"], admin),
    }
    assert balances == {"brand": {"CNY": -467}, "m1": {"CNY": 266}, "m2": {"CNY": 978}}
    # The platform account is shared with the rest of the session: its postings of this test's journals.
    journals = {f"jnl_{r['redemption_id']}" for r in cleared["redemptions"]}
    journals |= {f"jnl_{v['reversal_id']}" for v in cleared["reversals"]}
    platform = [e for e in all_entries(api, "platform", admin) if e["journal_id"] in journals]
    assert len(platform) == 7
    assert sum(e["amount"] for e in platform) == EXPECTED["platform"]
    # ... and its balance moved by exactly that (no other test of the group clears under a rule).
    assert api.balance("platform", admin).get("CNY", 0) - cleared["platform_before"] == EXPECTED["platform"]
    assert EXPECTED["platform"] + sum(b["CNY"] for b in balances.values()) == 0


def test_each_principal_reads_only_its_own_accounts(api: Api, world, cleared):
    assert api.balance(world["m1"], world["m1_key"]) == {"CNY": 266}
    assert api.balance(world["brand"], world["issuer"]) == {"CNY": -467}
    refused = [
        api.call("GET", f"/v1/accounts/{world['m1']}/balance", world["m2_key"]),
        api.call("GET", f"/v1/accounts/{world['m2']}/entries", world["m1_key"]),
        api.call("GET", f"/v1/accounts/{world['m1']}/balance", world["issuer"]),
        api.call("GET", "/v1/accounts/platform/balance", world["m1_key"]),
        api.call("GET", "/v1/accounts/platform/balance", world["issuer"]),
    ]
    for answer in refused:
        assert answer.status_code == 404, answer.text
        assert answer.json()["code"] == "account_not_found"


def all_entries(api: Api, account: str, key: str, limit: int = 50, **params) -> list[dict]:
    found, cursor, pages = [], None, 0
    while True:
        extra = {"cursor": cursor} if cursor else {}
        page = api.ok("GET", f"/v1/accounts/{account}/entries", key, limit=limit, **params, **extra)
        assert len(page["items"]) <= limit
        found += page["items"]
        pages += 1
        assert pages < 1000
        cursor = page["next_cursor"]
        if cursor is None:
            return found


def test_entries_page_through_every_posting_once_with_dates(api: Api, world, cleared):
    entries = all_entries(api, world["m1"], world["m1_key"], limit=2)
    assert sorted(e["amount"] for e in entries) == sorted([801, 266, -400, -160, -241])
    assert len({e["journal_id"] for e in entries}) == 5
    assert sum(e["amount"] for e in entries) == EXPECTED["m1"]
    for entry in entries:
        assert entry["account"] == world["m1"] and entry["currency"] == "CNY"
        due = date.fromisoformat(entry["business_date"]) + timedelta(days=2)
        assert entry["due_date"] == due.isoformat()
    # Pages of one hold the same postings.
    one_by_one = all_entries(api, world["m1"], world["m1_key"], limit=1)
    assert sorted(e["journal_id"] for e in one_by_one) == sorted(e["journal_id"] for e in entries)
    # By business date: nothing before the first one; everything up to the last one.
    dates = sorted(e["business_date"] for e in entries)
    assert all_entries(api, world["m1"], world["m1_key"], to="2000-01-01") == []
    assert api.balance(world["m1"], world["m1_key"], as_of="2000-01-01") == {}
    assert api.balance(world["m1"], world["m1_key"], as_of=dates[-1]) == {"CNY": 266}
