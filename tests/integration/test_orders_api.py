"""POST /v1/orders/events over the API function on moto: merchants' order outcomes against the
redemptions made for those orders (issue #16 point 8)."""

from __future__ import annotations

import pytest

from tests.integration.test_api_plumbing import assert_problem
from tests.integration.test_redemption_api import coupon, redeem

PATH = "/v1/orders/events"
AT = "2026-03-10T12:00:00+08:00"


def redeemed(api, keys, order_id="o-1", **changes):
    code, _ = coupon(
        api, keys, type="PERCENT", amount=None, min_order=None, percent_bps=1500, max_discount=3000
    )
    answer = redeem(api, keys["merchant:m-001"], code, order_id=order_id, **changes)
    assert answer.status == 201, answer.raw
    return answer.json["redemption_id"], code


def report(api, key, body):
    return api.call("POST", PATH, api_key=key, body=body)


def reversals(api, keys, rid):
    return api.call("GET", f"/v1/redemptions/{rid}/reversals", api_key=keys["admin"]).json["items"]


def test_an_order_cancellation_reverses_its_redemption_in_full_and_a_redelivery_reverses_nothing_again(
    api, keys
):
    rid, code = redeemed(api, keys)  # order 10000, discount 1500
    event = {"order_id": "o-1", "type": "CANCELLED", "occurred_at": AT}

    first = report(api, keys["merchant:m-001"], event)
    again = report(api, keys["merchant:m-001"], event)

    assert first.status == 200, first.raw
    [item] = first.json["items"]
    assert item["recorded"] is True and set(item["effects"]) == {rid}
    [reversal] = reversals(api, keys, rid)
    assert (reversal["refund_amount"], reversal["discount_reversed"]) == (10000, 1500)
    assert item["effects"][rid]["reversal_id"] == reversal["reversal_id"]
    assert again.status == 200 and again.json["items"][0]["recorded"] is False
    assert again.json["items"][0]["effects"] == item["effects"]
    assert len(reversals(api, keys, rid)) == 1
    assert api.call("GET", f"/v1/coupons/{code}", api_key=keys["admin"]).json["state"] == "ISSUED"  # 券回退


def test_a_refund_on_the_order_without_its_reversal_gets_the_proportional_one_once(api, keys):
    rid, _ = redeemed(api, keys)
    refund = {"order_id": "o-1", "type": "REFUNDED", "amount": 4000, "currency": "CNY", "occurred_at": AT,
              "event_id": "pos-77"}  # fmt: skip

    report(api, keys["merchant:m-001"], {"events": [refund]})
    report(api, keys["merchant:m-001"], {"events": [refund]})

    [reversal] = reversals(api, keys, rid)
    assert (reversal["refund_amount"], reversal["discount_reversed"]) == (4000, 600)


def test_a_refund_the_merchant_already_reversed_reverses_nothing_more(api, keys):
    rid, _ = redeemed(api, keys)
    api.call(
        "POST", f"/v1/redemptions/{rid}/reversals", api_key=keys["merchant:m-001"], body={"amount": 4000}
    )

    answer = report(api, keys["merchant:m-001"], {"order_id": "o-1", "type": "REFUNDED", "amount": 4000,
                                                  "currency": "CNY", "occurred_at": AT})  # fmt: skip

    assert answer.status == 200 and answer.json["items"][0]["effects"] == {rid: {}}
    assert len(reversals(api, keys, rid)) == 1


def test_a_paid_amount_other_than_the_redemptions_order_is_an_exception_for_finance(api, keys):
    rid, _ = redeemed(api, keys)

    answer = report(api, keys["merchant:m-001"], {"order_id": "o-1", "type": "PAID", "amount": 9000,
                                                  "currency": "CNY", "occurred_at": AT})  # fmt: skip
    exception_id = answer.json["items"][0]["effects"][rid]["exception_id"]

    finance = api.call("POST", "/v1/api-keys", api_key=keys["admin"], body={"principal": "finance"}).json[
        "api_key"
    ]
    found = api.call("GET", f"/v1/reconciliation/exceptions/{exception_id}", api_key=finance).json
    assert (found["class"], found["amount_at_stake"], found["status"]) == (
        "ORDER_AMOUNT_MISMATCH",
        1000,
        "OPEN",
    )
    assert found["allowed_actions"] == ["ACCEPT_CHANNEL"]
    matching = report(api, keys["merchant:m-001"], {"order_id": "o-1", "type": "PAID", "amount": 10000,
                                                    "currency": "CNY", "occurred_at": AT})  # fmt: skip
    assert matching.json["items"][0]["effects"] == {rid: {}}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"order_id": "o-1", "type": "REFUNDED", "currency": "CNY", "occurred_at": AT}, "amount"),
        ({"order_id": "o-1", "type": "PAID", "amount": 100, "occurred_at": AT}, "currency"),
        ({"order_id": "o-1", "type": "CANCELLED", "amount": 100, "currency": "CNY", "occurred_at": AT}, "amount"),
        ({"events": [{"order_id": "o-1", "type": "CANCELLED", "occurred_at": AT},
                     {"order_id": "o-1", "type": "PAID", "amount": 1, "occurred_at": AT}]}, "events[1].currency"),
        ({"events": [{"order_id": "o-1", "type": "CANCELLED", "occurred_at": AT, "merchant_id": "m-002"}]},
         "events[0].merchant_id"),
    ],
)  # fmt: skip
def test_bad_order_events_are_400_naming_the_field_and_write_nothing(api, keys, body, field):
    rid, _ = redeemed(api, keys)
    before = api.items()

    answer = report(api, keys["merchant:m-001"], body)

    assert_problem(answer, 400, "validation_failed")
    assert answer.json["field"] == field, answer.json
    assert api.items() == before and reversals(api, keys, rid) == []


def test_schema_refusals_name_the_field(api, keys):
    answer = report(api, keys["merchant:m-001"], {"order_id": "o-1", "type": "LOST", "occurred_at": AT})
    assert answer.status == 400 and "type" in str(answer.json)
    unaware = report(
        api,
        keys["merchant:m-001"],
        {"order_id": "o-1", "type": "CANCELLED", "occurred_at": "2026-03-10T12:00:00"},
    )
    assert unaware.status == 400 and "occurred_at" in str(unaware.json)


def test_only_merchants_and_admins_report_and_an_admin_names_the_merchant(api, keys):
    rid, _ = redeemed(api, keys)
    event = {"order_id": "o-1", "type": "CANCELLED", "occurred_at": AT}
    assert report(api, keys["issuer:brand-a"], event).status == 403
    unnamed = report(api, keys["admin"], event)
    assert unnamed.status == 400 and unnamed.json["field"] == "merchant_id"
    named = report(api, keys["admin"], {**event, "merchant_id": "m-001"})
    assert named.status == 200 and set(named.json["items"][0]["effects"]) == {rid}
