"""Quote, redeem, verify, reverse over the API: the checkout path and every way it refuses."""

import time

import pytest

from coupons.domain import verification
from tests.integration.conftest import TABLE, TENANT_KEY
from tests.integration.test_api_plumbing import assert_problem
from tests.integration.test_issuance_api import active_campaign, issue

ORDER = {
    "merchant_id": "m-001",
    "store_id": "s-1",
    "order_id": "o-1",
    "order_amount": 10000,
    "currency": "CNY",
}


def coupon(api, keys, user="u-1", **campaign):
    campaign_id = active_campaign(api, keys, per_user_limit=10, **campaign)
    return issue(api, keys["admin"], campaign_id, user).json["code"], campaign_id


def redeem(api, key, code=None, headers=None, **changes):
    body = {**ORDER, **({"code": code} if code else {}), **changes}
    body = {k: v for k, v in body.items() if v is not None}
    return api.call("POST", "/v1/redemptions", api_key=key, body=body, headers=headers)


def redemptions_in(api):
    # Redemptions (what clearing takes): a hold not captured lives at the same key, kind HOLD.
    return [
        i
        for i in api.items()
        if i["pk"]["S"].startswith("REDEMPTION#")
        and i["sk"]["S"] == "REDEMPTION"
        and i["kind"]["S"] == "REDEMPTION"
    ]


def count_requests(api):
    import dependencies

    calls = []
    dependencies.coupons()._client.meta.events.register(
        "before-call.dynamodb", lambda **kw: calls.append(kw["model"].name)
    )
    return calls


def test_a_fixed_coupon_is_quoted_then_redeemed_once(api, keys):
    code, campaign_id = coupon(api, keys)
    quote = api.call(
        "POST", "/v1/redemptions/quote", api_key=keys["merchant:m-001"], body={**ORDER, "code": code}
    )
    assert quote.status == 200 and (quote.json["discount"], quote.json["payable"]) == (1000, 9000)
    first = redeem(api, keys["merchant:m-001"], code)
    assert first.status == 201, first.raw
    assert (first.json["discount"], first.json["coupon_state_after"]) == (1000, "REDEEMED")
    assert_problem(redeem(api, keys["merchant:m-001"], code, order_id="o-2"), 409, "coupon_already_redeemed")
    assert len(redemptions_in(api)) == 1
    read = api.call("GET", f"/v1/coupons/{code}", api_key=keys["admin"]).json
    assert read["state"] == "REDEEMED" and [h["event"] for h in read["history"]] == ["ISSUED", "REDEEMED"]


def test_the_redemption_record_carries_what_clearing_needs(api, keys):
    shares = {"PLATFORM": 5000, "BRAND": 3000, "MERCHANT": 2000}
    rule_id = api.call(
        "POST",
        "/v1/funding-rules",
        api_key=keys["admin"],
        body={"name": "r", "shares": shares, "brand_ids": ["brand-demo"]},
    ).json["rule_id"]
    code, campaign_id = coupon(api, keys, funding_rule_id=rule_id, settlement_cycle="T+2")
    rid = redeem(api, keys["merchant:m-001"], code).json["redemption_id"]
    record = api.call("GET", f"/v1/redemptions/{rid}", api_key=keys["admin"]).json
    assert record["campaign_id"] == campaign_id and record["brand_id"] == "brand-demo"
    assert (record["funding_rule_id"], record["settlement_cycle"], record["coupon_type"]) == (
        rule_id,
        "T+2",
        "FIXED",
    )
    # Asia/Shanghai is the tenant's zone in these tests: the business date is its calendar date.
    from datetime import datetime
    from zoneinfo import ZoneInfo

    assert record["business_date"] == datetime.now(ZoneInfo("Asia/Shanghai")).date().isoformat()
    assert record["reversals"] == [] and record["refunded_amount"] == 0
    assert record["clearing"] == {"status": "PENDING"}  # no stream in these tests: clearing has not run


