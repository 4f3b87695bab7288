"""The API of instant settlement: a merchant's mode (admin sets it, the tenant's default otherwise) and a
party's instant statement of the day (admin, finance, or the party itself)."""

from __future__ import annotations

import json

import pytest

from coupons.data.instant import InstantStore
from tests.integration.conftest import TABLE

TERMS = json.dumps({"default_mode": "SCHEDULED", "window_seconds": 60})


@pytest.fixture
def instant_env(monkeypatch):
    monkeypatch.setenv("INSTANT_SETTLEMENT", TERMS)


def test_an_admin_sets_a_merchant_instant_and_the_merchant_reads_it(instant_env, api, keys):
    path = "/v1/merchants/m-001/settlement"
    before = api.call("GET", path, api_key=keys["merchant:m-001"])
    assert before.status == 200 and before.json == {
        "merchant_id": "m-001",
        "mode": "SCHEDULED",
        "source": "tenant",
    }
    answer = api.call("PUT", path, api_key=keys["admin"], body={"mode": "INSTANT"})
    assert answer.status == 200 and (answer.json["mode"], answer.json["source"]) == ("INSTANT", "merchant")
    assert api.call("GET", path, api_key=keys["merchant:m-001"]).json["mode"] == "INSTANT"
    # Another merchant sees nothing of it; a merchant may not set its own mode
    assert api.call("GET", path, api_key=keys["merchant:m-002"]).status == 404
    assert api.call("PUT", path, api_key=keys["merchant:m-001"], body={"mode": "SCHEDULED"}).status == 403


def test_a_bad_mode_is_a_400_naming_the_field_and_writes_nothing(instant_env, api, keys):
    answer = api.call("PUT", "/v1/merchants/m-001/settlement", api_key=keys["admin"], body={"mode": "SOON"})
    assert answer.status == 400 and answer.content_type == "application/problem+json"
    assert "mode" in json.dumps(answer.json)
    assert InstantStore(api.ddb, TABLE).mode("m-001") is None


def test_without_instant_settlement_a_merchant_cannot_be_made_instant(api, keys):
    answer = api.call(
        "PUT", "/v1/merchants/m-001/settlement", api_key=keys["admin"], body={"mode": "INSTANT"}
    )
    assert answer.status == 400 and answer.json["code"] == "validation_failed"
    assert InstantStore(api.ddb, TABLE).mode("m-001") is None


def test_the_instant_statement_lists_the_days_payouts_and_totals_them(instant_env, api, keys):
    store = InstantStore(api.ddb, TABLE)
    for i, amount in enumerate((150, 90)):
        store.append_statement(
            {"party": "merchant:m-001", "day": "2026-03-10", "payout_id": f"ipo_20260310010000_x_{i + 1}",
             "currency": "CNY", "amount": amount, "transferred": amount, "fee": 0, "postings": 3,
             "instruction_id": f"ins_{i}", "channel_reference": f"SIMBANK-{i}",
             "window": "2026-03-10T01:00:00Z", "sent_at": f"2026-03-10T01:01:0{i}Z"}
        )  # fmt: skip
    path = "/v1/instant-statements/merchant:m-001/2026-03-10"
    answer = api.call("GET", path, api_key=keys["merchant:m-001"])
    assert answer.status == 200
    assert [p["amount"] for p in answer.json["payouts"]] == [150, 90]
    assert answer.json["totals"] == [
        {"currency": "CNY", "amount": 240, "transferred": 240, "fee": 0, "payouts": 2, "postings": 6}
    ]
    assert api.call("GET", path, api_key=keys["merchant:m-002"]).status == 404
    assert api.call("GET", path, api_key=keys["admin"]).status == 200
    assert (
        api.call("GET", "/v1/instant-statements/merchant:m-001/tomorrow", api_key=keys["admin"]).status == 400
    )
