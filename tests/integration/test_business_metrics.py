"""Business metrics: one EMF metric per business event, in the tenant's namespace with its dimension,
emitted by the handlers where the event is known; a replayed answer is not a second event."""

from __future__ import annotations

import json

from tests.integration.conftest import FakeContext, load_clearing_handler
from tests.integration.test_redemption_api import coupon, redeem
from tests.integration.test_write_access import stream_event


def emitted(capsys) -> dict[str, float]:
    """{metric: sum} of the EMF documents printed since the last call, with their namespace checked."""
    found: dict[str, float] = {}
    for line in capsys.readouterr().out.splitlines():
        try:
            document = json.loads(line)
        except ValueError:
            continue
        if not isinstance(document, dict) or "_aws" not in document:
            continue
        (directive,) = document["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == "CouponClearing/test"
        assert sorted(directive["Dimensions"][0]) == ["service", "tenant"]
        assert document["tenant"] == "test"
        for metric in directive["Metrics"]:
            value = document[metric["Name"]]
            found[metric["Name"]] = found.get(metric["Name"], 0) + sum(
                value if isinstance(value, list) else [value]
            )
    return found


def test_a_redemption_counts_once_even_when_replayed_and_its_journal_counts_when_posted(api, keys, capsys):
    code, _ = coupon(api, keys)
    assert emitted(capsys).get("CouponIssued") == 1
    headers = {"Idempotency-Key": "metrics-1"}
    first = redeem(api, keys["merchant:m-001"], code, headers=headers)
    replay = redeem(api, keys["merchant:m-001"], code, headers=headers)
    assert (first.status, replay.status) == (201, 201)
    assert emitted(capsys).get("CouponRedeemed") == 1

    source = next(i for i in api.items() if i["pk"]["S"] == f"REDEMPTION#{first.json['redemption_id']}")
    clearing = load_clearing_handler()
    assert clearing.lambda_handler(stream_event([source]), FakeContext())["batchItemFailures"] == []
    assert clearing.lambda_handler(stream_event([source]), FakeContext())["batchItemFailures"] == []  # again
    assert emitted(capsys).get("JournalPosted") == 1


def test_a_reversal_counts_as_a_reversal(api, keys, capsys):
    code, _ = coupon(api, keys)
    rid = redeem(api, keys["merchant:m-001"], code).json["redemption_id"]
    emitted(capsys)
    path = f"/v1/redemptions/{rid}/reversals"
    assert api.call("POST", path, api_key=keys["merchant:m-001"], body={"amount": 100}).status == 201
    assert emitted(capsys).get("RedemptionReversed") == 1