def test_a_warm_redemption_is_one_dynamodb_request_and_so_is_its_replay(api, keys):
    code, campaign_id = coupon(api, keys)
    warm = issue(api, keys["admin"], campaign_id, "u-2").json["code"]
    assert redeem(api, keys["merchant:m-001"], warm).status == 201  # campaign and key now cached
    calls = count_requests(api)
    first = redeem(api, keys["merchant:m-001"], code, headers={"Idempotency-Key": "till-1-o-1"})
    assert first.status == 201 and calls == ["TransactWriteItems"]
    calls.clear()
    again = redeem(api, keys["merchant:m-001"], code, headers={"Idempotency-Key": "till-1-o-1"})
    assert (again.status, again.raw) == (first.status, first.raw) and calls == ["TransactWriteItems"]
    calls.clear()
    quote = api.call(
        "POST", "/v1/redemptions/quote", api_key=keys["merchant:m-001"], body={**ORDER, "code": warm}
    )
    assert quote.status == 409 and calls == ["GetItem"]
    calls.clear()
    typo = code[:5] + ("0" if code[5] != "0" else "1") + code[6:]
    assert_problem(redeem(api, keys["merchant:m-001"], typo), 400, "code_checksum_invalid")
    assert calls == []


def test_the_same_key_with_another_body_is_422_and_another_key_409(api, keys):
    code, _ = coupon(api, keys)
    redeem(api, keys["merchant:m-001"], code, headers={"Idempotency-Key": "k1"})
    changed = redeem(api, keys["merchant:m-001"], code, order_id="o-9", headers={"Idempotency-Key": "k1"})
    assert_problem(changed, 422, "idempotency_key_reused")
    assert_problem(
        redeem(api, keys["merchant:m-001"], code, headers={"Idempotency-Key": "k2"}),
        409,
        "coupon_already_redeemed",
    )
    assert len(redemptions_in(api)) == 1


@pytest.mark.parametrize(
    ("campaign", "order", "discount"),
    [
        ({}, 500, 500),  # FIXED never more than the order (its min_order 5000 lifted below)
        (
            {"type": "PERCENT", "amount": None, "min_order": None, "percent_bps": 1500, "max_discount": 3000},
            9999,
            1499,
        ),
        (
            {"type": "PERCENT", "amount": None, "min_order": None, "percent_bps": 1500, "max_discount": 3000},
            50000,
            3000,
        ),
        ({"type": "THRESHOLD", "amount": 2000, "min_order": 10000}, 10000, 2000),
    ],
)
def test_each_types_discount(api, keys, campaign, order, discount):
    if "type" not in campaign:
        campaign = {"min_order": None}
    code, _ = coupon(api, keys, **campaign)
    answer = redeem(api, keys["merchant:m-001"], code, order_amount=order)
    assert answer.status == 201, answer.raw
    assert answer.json["discount"] == discount


@pytest.mark.parametrize(
    ("changes", "status", "problem"),
    [
        ({"order_amount": 4999}, 422, "order_below_minimum"),
        ({"currency": "USD"}, 422, "currency_mismatch"),
    ],
)
def test_terms_refusals_write_nothing(api, keys, changes, status, problem):
    code, _ = coupon(api, keys)
    before = api.items()
    assert_problem(redeem(api, keys["merchant:m-001"], code, **changes), status, problem)
    assert api.items() == before


