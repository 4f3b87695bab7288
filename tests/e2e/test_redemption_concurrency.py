"""Issue #4's concurrency acceptance, over HTTP, against the stack `make local` serves: real threads, the
real API function in its worker processes (up to 8 at once, each a warm container with its own campaign
cache), the real moto server behind them.

Every request of a burst is sent by a thread that waits at a barrier first, then sleeps a small seeded
jitter, so the requests really overlap. A seed also picks the order in which threads are started, the
order ids, the merchant (m-001 or m-002, each with its own key) and the order amount. Each case runs with
several seeds. The outcome is checked three ways: the HTTP answers, the coupon on `GET /v1/coupons/{code}`,
and the redemption items actually stored in the table (scanned through boto3 against the moto endpoint).
"""

from __future__ import annotations

import json
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
CONTENTION_RETRIES = 5  # a till's retries of a 409 contention (nothing was written)
TIMEOUT_S = 120


@dataclass
class Answer:
    index: int
    status: int
    raw: bytes
    content_type: str
    replayed: bool

    @property
    def body(self) -> dict:
        return json.loads(self.raw) if self.raw else {}

    @property
    def code(self) -> str | None:
        """The problem code of a refusal; None for a success."""
        return self.body.get("code") if self.status >= 400 else None


@pytest.fixture(scope="module")
def dynamodb(local_stack):
    return boto3.client(
        "dynamodb",
        endpoint_url=local_stack["moto_endpoint"],
        region_name=local_stack["region"],
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        aws_session_token="testing",
    )


@pytest.fixture(scope="module")
def main_table(local_stack) -> str:
    return local_stack["tables"]["main"]


def stored_redemptions(dynamodb, table: str, code: str) -> list[dict]:
    """The REDEMPTION items of one coupon, as stored (consistent scan, every page)."""
    items, start = [], None
    while True:
        args = {
            "TableName": table,
            "FilterExpression": "begins_with(pk, :p) AND sk = :sk AND code = :code",
            "ExpressionAttributeValues": {
                ":p": {"S": "REDEMPTION#"},
                ":sk": {"S": "REDEMPTION"},
                ":code": {"S": code},
            },
            "ConsistentRead": True,
        }
        if start:
            args["ExclusiveStartKey"] = start
        page = dynamodb.scan(**args)
        items += page["Items"]
        start = page.get("LastEvaluatedKey")
        if not start:
            return items


def new_coupon(base_url: str, admin: str, user_id: str, **terms) -> tuple[str, str]:
    """An ACTIVE campaign with these terms, and one coupon of it issued to `user_id`: (code, campaign id)."""
    body = {
        "name": f"e2e redemption {uuid.uuid4().hex[:8]}",
        "brand_id": "brand-demo",
        "type": "FIXED",
        "currency": "CNY",
        "amount": 1000,
        "valid_days": 30,
        "total_quantity": 10,
        **terms,
    }
    headers = {"x-api-key": admin}
    created = requests.post(f"{base_url}/v1/campaigns", json=body, headers=headers, timeout=TIMEOUT_S)
    assert created.status_code == 201, created.text
    campaign_id = created.json()["campaign_id"]
    activated = requests.post(
        f"{base_url}/v1/campaigns/{campaign_id}/activate", headers=headers, timeout=TIMEOUT_S
    )
    assert activated.status_code == 200, activated.text
    issued = requests.post(
        f"{base_url}/v1/campaigns/{campaign_id}/coupons",
        json={"user_id": user_id},
        headers=headers,
        timeout=TIMEOUT_S,
    )
    assert issued.status_code == 201, issued.text
    return issued.json()["code"], campaign_id


