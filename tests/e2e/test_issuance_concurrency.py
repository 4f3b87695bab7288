"""Issue #3's concurrency acceptance, over HTTP, against the stack `make local` serves: real threads, the
real API function in its worker processes, the real moto server behind them.

Every request of a burst is started by a thread that waits at a barrier first, so the requests really
overlap (the gateway queues them; up to 8 API workers, each with its own Issuer and its own memory of dry
shards, write to moto at the same time). Each case runs with several seeds: a seed picks the user ids,
the order in which threads are started, a small jitter before each request and (for some) the shard
count. The outcome is then checked three ways: the HTTP answers, the campaign's counters on `GET`, and
the items actually stored in the table (scanned through boto3 against the moto endpoint).
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import boto3
import pytest
import requests

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]

PROBLEM = "application/problem+json"
JITTER_S = 0.005  # at most this long between the barrier and a thread's request


@dataclass
class Outcome:
    user_id: str
    status: int
    body: dict
    media_type: str = ""


def new_campaign(base_url, admin, **terms) -> dict:
    body = {
        "name": f"e2e issuance {uuid.uuid4().hex[:8]}",
        "brand_id": "brand-demo",
        "type": "FIXED",
        "currency": "CNY",
        "amount": 100,
        "valid_days": 30,
        "total_quantity": 50,
        "per_user_limit": 1,
        **terms,
    }
    created = requests.post(f"{base_url}/v1/campaigns", json=body, headers={"x-api-key": admin}, timeout=60)
    assert created.status_code == 201, created.text
    campaign = created.json()
    activated = requests.post(
        f"{base_url}/v1/campaigns/{campaign['campaign_id']}/activate",
        headers={"x-api-key": admin},
        timeout=60,
    )
    assert activated.status_code == 200, activated.text
    assert activated.json()["status"] == "ACTIVE"
    return activated.json()


def burst(base_url, admin, campaign_id: str, user_ids: list[str], rng: random.Random) -> list[Outcome]:
    """One single-user issue per entry of `user_ids`, all at once: every thread waits at a barrier, then
    sleeps its own seeded jitter, then sends. Threads are submitted in a seeded order."""
    url = f"{base_url}/v1/campaigns/{campaign_id}/coupons"
    order = list(range(len(user_ids)))
    rng.shuffle(order)
    jitters = [rng.uniform(0, JITTER_S) for _ in user_ids]
    barrier = threading.Barrier(len(user_ids))

    def issue(i: int) -> Outcome:
        # A connection per thread (requests.Session is not guaranteed thread-safe).
        with requests.Session() as session:
            barrier.wait(timeout=60)
            time.sleep(jitters[i])
            answer = session.post(
                url, json={"user_id": user_ids[i]}, headers={"x-api-key": admin}, timeout=120
            )
        media_type = answer.headers.get("content-type", "").split(";")[0].strip()
        return Outcome(user_ids[i], answer.status_code, answer.json() if answer.content else {}, media_type)

    with ThreadPoolExecutor(len(user_ids)) as pool:
        futures = {i: pool.submit(issue, i) for i in order}
        return [futures[i].result() for i in range(len(user_ids))]


def tally(outcomes: list[Outcome]) -> Counter:
    """(status, problem code) of every answer; 201 answers count as (201, None)."""
    return Counter((o.status, o.body.get("code") if o.status != 201 else None) for o in outcomes)


def explain(outcomes: list[Outcome], expected: set) -> str:
    """The tally, and one answer of each kind not expected (a 502 says the API timed out, a stray 409
    may be a retried write): what a failure needs to be understood without rerunning it."""
    counts = tally(outcomes)
    odd = {}
    for o in outcomes:
        kind = (o.status, o.body.get("code") if o.status != 201 else None)
        if kind not in expected:
            odd.setdefault(kind, o.body)
    return f"{dict(counts)}; unexpected answers: {odd}"


@pytest.fixture(scope="module")
def table(local_stack):
    dynamodb = boto3.client(
        "dynamodb",
        endpoint_url=local_stack["moto_endpoint"],
        region_name=local_stack["region"],
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        aws_session_token="testing",
    )
    name = local_stack["tables"]["main"]

    def stored(prefix: str, campaign_id: str) -> list[dict]:
        """Items of one campaign whose pk starts with `prefix` (COUPON#, HOLDING#, QUOTA#)."""
        items, start = [], None
        while True:
            args = {
                "TableName": name,
                "FilterExpression": "begins_with(pk, :p) AND campaign_id = :c",
                "ExpressionAttributeValues": {":p": {"S": prefix}, ":c": {"S": campaign_id}},
                "ConsistentRead": True,
            }
            if prefix == "QUOTA#":  # shard items carry no campaign_id: it is in their key
                args["FilterExpression"] = "begins_with(pk, :p)"
                args["ExpressionAttributeValues"] = {":p": {"S": f"QUOTA#{campaign_id}#"}}
            if start:
                args["ExclusiveStartKey"] = start
            page = dynamodb.scan(**args)
            items += page["Items"]
            start = page.get("LastEvaluatedKey")
            if not start:
                return items

    return stored


def check_stored(base_url, admin, table, campaign: dict, outcomes: list[Outcome], expected: int) -> None:
    """The counters on GET, the coupon items, the holdings and the quota shards all say `expected`, and
    every 201 answer is one of the stored coupons, owned by the user it was issued to."""
    campaign_id = campaign["campaign_id"]
    read = requests.get(f"{base_url}/v1/campaigns/{campaign_id}", headers={"x-api-key": admin}, timeout=60)
    assert read.status_code == 200, read.text
    assert read.json()["issued_count"] == expected
    assert read.json()["budget_used"] == expected * campaign["face_value"]

    coupons = table("COUPON#", campaign_id)
    assert len(coupons) == expected
    stored_codes = {c["code"]["S"]: c["user_id"]["S"] for c in coupons}
    answered = {o.body["code"]: o.user_id for o in outcomes if o.status == 201}
    assert stored_codes == answered

    holdings = table("HOLDING#", campaign_id)
    per_user = Counter(c["user_id"]["S"] for c in coupons)
    assert {h["user_id"]["S"]: int(h["held"]["N"]) for h in holdings} == dict(per_user)
    assert all(held <= campaign["per_user_limit"] for held in per_user.values())

    shards = table("QUOTA#", campaign_id)
    assert len(shards) == campaign["shards"]
    assert all(int(s["remaining"]["N"]) >= 0 for s in shards)
    assert sum(int(s["capacity"]["N"]) - int(s["remaining"]["N"]) for s in shards) == expected
    # Each coupon records its shard: per shard, coupons stored = units taken from it.
    taken = {
        int(s["pk"]["S"].rsplit("#", 1)[1]): int(s["capacity"]["N"]) - int(s["remaining"]["N"])
        for s in shards
    }
    by_shard = Counter(int(c["shard"]["N"]) for c in coupons)
    assert {k: v for k, v in taken.items() if v} == dict(by_shard)


# Seeds: the first runs of each case keep the acceptance's numbers exactly; `shards=None` lets the
# seed jitter the shard count (1..64, so some shards may hold no unit at all).
QUANTITY_CASES = [(101, 8), (202, 8), (303, 8), (404, None)]


@pytest.mark.parametrize(("seed", "shards"), QUANTITY_CASES, ids=[f"seed{s}" for s, _ in QUANTITY_CASES])
def test_total_quantity_holds_under_200_concurrent_issues(base_url, keys, table, seed, shards):
    rng = random.Random(seed)
    shards = shards or rng.choice([1, 3, 13, 40, 64])
    admin = keys["admin"]
    campaign = new_campaign(base_url, admin, total_quantity=50, shards=shards)
    assert campaign["shards"] == shards and campaign["capacity"] == 50
    users = [f"u-{seed}-{rng.getrandbits(48):012x}-{i}" for i in range(200)]

    outcomes = burst(base_url, admin, campaign["campaign_id"], users, rng)

    expected = {(201, None): 50, (409, "campaign_exhausted"): 150}
    assert tally(outcomes) == expected, explain(outcomes, set(expected))
    for o in outcomes:
        if o.status == 409:  # a refusal is a problem document naming its reason
            assert o.media_type == PROBLEM and o.body["status"] == 409, o
    check_stored(base_url, admin, table, campaign, outcomes, expected=50)


SAME_USER_SEEDS = [7, 8, 9]


@pytest.mark.parametrize("seed", SAME_USER_SEEDS, ids=[f"seed{s}" for s in SAME_USER_SEEDS])
def test_per_user_limit_holds_for_one_user_from_32_threads(base_url, keys, table, seed):
    rng = random.Random(seed)
    admin = keys["admin"]
    campaign = new_campaign(base_url, admin, total_quantity=100, shards=8, per_user_limit=1)
    user = f"same-{seed}-{rng.getrandbits(48):012x}"

    outcomes = burst(base_url, admin, campaign["campaign_id"], [user] * 32, rng)

    expected = {(201, None): 1, (409, "per_user_limit_reached"): 31}
    assert tally(outcomes) == expected, explain(outcomes, set(expected))
    assert all(o.media_type == PROBLEM and o.body["field"] == "user_id" for o in outcomes if o.status == 409)
    check_stored(base_url, admin, table, campaign, outcomes, expected=1)
    wallet = requests.get(f"{base_url}/v1/users/{user}/coupons", headers={"x-api-key": admin}, timeout=60)
    assert wallet.status_code == 200, wallet.text
    assert [c["code"] for c in wallet.json()["items"]] == [
        o.body["code"] for o in outcomes if o.status == 201
    ]


BUDGET_SEEDS = [31, 32, 33]


@pytest.mark.parametrize("seed", BUDGET_SEEDS, ids=[f"seed{s}" for s in BUDGET_SEEDS])
def test_budget_holds_under_concurrent_issues(base_url, keys, table, seed):
    """budget 700 at face value 100 with total_quantity 100: the budget binds, at exactly 7."""
    rng = random.Random(seed)
    admin = keys["admin"]
    shards = rng.choice([1, 4, 8])
    campaign = new_campaign(base_url, admin, total_quantity=100, budget=700, amount=100, shards=shards)
    assert campaign["capacity"] == 7
    users = [f"b-{seed}-{rng.getrandbits(48):012x}-{i}" for i in range(40)]

    outcomes = burst(base_url, admin, campaign["campaign_id"], users, rng)

    expected = {(201, None): 7, (409, "campaign_exhausted"): 33}
    assert tally(outcomes) == expected, explain(outcomes, set(expected))
    check_stored(base_url, admin, table, campaign, outcomes, expected=7)
    read = requests.get(
        f"{base_url}/v1/campaigns/{campaign['campaign_id']}", headers={"x-api-key": admin}, timeout=60
    )
    assert read.json()["budget_used"] == 700 <= read.json()["budget"]


BULK_SEEDS = [51, 52]


@pytest.mark.parametrize("seed", BULK_SEEDS, ids=[f"seed{s}" for s in BULK_SEEDS])
def test_total_quantity_holds_under_concurrent_bulk_issues(base_url, keys, table, seed):
    """8 bulk calls of 25 users each, all at once, on 50 units: 50 issued in all, every other user
    refused `campaign_exhausted`, each call answering 200 (one refusal never undoes the others)."""
    rng = random.Random(seed)
    admin = keys["admin"]
    campaign = new_campaign(base_url, admin, total_quantity=50, shards=8)
    batches = [[f"k-{seed}-{rng.getrandbits(48):012x}-{b}-{i}" for i in range(25)] for b in range(8)]
    url = f"{base_url}/v1/campaigns/{campaign['campaign_id']}/coupons"
    barrier = threading.Barrier(len(batches))

    def issue(batch: list[str]) -> requests.Response:
        with requests.Session() as session:
            barrier.wait(timeout=60)
            time.sleep(rng.uniform(0, JITTER_S))
            return session.post(url, json={"user_ids": batch}, headers={"x-api-key": admin}, timeout=120)

    with ThreadPoolExecutor(len(batches)) as pool:
        answers = list(pool.map(issue, batches))

    outcomes = []
    for batch, answer in zip(batches, answers, strict=True):
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert [r["user_id"] for r in body["results"]] == batch
        assert body["issued"] + body["refused"] == len(batch)
        for r in body["results"]:
            if r["status"] == "ISSUED":
                outcomes.append(Outcome(r["user_id"], 201, {"code": r["code"]}))
            else:
                assert r["reason"] == "campaign_exhausted", r
                outcomes.append(Outcome(r["user_id"], 409, {"code": r["reason"]}))
    expected = {(201, None): 50, (409, "campaign_exhausted"): 150}
    assert tally(outcomes) == expected, explain(outcomes, set(expected))
    check_stored(base_url, admin, table, campaign, outcomes, expected=50)
