"""Idempotency-Key on every POST the document lists it for: the first answer replayed, the key checked alike."""

import pytest

from tests.integration.test_api_plumbing import assert_problem, campaign_body
from tests.integration.test_funding_rules_api import create as create_rule
from tests.integration.test_issuance_api import active_campaign, issue, new_campaign
from tests.integration.test_redemption_api import ORDER, coupon


def twice(api, key, path, body=None, idem="k-1"):
    headers = {"Idempotency-Key": idem}
    first = api.call("POST", path, api_key=key, body=body, headers=headers)
    second = api.call("POST", path, api_key=key, body=body, headers=headers)
    return first, second


def assert_replayed(first, second, status):
    assert first.status == status, first.raw
    assert (second.status, second.raw) == (first.status, first.raw)
    assert second.headers.get("Idempotent-Replayed") == "true"
    assert "Idempotent-Replayed" not in first.headers


@pytest.mark.parametrize("action", ["activate", "pause", "end"])
def test_a_campaign_transition_twice_under_one_key_answers_the_first_answer(api, keys, action):
    campaign_id = new_campaign(api, keys["admin"]) if action == "activate" else active_campaign(api, keys)
    first, second = twice(api, keys["admin"], f"/v1/campaigns/{campaign_id}/{action}")
    assert_replayed(first, second, 200)


def test_a_void_twice_under_one_key_answers_the_first_answer(api, keys):
    code, _ = coupon(api, keys)
    first, second = twice(api, keys["admin"], f"/v1/coupons/{code}/void", body={"reason": "x"})
    assert_replayed(first, second, 200)


def test_a_dynamic_code_replayed_gives_the_same_secret_and_its_record_keeps_no_secret(api, keys):
    code, _ = coupon(
        api, keys, type="GIFT_CARD", amount=5000, min_order=None, verification_methods=["DYNAMIC_CODE"]
    )
    first, second = twice(api, keys["admin"], f"/v1/coupons/{code}/dynamic-code")
    assert_replayed(first, second, 201)
    assert first.json["otpauth_uri"].startswith("otpauth://totp/")
    stored = [i for i in api.items() if i["pk"]["S"].startswith("IDEMPOTENCY#")]
    assert stored and all("secret=" not in str(i) for i in stored)
    other_key = api.call(
        "POST", f"/v1/coupons/{code}/dynamic-code", api_key=keys["admin"], headers={"Idempotency-Key": "k-2"}
    )
    assert_problem(other_key, 409, "dynamic_code_already_provisioned")


def test_a_qr_token_replayed_is_the_same_token(api, keys):
    code, _ = coupon(api, keys, verification_methods=["QR_TOKEN"])
    first, second = twice(api, keys["admin"], f"/v1/coupons/{code}/qr-token")
    assert_replayed(first, second, 201)


def test_an_approval_replayed_is_the_first_answer(api, keys):
    rule_id = create_rule(api, keys["admin"]).json["rule_id"]
    first, second = twice(api, keys["admin"], f"/v1/funding-rules/{rule_id}/versions/1/approve")
    assert_replayed(first, second, 200)


def _listed_posts(api, keys):
    campaign_id = active_campaign(api, keys)
    code = issue(api, keys["admin"], campaign_id, "u-2").json["code"]
    return [
        ("/v1/campaigns", keys["admin"], campaign_body()),
        (f"/v1/campaigns/{campaign_id}/pause", keys["admin"], None),
        (f"/v1/campaigns/{campaign_id}/coupons", keys["admin"], {"user_id": "u-3"}),
        (f"/v1/coupons/{code}/void", keys["admin"], None),
        (f"/v1/coupons/{code}/qr-token", keys["admin"], None),
        (f"/v1/coupons/{code}/dynamic-code", keys["admin"], None),
        ("/v1/redemptions", keys["merchant:m-001"], {**ORDER, "code": code}),
        ("/v1/redemptions/red_x/reversals", keys["merchant:m-001"], None),
        ("/v1/api-keys", keys["admin"], {"principal": "merchant:m-009"}),
        ("/v1/settlement-runs", keys["admin"], {"settlement_date": "2020-01-01"}),
        ("/v1/funding-rules", keys["admin"], {"name": "r"}),
    ]


@pytest.mark.parametrize("bad", ["", " ", "x" * 256], ids=["empty", "space", "256-chars"])
def test_a_bad_idempotency_key_is_400_on_every_post_that_lists_it_and_writes_nothing(api, keys, bad):
    posts = _listed_posts(api, keys)
    doc = api.call("GET", "/v1/openapi.json").json
    listed = {
        path
        for path, ops in doc["paths"].items()
        if any(p["name"] == "Idempotency-Key" for p in ops.get("post", {}).get("parameters", []))
    }
    before = len(api.items())
    for path, key, body in posts:
        answer = api.call("POST", path, api_key=key, body=body, headers={"Idempotency-Key": bad})
        assert_problem(answer, 400, "validation_failed", field="Idempotency-Key")
    assert len(api.items()) == before
    assert len(listed) >= len(posts)