def burst(base_url: str, key: str, bodies: list[dict], rng: random.Random, headers=None) -> list[Answer]:
    """`POST /v1/redemptions` once per body, all at once: every thread waits at a barrier, sleeps its own
    seeded jitter, then sends (again, on a 409 contention, as a till does). Threads are submitted in a
    seeded order. Answers come back in body order."""
    url = f"{base_url}/v1/redemptions"
    order = list(range(len(bodies)))
    rng.shuffle(order)
    jitters = [rng.uniform(0, JITTER_S) for _ in bodies]
    barrier = threading.Barrier(len(bodies))
    sent = {"x-api-key": key, **(headers or {})}

    def send(i: int) -> Answer:
        # A connection per thread (requests.Session is not guaranteed thread-safe).
        with requests.Session() as session:
            barrier.wait(timeout=60)
            time.sleep(jitters[i])
            for attempt in range(CONTENTION_RETRIES + 1):
                answer = session.post(url, json=bodies[i], headers=sent, timeout=TIMEOUT_S)
                if not (answer.status_code == 409 and _problem_code(answer) == "contention"):
                    break
                # As a till does with "nothing was done, retry shortly" (the function ran short of time
                # while losing races, on a loaded machine): the same request again.
                time.sleep(0.05 * (attempt + 1))
        return Answer(
            i,
            answer.status_code,
            answer.content,
            answer.headers.get("content-type", ""),
            answer.headers.get("Idempotent-Replayed") == "true",
        )

    with ThreadPoolExecutor(len(bodies)) as pool:
        futures = {i: pool.submit(send, i) for i in order}
        return [futures[i].result() for i in range(len(bodies))]


def _problem_code(answer: requests.Response) -> str | None:
    try:
        return answer.json().get("code")
    except ValueError:
        return None


def tally(answers: list[Answer]) -> Counter:
    """(status, problem code) of every answer; successes count as (201, None)."""
    return Counter((a.status, a.code) for a in answers)


def get_coupon(base_url: str, admin: str, code: str) -> dict:
    read = requests.get(f"{base_url}/v1/coupons/{code}", headers={"x-api-key": admin}, timeout=TIMEOUT_S)
    assert read.status_code == 200, read.text
    return read.json()


def coupon_history(base_url: str, admin: str, code: str) -> list[dict]:
    """Every event of the coupon, oldest first: the coupon's read shows only its latest 20."""
    events, cursor = [], None
    while True:
        params = {"limit": 100, **({"cursor": cursor} if cursor else {})}
        page = requests.get(
            f"{base_url}/v1/coupons/{code}/history",
            headers={"x-api-key": admin},
            params=params,
            timeout=TIMEOUT_S,
        )
        assert page.status_code == 200, page.text
        events += page.json()["items"]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            return events[::-1]


def merchant_of(rng: random.Random, keys: dict) -> tuple[str, str]:
    merchant = rng.choice(["m-001", "m-002"])
    return merchant, keys[f"merchant:{merchant}"]


def order_body(code: str, merchant: str, order_id: str, order_amount: int, **extra) -> dict:
    return {
        "code": code,
        "merchant_id": merchant,
        "store_id": "s-1",
        "order_id": order_id,
        "order_amount": order_amount,
        "currency": "CNY",
        **extra,
    }


def check_refusals(answers: list[Answer], status: int, code: str) -> None:
    for a in answers:
        if a.status != 201:
            assert a.content_type.startswith(PROBLEM), (a.content_type, a.raw)
            assert (a.body["status"], a.body["code"]) == (status, code), a.raw


class BalanceWatcher:
    """Reads a gift card's stored balance from moto in a loop while a burst runs: every value it ever sees
    must be ≥ 0 and never above the one before (takes only go down)."""

    def __init__(self, dynamodb, table: str, code: str):
        self._read = lambda: dynamodb.get_item(
            TableName=table,
            Key={"pk": {"S": f"COUPON#{code}"}, "sk": {"S": "COUPON"}},
            ConsistentRead=True,
            ProjectionExpression="balance",
        )["Item"]["balance"]["N"]
        self.seen: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.seen.append(int(self._read()))
            time.sleep(0.002)

    def __enter__(self) -> BalanceWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(30)
        self.seen.append(int(self._read()))


# -- one FIXED coupon, 64 tills at once ------------------------------------------------------------

FIXED_SEEDS = [401, 402, 403]