def test_who_may_redeem_where(api, keys):
    code, _ = coupon(api, keys, eligible_merchants=["m-002"])
    assert_problem(redeem(api, keys["merchant:m-001"], code), 403, "merchant_not_eligible")
    assert_problem(redeem(api, keys["merchant:m-001"], code, merchant_id="m-002"), 403, "forbidden")
    assert_problem(redeem(api, keys["issuer:brand-a"], code, merchant_id="m-002"), 403, "forbidden")
    assert redeem(api, keys["merchant:m-002"], code, merchant_id="m-002").status == 201


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"order_amount": 0}, "order_amount"),
        ({"order_amount": -100}, "order_amount"),
        ({"order_amount": 100.5}, "order_amount"),
        ({"order_amount": "100"}, "order_amount"),
        ({"order_amount": 10**13 + 1}, "order_amount"),
        ({"currency": "XYZ"}, "currency"),
        ({"merchant_id": None}, "merchant_id"),
        ({"store_id": "bad id!"}, "store_id"),
        ({"order_id": None}, "order_id"),
        ({"order_id": "x" * 129}, "order_id"),
        ({"code": None}, "code"),
        ({"qr_token": "abc"}, "code"),  # both a code and a token
        ({"dynamic_code": "12345"}, "dynamic_code"),
        ({"amount": 20000}, "amount"),  # more than the order
        ({"tip": 5}, "tip"),
    ],
)
def test_bad_redemption_input_is_400_naming_the_field_and_writes_nothing(api, keys, changes, field):
    code, _ = coupon(api, keys)
    before = api.items()
    body = {**ORDER, "code": code, **changes}
    body = {k: v for k, v in body.items() if v is not None}
    answer = api.call("POST", "/v1/redemptions", api_key=keys["merchant:m-001"], body=body)
    assert_problem(answer, 400, "validation_failed", field=field)
    assert api.items() == before


def test_a_paused_campaign_expired_or_void_coupon_is_refused_with_its_reason(api, keys):
    code, campaign_id = coupon(api, keys)
    api.call("POST", f"/v1/campaigns/{campaign_id}/pause", api_key=keys["admin"])
    assert_problem(redeem(api, keys["merchant:m-001"], code), 409, "campaign_not_active")
    api.call("POST", f"/v1/campaigns/{campaign_id}/activate", api_key=keys["admin"])
    api.ddb.update_item(
        TableName=TABLE,
        Key={"pk": {"S": f"COUPON#{code}"}, "sk": {"S": "COUPON"}},
        UpdateExpression="SET valid_until = :past",
        ExpressionAttributeValues={":past": {"S": "2020-01-01T00:00:00Z"}},
    )
    assert_problem(redeem(api, keys["merchant:m-001"], code), 409, "coupon_expired")
    other = issue(api, keys["admin"], campaign_id, "u-3").json["code"]
    api.call("POST", f"/v1/coupons/{other}/void", api_key=keys["admin"])
    assert_problem(redeem(api, keys["merchant:m-001"], other), 409, "coupon_void")
    from coupons.domain.codes import new_code

    unknown = new_code("ZZZZ")
    assert_problem(redeem(api, keys["merchant:m-001"], unknown), 404, "coupon_not_found")


def test_a_gift_card_takes_what_the_balance_allows_and_says_what_is_left(api, keys):
    code, _ = coupon(api, keys, type="GIFT_CARD", amount=15000, min_order=None)
    first = redeem(api, keys["merchant:m-001"], code, order_amount=10000)
    assert (first.json["discount"], first.json["balance_after"], first.json["coupon_state_after"]) == (
        10000,
        5000,
        "PARTIALLY_USED",
    )
    second = redeem(api, keys["merchant:m-001"], code, order_amount=8000, order_id="o-2")
    assert (second.json["discount"], second.json["balance_after"], second.json["coupon_state_after"]) == (
        5000,
        0,
        "REDEEMED",
    )
    assert_problem(
        redeem(api, keys["merchant:m-001"], code, order_id="o-3"), 409, "gift_card_balance_exhausted"
    )
    asked = coupon(api, keys, user="u-2", type="GIFT_CARD", amount=15000, min_order=None)[0]
    assert redeem(api, keys["merchant:m-001"], asked, amount=300).json["balance_after"] == 14700


