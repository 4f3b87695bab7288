"""Code guessing and dynamic-code brute force stopped (issue #18 point 6): misses counted per caller,
a 429 with Retry-After past the limit; a dynamic code's coupon locked after 5 wrong codes."""

from __future__ import annotations

import base64
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs, urlparse

from coupons.data.risk import GuessGate
from coupons.domain import codes, verification
from coupons.domain.risk import guessing
from tests.integration.conftest import TABLE
from tests.integration.moto_threads import OneRequestAtATime
from tests.integration.test_api_plumbing import assert_problem
from tests.integration.test_redemption_api import coupon, redeem, redemptions_in
from tests.integration.test_redemption_retries import later

PER_IP = guessing.GuessPolicy().per_ip


def test_a_caller_past_its_misses_is_answered_429_even_for_a_real_code_and_other_addresses_are_not(api, keys):
    real, _ = coupon(api, keys)
    tag = codes.tag_of(real)
    merchant = keys["merchant:m-001"]
    for i in range(PER_IP):
        missing = codes.new_code(tag if i % 2 else codes.new_tag())  # an existing campaign's, or none's
        assert_problem(
            redeem(api, merchant, missing, client_ip="198.51.100.9", order_id=f"o-{i}"),
            404,
            "coupon_not_found",
        )
    over = redeem(api, merchant, codes.new_code(tag), client_ip="198.51.100.9")
    assert_problem(over, 429, "too_many_lookups")
    assert 1 <= int(over.headers["Retry-After"]) <= 600 and "field" not in over.json
    assert_problem(redeem(api, merchant, real, client_ip="198.51.100.9"), 429, "too_many_lookups")
    assert redemptions_in(api) == []
    # A mistyped code is no guess; another address of the same key is under its own limit.
    assert_problem(
        redeem(api, merchant, real[:-1] + ("0" if real[-1] != "0" else "1"), client_ip="198.51.100.9"),
        400,
        "code_checksum_invalid",
    )
    assert redeem(api, merchant, real, client_ip="198.51.100.10").status == 201


def test_misses_are_counted_atomically_never_past_the_limit():
    import boto3
    from moto import mock_aws

    from coupons.data.schema import MAIN

    with mock_aws():
        ddb = boto3.client("dynamodb", region_name="eu-west-1")
        ddb.create_table(**MAIN.create_table_kwargs(TABLE))
        gate = GuessGate(OneRequestAtATime(ddb), TABLE)
        policy = guessing.GuessPolicy(per_ip=5)
        counters = guessing.guess_counters(
            policy, at=int(time.time()), api_key_id="k-1", client_ip="10.0.0.1", device_id=None
        )
        with ThreadPoolExecutor(max_workers=8) as pool:
            counted = list(pool.map(lambda _: gate.miss(counters), range(40)))
        assert counted.count(True) == 5
        items = {i["pk"]["S"]: int(i["n"]["N"]) for i in ddb.scan(TableName=TABLE)["Items"]}
        assert items == {"RISKGUESS#api_key#k-1": 5, "RISKGUESS#ip#10.0.0.1": 5}


def dynamic_coupon(api, keys):
    code, _ = coupon(
        api, keys, type="GIFT_CARD", amount=5000, min_order=None, verification_methods=["DYNAMIC_CODE"]
    )
    uri = api.call("POST", f"/v1/coupons/{code}/dynamic-code", api_key=keys["admin"]).json["otpauth_uri"]
    secret_b32 = parse_qs(urlparse(uri).query)["secret"][0]
    return code, base64.b32decode(secret_b32 + "=" * (-len(secret_b32) % 8))


def test_five_wrong_dynamic_codes_lock_the_coupon_even_against_the_right_one_until_the_lock_ends(api, keys):
    code, secret = dynamic_coupon(api, keys)
    merchant = keys["merchant:m-001"]
    now = int(time.time())
    right = verification.totp(secret, now)
    wrong = next(
        c
        for c in ("000000", "111111", "222222")
        if c not in {verification.totp(secret, now + d) for d in (-30, 0, 30)}
    )
    for i in range(4):
        assert_problem(
            redeem(api, merchant, code, dynamic_code=wrong, order_amount=100, order_id=f"o-{i}"),
            422,
            "verification_failed",
        )
    locked = redeem(api, merchant, code, dynamic_code=wrong, order_amount=100, order_id="o-5")
    assert_problem(locked, 429, "dynamic_code_locked")
    assert 890 <= int(locked.headers["Retry-After"]) <= 900
    assert_problem(
        redeem(api, merchant, code, dynamic_code=right, order_amount=100, order_id="o-6"),
        429,
        "dynamic_code_locked",
    )
    assert redemptions_in(api) == []
    later(901)
    after = verification.totp(secret, now + 901)
    assert redeem(api, merchant, code, dynamic_code=after, order_amount=100, order_id="o-7").status == 201
