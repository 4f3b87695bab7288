"""The API of instant settlement: a merchant's mode (admin sets it, the tenant's default otherwise), a
campaign's (admin sets it), and a party's instant statement of the day (admin, finance, or the party
itself)."""

from __future__ import annotations

import json

import pytest

from coupons.data.instant import InstantStore
from tests.integration.conftest import TABLE
from tests.integration.test_api_plumbing import assert_problem, campaign_body

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


def a_campaign(api, keys, brand="brand-a"):
    answer = api.call(
        "POST", "/v1/campaigns", api_key=keys[f"issuer:{brand}"], body=campaign_body(brand_id=brand)
    )
    assert answer.status == 201, answer.raw
    return answer.json["campaign_id"]


def test_an_admin_makes_a_campaign_instant_and_its_issuer_reads_it(instant_env, api, keys):
    campaign = a_campaign(api, keys)
    path = f"/v1/campaigns/{campaign}/settlement"
    before = api.call("GET", path, api_key=keys["issuer:brand-a"])
    assert before.status == 200 and before.json == {
        "campaign_id": campaign,
        "mode": "SCHEDULED",
        "source": "default",
    }
    answer = api.call("PUT", path, api_key=keys["admin"], body={"mode": "INSTANT"})
    assert answer.status == 200, answer.raw
    assert (answer.json["mode"], answer.json["source"], answer.json["updated_by"]) == (
        "INSTANT",
        "campaign",
        "admin",
    )
    assert api.call("GET", path, api_key=keys["issuer:brand-a"]).json["mode"] == "INSTANT"
    assert InstantStore(api.ddb, TABLE).settings([], [campaign])[1] == {campaign: "INSTANT"}
    # Another brand sees nothing of it; neither the issuer nor a merchant may set it
    assert api.call("GET", path, api_key=keys["issuer:brand-b"]).status == 404
    assert api.call("PUT", path, api_key=keys["issuer:brand-a"], body={"mode": "SCHEDULED"}).status == 403
    assert api.call("GET", path, api_key=keys["merchant:m-001"]).status == 403


def test_a_bad_campaign_mode_is_a_400_naming_the_field_and_writes_nothing(instant_env, api, keys):
    campaign = a_campaign(api, keys)
    path = f"/v1/campaigns/{campaign}/settlement"
    for body in ({"mode": "SOON"}, {}, {"mode": "INSTANT", "extra": 1}, {"mode": 1}):
        answer = api.call("PUT", path, api_key=keys["admin"], body=body)
        assert answer.status == 400 and answer.content_type == "application/problem+json", body
        assert answer.json["code"] == "validation_failed"
    assert "mode" in json.dumps(api.call("PUT", path, api_key=keys["admin"], body={"mode": "SOON"}).json)
    assert InstantStore(api.ddb, TABLE).campaign_mode(campaign) is None
    # An unknown campaign is 404, and nothing is written for it either
    missing = api.call(
        "PUT", "/v1/campaigns/cmp_nope/settlement", api_key=keys["admin"], body={"mode": "INSTANT"}
    )
    assert_problem(missing, 404, "campaign_not_found")
    assert InstantStore(api.ddb, TABLE).campaign_mode("cmp_nope") is None


def test_without_instant_settlement_a_campaign_cannot_be_made_instant(api, keys):
    campaign = a_campaign(api, keys)
    answer = api.call(
        "PUT", f"/v1/campaigns/{campaign}/settlement", api_key=keys["admin"], body={"mode": "INSTANT"}
    )
    assert_problem(answer, 400, "validation_failed", "mode")
    assert InstantStore(api.ddb, TABLE).campaign_mode(campaign) is None