def test_a_qr_token_works_once_for_its_holder_until_it_expires(api, keys):
    code, _ = coupon(api, keys, verification_methods=["QR_TOKEN"])
    token = api.call("POST", f"/v1/coupons/{code}/qr-token", api_key=keys["admin"]).json["qr_token"]
    assert_problem(redeem(api, keys["merchant:m-001"], code), 422, "verification_method_not_allowed")
    answer = redeem(api, keys["merchant:m-001"], qr_token=token)
    assert answer.status == 201 and answer.json["verification_method"] == "QR_TOKEN"
    # The coupon is used up: that is the answer a till needs (the token's reuse is also refused).
    again = redeem(api, keys["merchant:m-001"], qr_token=token, order_id="o-2")
    assert_problem(again, 409, "coupon_already_redeemed")
    tampered = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    assert_problem(
        redeem(api, keys["merchant:m-001"], qr_token=tampered, order_id="o-3"), 422, "verification_failed"
    )
    expired = verification.sign_qr_token(
        TENANT_KEY, code=code, user_id="u-1", expires_at=int(time.time()) - 1, nonce=verification.new_nonce()
    )
    assert_problem(
        redeem(api, keys["merchant:m-001"], qr_token=expired, order_id="o-4"), 422, "verification_failed"
    )


def test_a_qr_token_for_another_holder_is_refused(api, keys):
    code, _ = coupon(api, keys, verification_methods=["QR_TOKEN"])
    forged_owner = verification.sign_qr_token(
        TENANT_KEY,
        code=code,
        user_id="someone-else",
        expires_at=int(time.time()) + 60,
        nonce=verification.new_nonce(),
    )
    assert_problem(redeem(api, keys["merchant:m-001"], qr_token=forged_owner), 422, "verification_failed")
    assert redemptions_in(api) == []


def test_a_dynamic_code_is_handed_out_once_and_each_step_works_once(api, keys):
    from urllib.parse import parse_qs, urlparse

    code, _ = coupon(
        api, keys, type="GIFT_CARD", amount=5000, min_order=None, verification_methods=["DYNAMIC_CODE"]
    )
    uri = api.call("POST", f"/v1/coupons/{code}/dynamic-code", api_key=keys["admin"]).json["otpauth_uri"]
    assert_problem(
        api.call("POST", f"/v1/coupons/{code}/dynamic-code", api_key=keys["admin"]),
        409,
        "dynamic_code_already_provisioned",
    )
    import base64

    secret_b32 = parse_qs(urlparse(uri).query)["secret"][0]
    secret = base64.b32decode(secret_b32 + "=" * (-len(secret_b32) % 8))
    now_code = verification.totp(secret, int(time.time()))
    assert redeem(api, keys["merchant:m-001"], code, dynamic_code=now_code, order_amount=100).status == 201
    reused = redeem(
        api, keys["merchant:m-001"], code, dynamic_code=now_code, order_amount=100, order_id="o-2"
    )
    assert_problem(reused, 422, "verification_failed")
    wrong = "000000" if now_code != "000000" else "111111"
    assert_problem(
        redeem(api, keys["merchant:m-001"], code, dynamic_code=wrong, order_id="o-3"),
        422,
        "verification_failed",
    )


def test_partial_reversals_give_back_the_discount_in_proportion_never_more(api, keys):
    code, _ = coupon(
        api, keys, type="PERCENT", amount=None, min_order=None, percent_bps=1500, max_discount=3000
    )
    rid = redeem(api, keys["merchant:m-001"], code, order_amount=10001).json["redemption_id"]  # discount 1500
    path = f"/v1/redemptions/{rid}/reversals"
    shares = [
        api.call("POST", path, api_key=keys["merchant:m-001"], body={"amount": a}).json["discount_reversed"]
        for a in (3333, 3333)
    ]
    assert shares == [499, 500]  # floor(1500×3333/10001)=499, floor(1500×6666/10001)=999
    assert_problem(
        api.call("POST", path, api_key=keys["merchant:m-001"], body={"amount": 5000}),
        422,
        "reversal_exceeds_remaining",
    )
    rest = api.call("POST", path, api_key=keys["merchant:m-001"]).json
    assert (rest["refund_amount"], rest["discount_reversed"]) == (3335, 501)
    listed = api.call("GET", path, api_key=keys["admin"]).json["items"]
    assert sum(r["discount_reversed"] for r in listed) == 1500
    assert api.call("GET", f"/v1/coupons/{code}", api_key=keys["admin"]).json["state"] == "ISSUED"  # 券回退


