"""Issue #15 point 1's acceptance on a stack of its own (`make local`, demo tenant): an INSTANT merchant
redeems 20 small orders over HTTP → clearing → the table's stream through the payout mapping's batching
window → payouts in the simulated bank, each posting paid once, the instant statement equal to them,
and the next scheduled run paying none of them again; a merchant whose channel keeps failing has its
postings given back after the payouts' retries, and the next scheduled run pays them.

The deployed window is 60 s (the template); this stack's poller caps it at WINDOW_S
(LOCAL_STREAM_BATCHING_WINDOW_S, infra/local/streams.py) so the test takes seconds, not minutes."""

from __future__ import annotations

import os
import time
import uuid
from datetime import UTC, datetime

import pytest
from boto3.dynamodb.types import TypeDeserializer

from coupons.channels.simulated import SimulatedBank
from tests.e2e.conftest import started_local_stack
from tests.e2e.support import aws_client, redeem, wait_for_clearing
from tests.e2e.test_settlement_end_to_end import next_date, paid, settle

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]

WINDOW_S = 3
ORDERS = 20
DISCOUNT = 100  # 1.00 CNY off each order: small amounts, the brand funds them all (no rule)
# The longest from a redemption committed to its payout at the bank: the window, plus clearing and
# the local workers' overhead on this loaded 2-CPU machine.
PAID_WITHIN_S = WINDOW_S + 30
_plain = TypeDeserializer()


@pytest.fixture(scope="module")
def local_stack(tmp_path_factory):
    saved = os.environ.get("LOCAL_STREAM_BATCHING_WINDOW_S")
    os.environ["LOCAL_STREAM_BATCHING_WINDOW_S"] = str(WINDOW_S)
    try:
        with started_local_stack(tmp_path_factory, tenant="demo") as endpoints:
            yield endpoints
    finally:
        if saved is None:
            os.environ.pop("LOCAL_STREAM_BATCHING_WINDOW_S", None)
        else:
            os.environ["LOCAL_STREAM_BATCHING_WINDOW_S"] = saved


@pytest.fixture(scope="module")
def ddb(local_stack):
    return aws_client(local_stack, "dynamodb")


@pytest.fixture(scope="module")
def bank(local_stack, ddb) -> SimulatedBank:
    return SimulatedBank(ddb, local_stack["tables"]["simulatedBank"])


def postings(local_stack, ddb, merchant_id: str) -> list[dict]:
    """The merchant's redemption postings, read from the table (strongly consistent)."""
    found, kwargs = [], {"TableName": local_stack["tables"]["main"], "ConsistentRead": True}
    while True:
        page = ddb.scan(**kwargs)
        for item in page["Items"]:
            plain = {k: _plain.deserialize(v) for k, v in item.items()}
            if plain["pk"].startswith(f"ENTRIES#merchant:{merchant_id}#") and plain.get("source_kind") == "REDEMPTION":
                found.append(plain)
        if "LastEvaluatedKey" not in page:
            return found
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def wait_until(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what} not in {timeout} s"
        time.sleep(0.5)


@pytest.fixture(scope="module")
def world(local_stack, api, keys, bank, ddb):
    admin = keys["admin"]
    tag = uuid.uuid4().hex[:8]
    brand = f"brand-ins-{tag}"
    instant_m, failing_m = f"m-ins-{tag}-1", f"m-ins-{tag}-2"
    merchant_keys = {m: api.ok("POST", "/v1/api-keys", admin, {"principal": f"merchant:{m}"})["api_key"]
                     for m in (instant_m, failing_m)}  # fmt: skip
    for m in (instant_m, failing_m):
        assert api.ok("PUT", f"/v1/merchants/{m}/settlement", admin, {"mode": "INSTANT"})["mode"] == "INSTANT"
    campaign = api.ok("POST", "/v1/campaigns", admin, {
        "name": f"instant {tag}", "type": "FIXED", "amount": DISCOUNT, "brand_id": brand, "currency": "CNY",
        "valid_days": 30, "total_quantity": 2 * ORDERS, "settlement_cycle": "T+1",
    })["campaign_id"]  # fmt: skip
    api.ok("POST", f"/v1/campaigns/{campaign}/activate", admin)
    # The failing merchant's channel fails on every send until the faults are cleared.
    bank.inject(f"merchant:{failing_m}", "fail", times=1000)

    redeemed = {instant_m: [], failing_m: []}
    for i in range(ORDERS):
        for m in (instant_m, failing_m):
            code = api.ok("POST", f"/v1/campaigns/{campaign}/coupons", admin, {"user_id": f"u-{tag}-{m}-{i}"})["code"]
            answer = redeem(api, merchant_keys[m], m, code, 2000)
            assert answer["discount"] == DISCOUNT
            redeemed[m].append((answer["redemption_id"], time.time()))
    for m in redeemed:
        business_date = wait_for_clearing(api, admin, redeemed[m][-1][0])["business_date"]
    return {"admin": admin, "instant": instant_m, "failing": failing_m, "redeemed": redeemed,
            "keys": merchant_keys, "business_date": business_date}  # fmt: skip


@pytest.fixture(scope="module")
def paid_instantly(world, local_stack, ddb, bank):
    party = f"merchant:{world['instant']}"
    records = wait_until(
        lambda: (r := [x for x in bank.records() if x["party"] == party])
        and sum(x["amount"] for x in r) >= ORDERS * DISCOUNT and r,
        PAID_WITHIN_S + ORDERS,
        "the instant merchant's payouts",
    )
    return records


