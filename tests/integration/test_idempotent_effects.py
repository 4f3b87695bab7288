"""Every creating POST under an Idempotency-Key, when the request dies between its effect and the
record that completes the key: the retry gets the first effect's answer, and the effect is stored once.

The failure is injected around the API's DynamoDB client, whatever the mechanism writes: the writes of
the effect go through; the first write that completes the key (or a transaction that carries that
completion) is the last thing the request does — a transaction commits and its answer is lost, any
other write fails — and everything after it fails too (the Lambda is gone)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from botocore.exceptions import ClientError

import coupons.data.clients
from tests.integration.test_api_plumbing import campaign_body
from tests.integration.test_funding_rules_api import SHARES
from tests.integration.test_funding_rules_api import create as create_rule
from tests.integration.test_issuance_api import active_campaign
from tests.integration.test_redemption_api import ORDER, coupon
from tests.integration.test_settlement_runs_api import PAST, settlement  # noqa: F401  (fixture)

OPERATIONS = {
    "PutItem": "put_item",
    "UpdateItem": "update_item",
    "DeleteItem": "delete_item",
    "TransactWriteItems": "transact_write_items",
    "BatchWriteItem": "batch_write_item",
}


def _keys_written(name: str, kwargs: dict) -> list[tuple[str, dict]]:
    """(pk, item or key) of every item a write call touches."""
    if name == "transact_write_items":
        found = []
        for action in kwargs["TransactItems"]:
            ((_, body),) = action.items()
            item = body.get("Item") or body["Key"]
            found.append((item["pk"]["S"], item))
        return found
    if name == "batch_write_item":
        return [
            (r.get("PutRequest", {}).get("Item", r.get("DeleteRequest", {}).get("Key"))["pk"]["S"], {})
            for requests in kwargs["RequestItems"].values()
            for r in requests
        ]
    item = kwargs.get("Item") or kwargs["Key"]
    return [(item["pk"]["S"], item)]


class LostCompletion:
    """Arms the API's DynamoDB client: the request dies between its effect and its completion. Wraps
    the client's one door to DynamoDB (`_make_api_call`): the low-level calls and PynamoDB's all pass it."""

    def __init__(self, client, monkeypatch):
        self.armed, self.dead = True, False
        monkeypatch.setattr(client, "_make_api_call", self._wrap(client._make_api_call))

    def _wrap(self, original: Callable) -> Callable:
        def call(operation: str, kwargs: dict):
            name = OPERATIONS.get(operation)
            if not self.armed or name is None:
                return original(operation, kwargs)
            if self.dead:
                raise _gone(name)
            touched = _keys_written(name, kwargs)
            on_key = [item for pk, item in touched if pk.startswith("IDEMPOTENCY#")]
            claims = name == "put_item" and on_key and on_key[0].get("status", {}).get("S") == "IN_PROGRESS"
            if not on_key or claims:
                return original(operation, kwargs)  # the key's claim, or the effect
            self.dead = True
            if name == "transact_write_items":
                original(
                    operation, kwargs
                )  # the effect committed with its completion; the answer never arrives
            raise _gone(name)

        return call


def _gone(operation: str) -> ClientError:
    return ClientError(
        {"Error": {"Code": "ServiceUnavailable", "Message": "the request died here"}}, operation
    )


@dataclass
class Case:
    path: str
    body: Any
    api_key: str
    status: int
    effects: Callable[[], list[str]]  # ids of the stored effects
    answered: Callable[[Any], list[str]]  # the effects the answer names


def _items(api, prefix: str, sk: str | None = None) -> list[dict]:
    return [
        i
        for i in api.items()
        if i["pk"]["S"].startswith(prefix) and (sk is None or i["sk"]["S"].startswith(sk))
    ]


def campaign_create(api, keys, request) -> Case:
    return Case(
        "/v1/campaigns",
        campaign_body(),
        keys["admin"],
        201,
        lambda: [i["campaign_id"]["S"] for i in _items(api, "CAMPAIGN#")],
        lambda body: [body["campaign_id"]],
    )


def issue_one(api, keys, request) -> Case:
    campaign_id = active_campaign(api, keys, per_user_limit=5)
    return Case(
        f"/v1/campaigns/{campaign_id}/coupons",
        {"user_id": "u-1"},
        keys["admin"],
        201,
        lambda: [i["code"]["S"] for i in _items(api, "COUPON#")],
        lambda body: [body["code"]],
    )


def issue_bulk(api, keys, request) -> Case:
    campaign_id = active_campaign(api, keys, per_user_limit=5)
    return Case(
        f"/v1/campaigns/{campaign_id}/coupons",
        {"user_ids": ["u-1", "u-2", "u-3"]},
        keys["admin"],
        200,
        lambda: sorted(i["code"]["S"] for i in _items(api, "COUPON#")),
        lambda body: sorted(r["code"] for r in body["results"] if r["status"] == "ISSUED"),
    )


def api_key_create(api, keys, request) -> Case:
    return Case(
        "/v1/api-keys",
        {"principal": "merchant:m-009", "description": "asked once"},
        keys["admin"],
        201,
        lambda: [
            i["key_id"]["S"]
            for i in _items(api, "APIKEY#")
            if i.get("description", {}).get("S") == "asked once"
        ],
        lambda body: [body["key_id"]],
    )


def funding_rule_create(api, keys, request) -> Case:
    return Case(
        "/v1/funding-rules",
        {"name": "asked once", "shares": SHARES},
        keys["admin"],
        201,
        lambda: [i["rule_id"]["S"] for i in _items(api, "FUNDINGRULE#", "RULE")],
        lambda body: [body["rule_id"]],
    )


def funding_rule_version(api, keys, request) -> Case:
    rule_id = create_rule(api, keys["admin"]).json["rule_id"]
    return Case(
        f"/v1/funding-rules/{rule_id}/versions",
        {"shares": {"PLATFORM": 4000, "BRAND": 4000, "MERCHANT": 2000}},
        keys["admin"],
        201,
        lambda: [
            i["sk"]["S"]
            for i in _items(api, f"FUNDINGRULE#{rule_id}", "VERSION#")
            if i["sk"]["S"] != "VERSION#000001"
        ],
        lambda body: [f"VERSION#{max(v['version'] for v in body['versions']):06d}"],
    )


def reversal(api, keys, request) -> Case:
    code, _ = coupon(api, keys)
    redeemed = api.call(
        "POST", "/v1/redemptions", api_key=keys["merchant:m-001"], body={**ORDER, "code": code}
    )
    rid = redeemed.json["redemption_id"]

    def effects() -> list[str]:
        (redemption,) = _items(api, f"REDEMPTION#{rid}", "REDEMPTION")
        reversals = [i["reversal_id"]["S"] for i in _items(api, f"REDEMPTION#{rid}", "REVERSAL#")]
        assert int(redemption["refunded_amount"]["N"]) == 3000 * len(reversals)
        return reversals

    return Case(
        f"/v1/redemptions/{rid}/reversals",
        {"amount": 3000},
        keys["merchant:m-001"],
        201,
        effects,
        lambda body: [body["reversal_id"]],
    )


def redemption(api, keys, request) -> Case:
    code, _ = coupon(api, keys)
    return Case(
        "/v1/redemptions",
        {**ORDER, "code": code},
        keys["merchant:m-001"],
        201,
        lambda: [i["redemption_id"]["S"] for i in _items(api, "REDEMPTION#", "REDEMPTION")],
        lambda body: [body["redemption_id"]],
    )


def settlement_run_start(api, keys, request) -> Case:
    runs = request.getfixturevalue("settlement")
    return Case(
        "/v1/settlement-runs",
        {"settlement_date": PAST},
        keys["admin"],
        202,
        lambda: sorted(runs.executions()),
        lambda body: [f"settle-test-{body['business_date']}-{body['attempt']}"] if body["started"] else [],
    )


CASES = [
    campaign_create,
    issue_one,
    issue_bulk,
    api_key_create,
    funding_rule_create,
    funding_rule_version,
    reversal,
    redemption,
    settlement_run_start,
]


def died_then_retried(api, monkeypatch, path: str, body: Any, api_key: str, effects: Callable[[], list]):
    """POSTs under a key, the request dying once its effect is written; then retries twice once the
    dead request's lock has run out. Returns (the effects the dead request left, retry, again)."""
    call = lambda: api.call(  # noqa: E731
        "POST", path, api_key=api_key, body=body, headers={"Idempotency-Key": "asked-once"}
    )
    failure = LostCompletion(coupons.data.clients.dynamodb(), monkeypatch)
    first = call()
    assert first.status == 500, first.raw
    stored = effects()
    assert stored, "the effect was written before the request died"
    failure.armed = False
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 61)
    return stored, call(), call()