@pytest.mark.parametrize("seed", FIXED_SEEDS, ids=[f"seed{s}" for s in FIXED_SEEDS])
def test_64_concurrent_redemptions_of_one_fixed_coupon_redeem_it_exactly_once(
    base_url, keys, dynamodb, main_table, seed
):
    rng = random.Random(seed)
    admin = keys["admin"]
    code, campaign_id = new_coupon(base_url, admin, f"fx-{seed}-{rng.getrandbits(32):08x}")
    merchant, key = merchant_of(rng, keys)
    amount = rng.choice([1000, 5000, 12345])
    bodies = [order_body(code, merchant, f"fx-{seed}-{uuid.uuid4().hex[:8]}-{i}", amount) for i in range(64)]

    answers = burst(base_url, key, bodies, rng)

    assert tally(answers) == {(201, None): 1, (409, "coupon_already_redeemed"): 63}, tally(answers)
    check_refusals(answers, 409, "coupon_already_redeemed")
    [won] = [a for a in answers if a.status == 201]
    assert won.body["order_id"] == bodies[won.index]["order_id"]
    assert (won.body["discount"], won.body["coupon_state_after"]) == (1000, "REDEEMED")

    stored = stored_redemptions(dynamodb, main_table, code)
    assert len(stored) == 1, stored
    assert stored[0]["redemption_id"]["S"] == won.body["redemption_id"]
    assert stored[0]["order_id"]["S"] == won.body["order_id"]
    coupon = get_coupon(base_url, admin, code)
    assert coupon["state"] == "REDEEMED"
    assert [h["event"] for h in coupon["history"]] == ["ISSUED", "REDEEMED"]
    assert coupon["history"][1]["redemption_id"] == won.body["redemption_id"]
    read = requests.get(
        f"{base_url}/v1/redemptions/{won.body['redemption_id']}", headers={"x-api-key": key}, timeout=60
    )
    assert read.status_code == 200 and read.json()["order_id"] == won.body["order_id"], read.text


# -- one gift card holding 40, 64 takes of 1 ------------------------------------------------------

GIFT_SEEDS = [501, 502, 503]


@pytest.mark.parametrize("seed", GIFT_SEEDS, ids=[f"seed{s}" for s in GIFT_SEEDS])
def test_64_concurrent_takes_of_1_from_a_gift_card_holding_40_take_exactly_40(
    base_url, keys, dynamodb, main_table, seed
):
    rng = random.Random(seed)
    admin = keys["admin"]
    code, _ = new_coupon(base_url, admin, f"gc-{seed}-{rng.getrandbits(32):08x}", type="GIFT_CARD", amount=40)
    assert get_coupon(base_url, admin, code)["balance"] == 40
    merchant, key = merchant_of(rng, keys)
    order_amount = rng.choice([1, 100, 9999])
    bodies = [
        order_body(code, merchant, f"gc-{seed}-{uuid.uuid4().hex[:8]}-{i}", order_amount, amount=1)
        for i in range(64)
    ]

    with BalanceWatcher(dynamodb, main_table, code) as watcher:
        answers = burst(base_url, key, bodies, rng)

    # Safety first: never below zero, never one unit sold twice, every take stored, nothing else.
    assert watcher.seen and min(watcher.seen) >= 0, watcher.seen
    assert all(a >= b for a, b in zip(watcher.seen, watcher.seen[1:], strict=False)), watcher.seen
    won = [a.body for a in answers if a.status == 201]
    assert all(w["discount"] == 1 for w in won)
    after = sorted(w["balance_after"] for w in won)
    assert len(set(after)) == len(after) and all(0 <= b < 40 for b in after), after
    coupon = get_coupon(base_url, admin, code)
    assert coupon["balance"] == 40 - len(won) >= 0
    taken = [h for h in coupon_history(base_url, admin, code) if h["event"] == "REDEEMED"]
    assert len(taken) == len(won) and sum(h["amount"] for h in taken) == len(won)
    stored = stored_redemptions(dynamodb, main_table, code)
    assert {s["redemption_id"]["S"] for s in stored} == {w["redemption_id"] for w in won}
    assert sum(int(s["discount"]["N"]) for s in stored) == len(won)

    # Then the outcome: all 40 units taken, once each (40 → 39, ..., 1 → 0), every other till told why.
    assert tally(answers) == {(201, None): 40, (409, "gift_card_balance_exhausted"): 24}, tally(answers)
    check_refusals(answers, 409, "gift_card_balance_exhausted")
    assert after == list(range(40))
    assert {w["coupon_state_after"] for w in won if w["balance_after"] > 0} == {"PARTIALLY_USED"}
    assert [w["coupon_state_after"] for w in won if w["balance_after"] == 0] == ["REDEEMED"]
    assert watcher.seen[-1] == 0
    assert (coupon["balance"], coupon["state"]) == (0, "REDEEMED")