def test_a_whole_reversal_can_keep_the_coupon_used(api, keys):
    code, _ = coupon(api, keys)
    rid = redeem(api, keys["merchant:m-001"], code).json["redemption_id"]
    answer = api.call(
        "POST",
        f"/v1/redemptions/{rid}/reversals",
        api_key=keys["merchant:m-001"],
        body={"restore_coupon": False},
    )
    assert answer.status == 201 and answer.json["coupon_restored"] is False
    assert api.call("GET", f"/v1/coupons/{code}", api_key=keys["admin"]).json["state"] == "REDEEMED"


def test_a_gift_card_reversal_restores_its_balance(api, keys):
    code, _ = coupon(api, keys, type="GIFT_CARD", amount=5000, min_order=None)
    rid = redeem(api, keys["merchant:m-001"], code, order_amount=4000).json["redemption_id"]
    api.call(
        "POST", f"/v1/redemptions/{rid}/reversals", api_key=keys["merchant:m-001"], body={"amount": 1000}
    )
    assert api.call("GET", f"/v1/coupons/{code}", api_key=keys["admin"]).json["balance"] == 2000


def test_only_the_redeeming_merchant_sees_or_reverses_its_redemption(api, keys):
    code, _ = coupon(api, keys)
    rid = redeem(api, keys["merchant:m-001"], code).json["redemption_id"]
    assert_problem(
        api.call("GET", f"/v1/redemptions/{rid}", api_key=keys["merchant:m-002"]), 404, "redemption_not_found"
    )
    answer = api.call("POST", f"/v1/redemptions/{rid}/reversals", api_key=keys["merchant:m-002"])
    assert_problem(answer, 404, "redemption_not_found")
    assert api.call("GET", f"/v1/redemptions/{rid}", api_key=keys["merchant:m-001"]).status == 200
    assert_problem(
        api.call("GET", f"/v1/redemptions/{rid}", api_key=keys["issuer:brand-a"]), 404, "redemption_not_found"
    )


def test_a_reversal_replays_under_its_idempotency_key(api, keys):
    code, _ = coupon(api, keys)
    rid = redeem(api, keys["merchant:m-001"], code).json["redemption_id"]
    args = {
        "api_key": keys["merchant:m-001"],
        "body": {"amount": 100},
        "headers": {"Idempotency-Key": "refund-1"},
    }
    first = api.call("POST", f"/v1/redemptions/{rid}/reversals", **args)
    again = api.call("POST", f"/v1/redemptions/{rid}/reversals", **args)
    assert (again.status, again.raw) == (first.status, first.raw)
    assert len(api.call("GET", f"/v1/redemptions/{rid}/reversals", api_key=keys["admin"]).json["items"]) == 1


def test_a_qr_token_cannot_be_used_twice_even_where_the_card_has_balance_left(api, keys):
    code, _ = coupon(
        api, keys, type="GIFT_CARD", amount=5000, min_order=None, verification_methods=["QR_TOKEN"]
    )
    token = api.call("POST", f"/v1/coupons/{code}/qr-token", api_key=keys["admin"]).json["qr_token"]
    assert redeem(api, keys["merchant:m-001"], qr_token=token, order_amount=100).status == 201
    again = redeem(api, keys["merchant:m-001"], qr_token=token, order_amount=100, order_id="o-2")
    assert_problem(again, 422, "verification_failed")
    assert len(redemptions_in(api)) == 1