@pytest.mark.parametrize("route", CASES, ids=[c.__name__ for c in CASES])
def test_a_retry_after_a_lost_completion_gets_the_first_effects_answer_and_applies_nothing_again(
    api, keys, monkeypatch, request, route
):
    # Given a creating request under a key, which dies once its effect is written
    case = route(api, keys, request)

    # When the client retries with the same key once the dead request's lock has run out
    stored, retry, again = died_then_retried(
        api, monkeypatch, case.path, case.body, case.api_key, case.effects
    )

    # Then it gets the first effect's answer, marked a replay, and nothing was applied twice
    assert case.effects() == stored
    assert retry.status == case.status, retry.raw
    assert retry.headers.get("Idempotent-Replayed") == "true"
    assert case.answered(retry.json) == stored
    assert (again.status, again.raw) == (retry.status, retry.raw)
    assert again.headers.get("Idempotent-Replayed") == "true"


def test_a_bulk_rerun_finds_its_coupons_where_the_users_limit_is_reached_and_the_quota_is_gone(
    api, keys, monkeypatch
):
    # Given a bulk issuance that issued the last two coupons, refused a third user, then died
    campaign_id = active_campaign(api, keys, per_user_limit=1, total_quantity=2)
    codes_in = lambda: sorted(i["code"]["S"] for i in _items(api, "COUPON#"))  # noqa: E731

    stored, retry, _ = died_then_retried(
        api,
        monkeypatch,
        f"/v1/campaigns/{campaign_id}/coupons",
        {"user_ids": ["u-1", "u-2", "u-3"]},
        keys["admin"],
        codes_in,
    )

    # Then the retry answers the first run's coupons, the third user refused as before
    assert retry.status == 200, retry.raw
    assert retry.headers.get("Idempotent-Replayed") == "true"
    assert [(r["user_id"], r["status"], r.get("code")) for r in retry.json["results"]] == [
        ("u-1", "ISSUED", _codes_of(api, "u-1")[0]),
        ("u-2", "ISSUED", _codes_of(api, "u-2")[0]),
        ("u-3", "REFUSED", None),
    ]
    assert codes_in() == stored and len(stored) == 2
    assert retry.json["results"][2]["reason"] == "campaign_exhausted"


def _codes_of(api, user: str) -> list[str]:
    return [i["code"]["S"] for i in _items(api, "COUPON#") if i["user_id"]["S"] == user]