# -- one request retried 20 times at once with one Idempotency-Key --------------------------------

# (seed, coupon type, order amount): a gift card of 5000 is partly used by an order of 1200 and drained
# by one of 8000 (it pays 5000 of it).
REPLAY_CASES = [
    (601, "FIXED", 1200),
    (602, "FIXED", 8000),
    (603, "GIFT_CARD", 1200),
    (604, "GIFT_CARD", 8000),
]


@pytest.mark.parametrize(
    ("seed", "kind", "order_amount"), REPLAY_CASES, ids=[f"seed{s}-{k}-{a}" for s, k, a in REPLAY_CASES]
)
def test_one_request_retried_20_times_at_once_with_one_key_redeems_once_and_answers_20_times_alike(
    base_url, keys, dynamodb, main_table, seed, kind, order_amount
):
    rng = random.Random(seed)
    admin = keys["admin"]
    terms = {"type": "GIFT_CARD", "amount": 5000} if kind == "GIFT_CARD" else {}
    code, _ = new_coupon(base_url, admin, f"id-{seed}-{rng.getrandbits(32):08x}", **terms)
    merchant, key = merchant_of(rng, keys)
    body = order_body(code, merchant, f"id-{seed}-{uuid.uuid4().hex[:8]}", order_amount)
    idempotency_key = f"till-{seed}-{uuid.uuid4()}"

    answers = burst(base_url, key, [body] * 20, rng, headers={"Idempotency-Key": idempotency_key})

    stored = stored_redemptions(dynamodb, main_table, code)
    assert len(stored) == 1, stored
    originals = [a for a in answers if a.status == 201 and not a.replayed]
    assert len(originals) == 1, tally(answers)  # one was answered; the other 19 replay it
    first = originals[0]
    different = Counter((a.status, a.code) for a in answers if (a.status, a.raw) != (first.status, first.raw))
    assert not different, f"answers unlike the first (201): {dict(different)}"  # byte for byte
    assert stored[0]["redemption_id"]["S"] == first.body["redemption_id"]
    coupon = get_coupon(base_url, admin, code)
    assert [h["event"] for h in coupon["history"]] == ["ISSUED", "REDEEMED"]
    if kind == "GIFT_CARD":
        assert coupon["balance"] == 5000 - first.body["discount"] == first.body["balance_after"]
    else:
        assert coupon["state"] == "REDEEMED"

    # The key still answers the same afterwards; another order on it is refused, and stores nothing.
    again = requests.post(
        f"{base_url}/v1/redemptions",
        json=body,
        headers={"x-api-key": key, "Idempotency-Key": idempotency_key},
        timeout=TIMEOUT_S,
    )
    assert (again.status_code, again.content) == (first.status, first.raw)
    other = requests.post(
        f"{base_url}/v1/redemptions",
        json={**body, "order_id": body["order_id"] + "-x"},
        headers={"x-api-key": key, "Idempotency-Key": idempotency_key},
        timeout=TIMEOUT_S,
    )
    assert other.status_code == 422 and other.json()["code"] == "idempotency_key_reused", other.text
    assert len(stored_redemptions(dynamodb, main_table, code)) == 1
