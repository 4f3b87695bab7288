"""Money and time at the edges (issue #10, point 6): a discount that rounds to nothing is refused, and
every time is stored and answered in one fixed form, so that comparing times as strings is right."""

import re
from datetime import UTC, datetime, timedelta

from tests.integration.test_api_plumbing import assert_problem
from tests.integration.test_redemption_api import ORDER, coupon, redeem

FIXED_FORM = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
PERCENT_5 = {"type": "PERCENT", "amount": None, "min_order": None, "percent_bps": 500, "max_discount": 3000}


def test_a_percent_coupon_whose_discount_rounds_to_zero_is_refused_and_left_untouched(api, keys):
    code, _ = coupon(api, keys, **PERCENT_5)
    before = api.items()
    order = {**ORDER, "code": code, "order_amount": 19}  # 5 % of 19 fen is 0.95: 0 after rounding down
    quote = api.call("POST", "/v1/redemptions/quote", api_key=keys["merchant:m-001"], body=order)
    assert_problem(quote, 422, "discount_zero", field="order_amount")
    assert_problem(
        redeem(api, keys["merchant:m-001"], code, order_amount=19), 422, "discount_zero", "order_amount"
    )
    assert api.items() == before
    assert api.call("GET", f"/v1/coupons/{code}", api_key=keys["admin"]).json["state"] == "ISSUED"
    assert redeem(api, keys["merchant:m-001"], code, order_amount=20).json["discount"] == 1  # 5 % of 20


def test_times_a_client_sends_are_stored_and_answered_in_the_one_fixed_form(api, keys):
    code, campaign_id = coupon(
        api,
        keys,
        valid_days=None,
        valid_from="2026-01-01T08:00:00+08:00",
        valid_until="2099-01-01T00:00:00.5Z",
    )
    campaign = api.call("GET", f"/v1/campaigns/{campaign_id}", api_key=keys["admin"]).json
    assert (campaign["valid_from"], campaign["valid_until"]) == (
        "2026-01-01T00:00:00.000000Z",
        "2099-01-01T00:00:00.500000Z",
    )
    read = api.call("GET", f"/v1/coupons/{code}", api_key=keys["admin"]).json
    assert (read["valid_from"], read["valid_until"]) == (campaign["valid_from"], campaign["valid_until"])
    redeemed = redeem(api, keys["merchant:m-001"], code).json
    rid = redeemed["redemption_id"]
    reversal = api.call("POST", f"/v1/redemptions/{rid}/reversals", api_key=keys["merchant:m-001"]).json
    read = api.call("GET", f"/v1/coupons/{code}", api_key=keys["admin"]).json
    answered = [
        campaign["created_at"],
        campaign["status_changed_at"],
        read["issued_at"],
        redeemed["redeemed_at"],
        reversal["reversed_at"],
        *(event["at"] for event in read["history"]),
    ]
    assert all(FIXED_FORM.match(t) for t in answered), answered


def test_a_coupon_valid_until_half_a_second_after_now_is_still_used_now(api, keys):
    """At 12:00:00 a coupon valid until 12:00:00.5 is valid: the conditions compare the times as strings."""
    import dependencies

    moment = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
    until = (moment + timedelta(milliseconds=500)).isoformat()
    code, _ = coupon(api, keys, valid_days=None, valid_until=until)
    dependencies.redeemer()._clock = lambda: moment.timestamp()
    quote = api.call(
        "POST", "/v1/redemptions/quote", api_key=keys["merchant:m-001"], body={**ORDER, "code": code}
    )
    assert quote.status == 200, quote.raw
    answer = redeem(api, keys["merchant:m-001"], code)
    assert answer.status == 201, answer.raw
