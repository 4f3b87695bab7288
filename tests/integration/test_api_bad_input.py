"""Bad input on every route with a body: a 4xx problem naming what is wrong, never a 500, nothing written."""

import json

import pytest

from tests.integration.test_api_plumbing import assert_problem, campaign_body
from tests.integration.test_issuance_api import active_campaign
from tests.integration.test_redemption_api import ORDER, coupon


def _bodies(api, keys):
    """(method, path, key, a valid body) for each route that takes a body."""
    campaign_id = active_campaign(api, keys)
    return [
        ("POST", "/v1/campaigns", keys["admin"], campaign_body()),
        ("POST", f"/v1/campaigns/{campaign_id}/coupons", keys["admin"], {"user_id": "u-9"}),
        ("POST", "/v1/redemptions", keys["merchant:m-001"], {**ORDER, "code": "X"}),
        ("POST", "/v1/redemptions/quote", keys["merchant:m-001"], {**ORDER, "code": "X"}),
        ("POST", "/v1/api-keys", keys["admin"], {"principal": "merchant:m-009"}),
        ("POST", "/v1/settlement-runs", keys["admin"], {"settlement_date": "2020-01-01"}),
        ("POST", "/v1/funding-rules", keys["admin"], {"name": "r"}),
        ("POST", "/v1/coupons/X/void", keys["admin"], {}),
        ("POST", "/v1/redemptions/red_x/reversals", keys["admin"], {}),
    ]


@pytest.mark.parametrize("body", [[{"a": 1}, {"b": 2}], [], "text", 7, True, None], ids=repr)
def test_a_body_that_is_not_a_json_object_is_400_on_every_route_and_writes_nothing(api, keys, body):
    routes = _bodies(api, keys)
    before = len(api.items())
    for method, path, key, valid in routes:
        raw = json.dumps([valid, valid] if isinstance(body, list) and body else body)
        answer = api.call(method, path, api_key=key, raw_body=raw)
        assert_problem(answer, 400, "validation_failed", field="body")
    assert len(api.items()) == before


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/xml", "application/x-www-form-urlencoded", "multipart/form-data"],
)
def test_an_unsupported_content_type_is_415_and_writes_nothing(api, keys, content_type):
    before = len(api.items())
    answer = api.call(
        "POST",
        "/v1/campaigns",
        api_key=keys["admin"],
        raw_body=json.dumps(campaign_body()),
        headers={"Content-Type": content_type},
    )
    assert_problem(answer, 415, "unsupported_media_type", field="Content-Type")
    assert len(api.items()) == before


@pytest.mark.parametrize("content_type", ["APPLICATION/JSON", "Application/Json; charset=UTF-8"])
def test_media_types_are_case_insensitive(api, keys, content_type):
    answer = api.call(
        "POST",
        "/v1/campaigns",
        api_key=keys["admin"],
        raw_body=json.dumps(campaign_body()),
        headers={"Content-Type": content_type},
    )
    assert answer.status == 201, answer.raw


@pytest.mark.parametrize(
    "raw",
    ["[" * 1000 + "]" * 1000, '{"a":' * 1000 + "1" + "}" * 1000, '{"name": ' + "9" * 5000 + "}"],
    ids=["deep-array", "deep-object", "huge-integer"],
)
def test_a_body_too_deep_or_with_a_huge_number_is_400_not_500(api, keys, raw):
    before = len(api.items())
    answer = api.call("POST", "/v1/campaigns", api_key=keys["admin"], raw_body=raw)
    assert_problem(answer, 400, "validation_failed", field="body")
    assert len(api.items()) == before


def test_a_body_above_the_documented_size_is_413(api, keys):
    before = len(api.items())
    body = campaign_body(description="x" * 300_000)
    answer = api.call("POST", "/v1/campaigns", api_key=keys["admin"], body=body)
    assert_problem(answer, 413, "payload_too_large", field="body")
    assert len(api.items()) == before


def test_a_wrong_dynamic_code_is_422_not_401(api, keys):
    code, _ = coupon(
        api, keys, type="GIFT_CARD", amount=5000, min_order=None, verification_methods=["DYNAMIC_CODE"]
    )
    api.call("POST", f"/v1/coupons/{code}/dynamic-code", api_key=keys["admin"])
    before = len(api.items())
    answer = api.call(
        "POST",
        "/v1/redemptions",
        api_key=keys["merchant:m-001"],
        body={**ORDER, "code": code, "dynamic_code": "000000", "order_amount": 100},
    )
    assert_problem(answer, 422, "verification_failed")
    assert len(api.items()) == before


@pytest.mark.parametrize(
    "method, path",
    [
        ("POST", "/v1/api-keys"),
        ("POST", "/v1/settlement-runs"),
        ("POST", "/v1/campaigns"),
        ("POST", "/v1/campaigns/cmp_x/coupons"),
        ("POST", "/v1/funding-rules"),
        ("POST", "/v1/coupons/X/void"),
    ],
)
def test_a_merchant_posting_an_invalid_body_to_a_route_it_may_not_use_gets_403_not_the_fields(
    api, keys, method, path
):
    answer = api.call(method, path, api_key=keys["merchant:m-001"], body={})
    assert_problem(answer, 403, "forbidden")
    assert "errors" not in answer.json


@pytest.mark.parametrize(
    "path, query, field",
    [
        ("/v1/accounts/merchant:m-001/balance", {"as_of": "2026-02-30"}, "as_of"),
        ("/v1/accounts/merchant:m-001/balance", {"as_of": "0000-00-00"}, "as_of"),
        ("/v1/accounts/merchant:m-001/balance", {"as_of": "2026-2-1"}, "as_of"),
        ("/v1/accounts/merchant:m-001/entries", {"from": "2026-13-45"}, "from"),
        ("/v1/accounts/merchant:m-001/entries", {"to": "2025-02-29"}, "to"),
    ],
)
def test_an_impossible_date_in_a_query_is_400_naming_it(api, keys, path, query, field):
    answer = api.call("GET", path, api_key=keys["merchant:m-001"], query=query)
    assert_problem(answer, 400, "validation_failed", field=field)


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"valid_from": "2026-02-30T00:00:00Z", "valid_until": "2026-03-30T00:00:00Z"}, "valid_from"),
        ({"valid_from": "2026-01-01T00:00:00Z", "valid_until": "2026-01-01T25:00:00Z"}, "valid_until"),
        ({"issuance_starts_at": "0000-00-00T00:00:00Z"}, "issuance_starts_at"),
    ],
)
def test_an_impossible_time_in_a_body_is_400_naming_it_and_writes_nothing(api, keys, changes, field):
    before = len(api.items())
    body = {
        k: v
        for k, v in campaign_body(**changes).items()
        if not (k == "valid_days" and "valid_from" in changes)
    }
    answer = api.call("POST", "/v1/campaigns", api_key=keys["admin"], body=body)
    assert_problem(answer, 400, "validation_failed", field=field)
    assert len(api.items()) == before
