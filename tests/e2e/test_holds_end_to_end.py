"""Issue #15's acceptance for redemption holds on the stack `make local` serves: hold → capture less than
held → only the captured part clears (the stream's clearing posts the capture, never the hold); hold →
expiry → the every-minute sweep (the stack's own EventBridge rule, fired locally by
infra/local/schedules.py) releases it and the coupon can be used again."""

from __future__ import annotations

import time
import uuid

import pytest

from tests.e2e.support import Api, wait_for_clearing

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]

# The hold's 60 s, then up to a minute until the sweep's next run, and the run itself.
EXPIRY_WAIT_S = 60 + 60 + 30


@pytest.fixture(scope="module")
def api(base_url) -> Api:
    return Api(base_url)


def campaign(api: Api, admin: str, **terms) -> str:
    body = {
        "name": f"e2e holds {uuid.uuid4().hex[:8]}",
        "brand_id": "brand-demo",
        "currency": "CNY",
        "valid_days": 30,
        "total_quantity": 10,
        "hold_seconds": 60,
        **terms,
    }
    campaign_id = api.ok("POST", "/v1/campaigns", admin, body)["campaign_id"]
    api.ok("POST", f"/v1/campaigns/{campaign_id}/activate", admin)
    return campaign_id


def coupon(api: Api, admin: str, campaign_id: str) -> str:
    body = {"user_id": f"u-{uuid.uuid4().hex[:8]}"}
    return api.ok("POST", f"/v1/campaigns/{campaign_id}/coupons", admin, body)["code"]


def order(code: str, amount: int, **extra) -> dict:
    return {
        "code": code,
        "merchant_id": "m-001",
        "store_id": "s-1",
        "order_id": f"o-{uuid.uuid4().hex[:10]}",
        "order_amount": amount,
        "currency": "CNY",
        **extra,
    }


def test_a_gift_card_hold_captured_for_less_clears_only_the_captured_part(api, keys):
    admin, merchant = keys["admin"], keys["merchant:m-001"]
    code = coupon(api, admin, campaign(api, admin, type="GIFT_CARD", amount=20000, hold_seconds=600))
    held = api.ok("POST", "/v1/redemptions", merchant, order(code, 12000, capture=False))
    assert (held["status"], held["held_amount"]) == ("HELD", 12000)
    card = api.ok("GET", f"/v1/coupons/{code}", admin)
    assert (card["balance"], card["available"]) == (20000, 8000)
    rid = held["redemption_id"]
    captured = api.ok("POST", f"/v1/redemptions/{rid}/capture", merchant, {"amount": 7500})
    assert (captured["discount"], captured["released_amount"]) == (7500, 4500)
    clearing = wait_for_clearing(api, admin, rid)
    owed = sum(leg["amount"] for leg in clearing["legs"] if leg["amount"] > 0)
    assert owed == 7500  # the merchant is owed what was captured, not what was held
    card = api.ok("GET", f"/v1/coupons/{code}", admin)
    assert (card["balance"], card["available"]) == (12500, 12500)


def test_an_expired_hold_releases_itself_and_the_coupon_can_be_used_again(api, keys):
    admin, merchant = keys["admin"], keys["merchant:m-001"]
    code = coupon(api, admin, campaign(api, admin, type="FIXED", amount=500))
    held = api.ok("POST", "/v1/redemptions", merchant, order(code, 3000, capture=False))
    assert api.ok("GET", f"/v1/coupons/{code}", admin)["state"] == "HELD"
    refused = api.call("POST", "/v1/redemptions", merchant, order(code, 3000))
    assert refused.status_code == 409 and refused.json()["code"] == "coupon_held"
    deadline = time.monotonic() + EXPIRY_WAIT_S
    while api.ok("GET", f"/v1/coupons/{code}", admin)["state"] != "ISSUED":
        assert time.monotonic() < deadline, f"the hold was not released in {EXPIRY_WAIT_S} s"
        time.sleep(2)
    late = api.call("POST", f"/v1/redemptions/{held['redemption_id']}/capture", merchant)
    assert late.status_code == 409 and late.json()["code"] == "hold_expired"
    used = api.ok("POST", "/v1/redemptions", merchant, order(code, 3000))
    assert used["discount"] == 500
    history = [h["event"] for h in api.ok("GET", f"/v1/coupons/{code}", admin)["history"]]
    assert history == ["ISSUED", "HELD", "HOLD_EXPIRED", "REDEEMED"]