def test_an_instant_merchants_orders_are_paid_within_the_window_each_posting_once(world, paid_instantly, local_stack, ddb):
    # Every posting paid by an instant payout, and the bank moved exactly what cleared: 20 × 1.00
    found = postings(local_stack, ddb, world["instant"])
    assert len(found) == ORDERS
    assert all(p["run_id"].startswith("ipo_") and p["settled"] for p in found)
    assert sum(r["amount"] for r in paid_instantly) == ORDERS * DISCOUNT
    assert len({r["instruction_id"] for r in paid_instantly}) == len(paid_instantly)  # one record per payout
    assert all(r["run_id"].startswith("ipo_") for r in paid_instantly)
    # Within the window: the last payout's acceptance came at most PAID_WITHIN_S after the last redemption
    last_redeemed = max(at for _, at in world["redeemed"][world["instant"]])
    last_paid = max(datetime.fromisoformat(r["accepted_at"].replace("Z", "+00:00")) for r in paid_instantly)
    assert last_paid.timestamp() - last_redeemed <= PAID_WITHIN_S
    # Micro-batches, not one transfer per order
    assert len(paid_instantly) < ORDERS


def test_the_instant_statement_of_the_day_equals_the_payouts(world, paid_instantly, api, local_stack):
    day = datetime.now(UTC).astimezone(__import__("zoneinfo").ZoneInfo(local_stack["time_zone"])).date().isoformat()
    party = f"merchant:{world['instant']}"
    statement = api.ok("GET", f"/v1/instant-statements/{party}/{day}", world["keys"][world["instant"]])
    assert sorted(p["instruction_id"] for p in statement["payouts"]) == sorted(r["instruction_id"] for r in paid_instantly)
    [total] = statement["totals"]
    assert (total["amount"], total["postings"], total["payouts"]) == (ORDERS * DISCOUNT, ORDERS, len(paid_instantly))


@pytest.fixture(scope="module")
def left_to_run(world, local_stack, ddb, bank):
    found = wait_until(
        lambda: (p := postings(local_stack, ddb, world["failing"]))
        and len(p) == ORDERS and all(x.get("left_by_payout") and "run_id" not in x for x in p) and p,
        120,
        "the failing merchant's postings given back",
    )
    bank.clear_faults()  # the channel recovers before the next scheduled run
    return found


def test_a_merchant_whose_channel_keeps_failing_has_its_postings_left_visibly_to_the_next_run(world, left_to_run, bank):
    assert not [r for r in bank.records() if r["party"] == f"merchant:{world['failing']}"]
    assert all(p["gsi1pk"].startswith("UNSETTLED#") for p in left_to_run)


def test_the_next_scheduled_run_pays_the_left_postings_and_none_of_the_instant_ones(world, paid_instantly, left_to_run, local_stack, bank):
    day = next_date(world["business_date"], 1)  # T+1: the daily run of the next day pays them
    run = settle(local_stack, day)
    assert run["status"] == "CLOSED"
    receipts = paid(bank, run["run_id"])
    assert f"merchant:{world['instant']}" not in receipts
    [failing] = receipts[f"merchant:{world['failing']}"]
    assert (failing.amount, failing.direction) == (ORDERS * DISCOUNT, "PAYOUT")
    # And the instant merchant was paid nothing more
    assert sum(r["amount"] for r in bank.records() if r["party"] == f"merchant:{world['instant']}") == ORDERS * DISCOUNT


FLUSH_DISCOUNT = 12_000  # two orders of 120.00 off cross the demo tenant's 200.00 flush threshold


def test_orders_whose_sum_crosses_the_threshold_are_paid_by_the_flush_before_the_window(world, local_stack, api, bank, ddb):
    # Given an INSTANT merchant and two orders whose discounts sum past the threshold (demo: CNY 20000)
    from infra.tenants import load_tenant

    threshold = load_tenant("demo").instant_settlement.flush_threshold["CNY"]
    assert 2 * FLUSH_DISCOUNT >= threshold > FLUSH_DISCOUNT
    admin, tag = world["admin"], uuid.uuid4().hex[:8]
    merchant = f"m-flush-{tag}"
    key = api.ok("POST", "/v1/api-keys", admin, {"principal": f"merchant:{merchant}"})["api_key"]
    api.ok("PUT", f"/v1/merchants/{merchant}/settlement", admin, {"mode": "INSTANT"})
    campaign = api.ok("POST", "/v1/campaigns", admin, {
        "name": f"flush {tag}", "type": "FIXED", "amount": FLUSH_DISCOUNT, "brand_id": f"brand-fl-{tag}",
        "currency": "CNY", "valid_days": 30, "total_quantity": 2, "settlement_cycle": "T+1",
    })["campaign_id"]  # fmt: skip
    api.ok("POST", f"/v1/campaigns/{campaign}/activate", admin)
    codes = [api.ok("POST", f"/v1/campaigns/{campaign}/coupons", admin, {"user_id": f"u-fl-{tag}-{i}"})["code"]
             for i in range(2)]  # fmt: skip
    # When both are redeemed, one after the other
    for code in codes:
        assert redeem(api, key, merchant, code, 20_000)["discount"] == FLUSH_DISCOUNT
    # Then the crossing's flush paid them (its payout `…_fCNY`, coupons.domain.instant.flush_payout_id,
    # not the window's), each once
    party = f"merchant:{merchant}"
    records = wait_until(
        lambda: (r := [x for x in bank.records() if x["party"] == party])
        and sum(x["amount"] for x in r) >= 2 * FLUSH_DISCOUNT and r,
        PAID_WITHIN_S,
        "the flush's payout",
    )
    assert sum(r["amount"] for r in records) == 2 * FLUSH_DISCOUNT
    assert any(r["run_id"].endswith("_fCNY") for r in records), [r["run_id"] for r in records]
    found = postings(local_stack, ddb, merchant)
    assert len(found) == 2 and all(p["settled"] for p in found)
