"""Redemption holds over the API: hold at checkout ("capture": false), capture (all, or less of a gift
card), void, expiry; what clears; one DynamoDB request each; bad input refused naming the field."""

import time

import pytest

from coupons.data.idempotency import IdempotencyStore
from coupons.data.redemption_holds import RedemptionHoldStore
from coupons.services.redemption_holds import RedemptionHolds
from tests.integration.conftest import TABLE, TENANT_KEY
from tests.integration.test_api_plumbing import assert_problem
from tests.integration.test_issuance_api import issue
from tests.integration.test_redemption_api import ORDER, count_requests, coupon, redeem, redemptions_in

MERCHANT = "merchant:m-001"


def hold(api, keys, code, **changes):
    return redeem(api, keys[MERCHANT], code, capture=False, **changes)


def capture(api, keys, rid, headers=None, **body):
    return api.call(
        "POST", f"/v1/redemptions/{rid}/capture", api_key=keys[MERCHANT], body=body or None, headers=headers
    )


def void(api, keys, rid, headers=None):
    return api.call("POST", f"/v1/redemptions/{rid}/void", api_key=keys[MERCHANT], headers=headers)


def holds_over(client, *, later: float = 0.0) -> RedemptionHolds:
    """The hold service as the expiry sweep makes it, its clock `later` seconds ahead."""
    return RedemptionHolds(
        RedemptionHoldStore(client, TABLE),
        IdempotencyStore(client, TABLE),
        time_zone="Asia/Shanghai",
        idempotency_ttl_seconds=3600,
        clock=lambda: time.time() + later,
        tenant_key=lambda: TENANT_KEY,
    )


def coupon_of(api, keys, code):
    return api.call("GET", f"/v1/coupons/{code}", api_key=keys["admin"]).json


def test_a_held_coupon_cannot_be_redeemed_or_held_again_and_its_capture_is_the_redemption(api, keys):
    code, _ = coupon(api, keys)
    held = hold(api, keys, code)
    assert held.status == 201, held.raw
    assert (held.json["status"], held.json["held_amount"], held.json["coupon_state_after"]) == (
        "HELD",
        1000,
        "HELD",
    )
    assert held.json["hold_expires_at"] > held.json["held_at"]
    assert coupon_of(api, keys, code)["state"] == "HELD"
    assert redemptions_in(api) == []  # nothing to clear yet
    assert_problem(redeem(api, keys[MERCHANT], code, order_id="o-2"), 409, "coupon_held")
    assert_problem(hold(api, keys, code, order_id="o-3"), 409, "coupon_held")
    rid = held.json["redemption_id"]
    captured = capture(api, keys, rid)
    assert captured.status == 200, captured.raw
    assert (captured.json["status"], captured.json["discount"], captured.json["released_amount"]) == (
        "CAPTURED",
        1000,
        0,
    )
    assert len(redemptions_in(api)) == 1 and coupon_of(api, keys, code)["state"] == "REDEEMED"
    assert_problem(capture(api, keys, rid), 409, "hold_not_active")
    assert_problem(void(api, keys, rid), 409, "hold_not_active")
    read = api.call("GET", f"/v1/redemptions/{rid}", api_key=keys["admin"]).json
    assert read["discount"] == 1000 and read["hold"]["hold_status"] == "CAPTURED"


def test_a_voided_hold_gives_the_coupon_back_for_use(api, keys):
    code, _ = coupon(api, keys)
    rid = hold(api, keys, code).json["redemption_id"]
    voided = void(api, keys, rid)
    assert voided.status == 200 and (voided.json["status"], voided.json["released_amount"]) == (
        "VOIDED",
        1000,
    )
    assert coupon_of(api, keys, code)["state"] == "ISSUED"
    assert_problem(capture(api, keys, rid), 409, "hold_not_active")
    assert redeem(api, keys[MERCHANT], code, order_id="o-2").status == 201
    assert [h["event"] for h in coupon_of(api, keys, code)["history"]] == [
        "ISSUED",
        "HELD",
        "HOLD_VOIDED",
        "REDEEMED",
    ]


def test_a_gift_card_hold_reserves_its_amount_and_a_smaller_capture_releases_the_rest(api, keys):
    code, _ = coupon(api, keys, type="GIFT_CARD", amount=15000, min_order=None)
    held = hold(api, keys, code, order_amount=10000)
    assert held.status == 201 and held.json["held_amount"] == 10000
    card = coupon_of(api, keys, code)
    assert (card["balance"], card["available"]) == (15000, 5000)
    # Only what is not held can be taken: 5000 of an order of 8000.
    other = redeem(api, keys[MERCHANT], code, order_id="o-2", order_amount=8000)
    assert other.status == 201 and other.json["discount"] == 5000
    assert_problem(hold(api, keys, code, order_id="o-3"), 409, "gift_card_balance_exhausted")
    captured = capture(api, keys, held.json["redemption_id"], amount=6000)
    assert captured.status == 200, captured.raw
    assert (captured.json["discount"], captured.json["released_amount"]) == (6000, 4000)
    card = coupon_of(api, keys, code)
    assert (card["balance"], card["available"], card["state"]) == (4000, 4000, "PARTIALLY_USED")
    assert sorted(r["discount"]["N"] for r in redemptions_in(api)) == ["5000", "6000"]


def test_a_gift_card_capture_that_drains_the_card_leaves_it_redeemed(api, keys):
    code, _ = coupon(api, keys, type="GIFT_CARD", amount=5000, min_order=None)
    rid = hold(api, keys, code, order_amount=9000).json["redemption_id"]  # holds all there is
    captured = capture(api, keys, rid)
    assert captured.status == 200 and captured.json["discount"] == 5000
    card = coupon_of(api, keys, code)
    assert (card["balance"], card["available"], card["state"]) == (0, 0, "REDEEMED")


def test_capturing_more_than_held_or_part_of_a_single_use_hold_is_refused(api, keys):
    code, _ = coupon(api, keys, type="GIFT_CARD", amount=5000, min_order=None)
    rid = hold(api, keys, code, order_amount=3000).json["redemption_id"]
    assert_problem(capture(api, keys, rid, amount=3001), 409, "capture_exceeds_hold")
    single, _ = coupon(api, keys, user="u-2")
    srid = hold(api, keys, single).json["redemption_id"]
    assert_problem(capture(api, keys, srid, amount=999), 409, "partial_capture_not_allowed")
    assert coupon_of(api, keys, single)["state"] == "HELD"


def test_a_capture_after_the_hold_expired_is_refused_and_the_sweep_releases_it_once(api, keys):
    code, _ = coupon(api, keys, hold_seconds=60)
    rid = hold(api, keys, code).json["redemption_id"]
    import dependencies

    dependencies.redemption_holds()._clock = lambda: time.time() + 61
    assert_problem(capture(api, keys, rid), 409, "hold_expired")
    assert_problem(void(api, keys, rid), 409, "hold_expired")
    assert holds_over(api.ddb, later=30).release_due() == {"released": 0, "skipped": 0}  # not due yet
    assert holds_over(api.ddb, later=61).release_due() == {"released": 1, "skipped": 0}
    assert holds_over(api.ddb, later=62).release_due() == {"released": 0, "skipped": 0}
    assert coupon_of(api, keys, code)["state"] == "ISSUED"
    assert_problem(capture(api, keys, rid), 409, "hold_expired")
    assert redeem(api, keys[MERCHANT], code, order_id="o-2").status == 201


def test_a_gift_card_hold_released_by_expiry_is_available_again(api, keys):
    code, _ = coupon(api, keys, type="GIFT_CARD", amount=5000, min_order=None, hold_seconds=60)
    hold(api, keys, code, order_amount=2000)
    assert coupon_of(api, keys, code)["available"] == 3000
    assert holds_over(api.ddb, later=120).release_due()["released"] == 1
    card = coupon_of(api, keys, code)
    assert (card["balance"], card["available"]) == (5000, 5000)


def test_hold_capture_and_void_are_each_one_request_with_an_idempotency_key(api, keys):
    single, campaign_id = coupon(api, keys)
    gift, _ = coupon(api, keys, user="u-2", type="GIFT_CARD", amount=15000, min_order=None)
    redeem(api, keys[MERCHANT], single, order_id="warm")  # a warm container: campaigns cached
    redeem(api, keys[MERCHANT], gift, order_id="warm", order_amount=100)
    other = issue(api, keys["admin"], campaign_id, "u-3").json["code"]
    calls = count_requests(api)
    rid = hold(api, keys, other, headers={"Idempotency-Key": "h-1"}).json["redemption_id"]
    assert calls == ["TransactWriteItems"], calls
    calls.clear()
    grid = hold(api, keys, gift, order_id="g", headers={"Idempotency-Key": "h-2"}).json["redemption_id"]
    assert calls == ["TransactWriteItems"], calls
    calls.clear()
    assert capture(api, keys, rid, headers={"Idempotency-Key": "c-1"}).status == 200
    assert calls == ["TransactWriteItems"], calls  # the hold's id says what a read used to
    calls.clear()
    assert void(api, keys, grid, headers={"Idempotency-Key": "v-1"}).status == 200
    assert calls == ["TransactWriteItems"], calls


def test_capture_and_void_are_each_one_request_on_the_happy_path_idempotency_key_included(api, keys):
    # Issue #15 point 2: hold, capture and void are each ONE DynamoDB request on the happy path.
    single, campaign_id = coupon(api, keys)
    gift, _ = coupon(api, keys, user="u-2", type="GIFT_CARD", amount=15000, min_order=None)
    redeem(api, keys[MERCHANT], single, order_id="warm")  # a warm container: campaigns cached
    redeem(api, keys[MERCHANT], gift, order_id="warm", order_amount=100)
    to_capture, to_void = (issue(api, keys["admin"], campaign_id, u).json["code"] for u in ("u-3", "u-4"))
    rids = [
        hold(api, keys, to_capture, headers={"Idempotency-Key": "h-1"}).json["redemption_id"],
        hold(api, keys, to_void, order_id="o-v", headers={"Idempotency-Key": "h-2"}).json["redemption_id"],
        hold(api, keys, gift, order_id="g-1", headers={"Idempotency-Key": "h-3"}).json["redemption_id"],
        hold(api, keys, gift, order_id="g-2", headers={"Idempotency-Key": "h-4"}).json["redemption_id"],
    ]
    calls = count_requests(api)
    ends = [
        capture(api, keys, rids[0], headers={"Idempotency-Key": "c-1"}),
        void(api, keys, rids[1], headers={"Idempotency-Key": "v-1"}),
        capture(api, keys, rids[2], headers={"Idempotency-Key": "c-2"}, amount=2500),  # less than held
        void(api, keys, rids[3], headers={"Idempotency-Key": "v-2"}),
    ]
    assert [answer.status for answer in ends] == [200] * 4, [answer.raw for answer in ends]
    assert calls == ["TransactWriteItems"] * 4, calls


def test_a_retried_capture_gets_its_first_answer_and_captures_nothing_again(api, keys):
    code, _ = coupon(api, keys)
    rid = hold(api, keys, code).json["redemption_id"]
    first = capture(api, keys, rid, headers={"Idempotency-Key": "cap-1"})
    again = capture(api, keys, rid, headers={"Idempotency-Key": "cap-1"})
    assert again.status == 200 and again.headers.get("Idempotent-Replayed") == "true"
    assert again.json == first.json and len(redemptions_in(api)) == 1
    assert_problem(
        capture(api, keys, rid, headers={"Idempotency-Key": "cap-1"}, amount=5), 422, "idempotency_key_reused"
    )


def test_only_the_captured_part_clears(api, keys, stream, clearing):
    code, _ = coupon(api, keys, type="GIFT_CARD", amount=15000, min_order=None)
    rid = hold(api, keys, code, order_amount=10000).json["redemption_id"]
    assert clearing(stream.batch()) == []
    assert (
        api.call("GET", f"/v1/redemptions/{rid}", api_key=keys["admin"]).json["clearing"]["status"]
        == "PENDING"
    )
    capture(api, keys, rid, amount=2500)
    batch = stream.batch()
    assert clearing(batch) == [] and clearing(batch) == []  # a redelivery posts nothing more
    cleared = api.call("GET", f"/v1/redemptions/{rid}", api_key=keys["admin"]).json["clearing"]
    assert cleared["status"] == "CLEARED"
    assert sum(leg["amount"] for leg in cleared["legs"] if leg["amount"] > 0) == 2500


@pytest.mark.parametrize(
    "path, body, field",
    [
        ("/v1/redemptions", {**ORDER, "code": "X", "capture": "no"}, "capture"),
        ("capture", {"amount": 0}, "amount"),
        ("capture", {"amount": 1.5}, "amount"),
        ("capture", {"amount": "10"}, "amount"),
        ("capture", {"extra": 1}, "extra"),
        ("void", {"amount": 1}, "amount"),
    ],
)
def test_bad_input_on_the_hold_fields_is_a_400_naming_the_field_and_writes_nothing(
    api, keys, path, body, field
):
    code, _ = coupon(api, keys)
    rid = hold(api, keys, code).json["redemption_id"]
    before = api.items()
    target = path if path.startswith("/") else f"/v1/redemptions/{rid}/{path}"
    answer = api.call("POST", target, api_key=keys[MERCHANT], body=body)
    assert_problem(answer, 400, "validation_failed")
    assert answer.json["field"] == field
    assert api.items() == before


@pytest.mark.parametrize("seconds", [59, 7 * 24 * 3600 + 1, "60", 60.5])
def test_a_campaign_hold_time_outside_1_minute_to_7_days_is_a_400_naming_it(api, keys, seconds):
    from tests.integration.test_api_plumbing import campaign_body

    body = {k: v for k, v in campaign_body(hold_seconds=seconds).items() if v is not None}
    answer = api.call("POST", "/v1/campaigns", api_key=keys["admin"], body=body)
    assert_problem(answer, 400, "validation_failed")
    assert answer.json["field"] == "hold_seconds"


def test_a_merchant_captures_and_voids_only_its_own_holds(api, keys):
    code, _ = coupon(api, keys)
    rid = hold(api, keys, code).json["redemption_id"]
    for action in ("capture", "void"):
        answer = api.call("POST", f"/v1/redemptions/{rid}/{action}", api_key=keys["merchant:m-002"])
        assert_problem(answer, 404, "redemption_not_found")
        answer = api.call("POST", f"/v1/redemptions/{rid}/{action}", api_key=keys["issuer:brand-a"])
        assert answer.status == 403
    plain, _ = coupon(api, keys, user="u-2")
    prid = redeem(api, keys[MERCHANT], plain).json["redemption_id"]
    assert_problem(capture(api, keys, prid), 409, "not_a_hold")


def test_a_gift_card_refund_while_a_hold_is_live_comes_back_to_what_is_available(api, keys):
    code, _ = coupon(api, keys, type="GIFT_CARD", amount=15000, min_order=None)
    used = redeem(api, keys[MERCHANT], code, order_amount=5000).json["redemption_id"]
    hold(api, keys, code, order_id="o-h", order_amount=4000)
    refund = api.call(
        "POST", f"/v1/redemptions/{used}/reversals", api_key=keys[MERCHANT], body={"amount": 2000}
    )
    assert refund.status == 201, refund.raw
    card = coupon_of(api, keys, code)
    assert (card["balance"], card["available"]) == (12000, 8000)  # 15000 − 5000 + 2000; − 4000 held


@pytest.mark.parametrize("action", ["capture", "void"])
def test_a_forged_or_malformed_hold_id_is_a_404_naming_redemption_id_and_writes_nothing(api, keys, action):
    code, _ = coupon(api, keys)
    rid = hold(api, keys, code).json["redemption_id"]
    changed = rid[:20] + ("A" if rid[20] != "A" else "B") + rid[21:]
    before = api.items()
    for forged in (
        changed,
        "hld_" + "A" * 70,
        "hld_x",
        "rdm_NOSUCHREDEMPTION",
        "not-an-id",
        "hld_" + "A" * 400,
    ):
        answer = api.call("POST", f"/v1/redemptions/{forged}/{action}", api_key=keys[MERCHANT])
        assert_problem(answer, 404, "redemption_not_found")
        assert answer.json["field"] == "redemption_id"
    assert api.items() == before
    assert coupon_of(api, keys, code)["state"] == "HELD"


ANSWERED = {
    "capture": {
        "redemption_id", "status", "code", "coupon_type", "currency", "discount", "held_amount",
        "captured_amount", "released_amount", "hold_expires_at", "redeemed_at", "business_date",
        "coupon_state_after", "closed_at",
    },
    "void": {
        "redemption_id", "status", "code", "coupon_type", "currency", "discount", "held_amount",
        "released_amount", "hold_expires_at", "closed_at",
    },
}  # fmt: skip


@pytest.mark.parametrize("action", ["capture", "void"])
def test_an_admins_call_and_a_merchants_are_answered_alike_the_admins_through_one_read(api, keys, action):
    single, campaign_id = coupon(api, keys)
    redeem(api, keys[MERCHANT], single, order_id="warm")
    by_merchant, by_admin = (issue(api, keys["admin"], campaign_id, u).json["code"] for u in ("u-3", "u-4"))
    rid = hold(api, keys, by_merchant, order_id="o-m").json["redemption_id"]
    arid = hold(api, keys, by_admin, order_id="o-a").json["redemption_id"]
    calls = count_requests(api)
    mine = api.call("POST", f"/v1/redemptions/{rid}/{action}", api_key=keys[MERCHANT])
    assert mine.status == 200 and calls == ["TransactWriteItems"], (mine.raw, calls)
    calls.clear()
    admins = api.call("POST", f"/v1/redemptions/{arid}/{action}", api_key=keys["admin"])
    assert admins.status == 200 and calls == ["GetItem", "TransactWriteItems"], (admins.raw, calls)
    assert set(mine.json) == set(admins.json) == ANSWERED[action]
    assert (mine.json["code"], mine.json["coupon_type"], mine.json["currency"]) == (
        by_merchant,
        "FIXED",
        "CNY",
    )
    assert admins.json["code"] == by_admin
    # The history event names the hold's merchant either way.
    events = [
        h for h in coupon_of(api, keys, by_admin)["history"] if h["event"] in ("CAPTURED", "HOLD_VOIDED")
    ]
    assert [e.get("merchant_id") for e in events] == ["m-001"]


def test_a_hold_sealed_under_a_key_no_longer_used_is_captured_through_one_read(api, keys):
    code, _ = coupon(api, keys)
    rid = hold(api, keys, code).json["redemption_id"]
    calls: list[str] = []
    api.ddb.meta.events.register("before-call.dynamodb", lambda **kw: calls.append(kw["model"].name))
    rotated = holds_over(api.ddb)
    rotated._tenant_key = lambda: b"another key"
    from coupons.domain.principals import parse_principal

    _, answer, _ = rotated.capture(
        rid,
        parse_principal(MERCHANT),
        amount=None,
        idempotency_scope="m",
        idempotency_key=None,
        request_body={},
    )
    assert answer["status"] == "CAPTURED" and set(answer) == ANSWERED["capture"]
    assert calls == ["GetItem", "TransactWriteItems"], calls
    assert coupon_of(api, keys, code)["state"] == "REDEEMED"


def test_a_captured_hold_is_the_redemption_in_place_found_by_its_order_and_pending_clearing(api, keys):
    code, _ = coupon(api, keys)
    held = hold(api, keys, code, order_id="o-77").json
    rid = held["redemption_id"]
    assert rid.startswith("hld_") and len(rid) <= 64 + len(
        code
    )  # sealed: about 45 bytes + the code, base64url
    [item] = [i for i in api.items() if i["pk"]["S"] == f"REDEMPTION#{rid}"]
    assert (item["sk"]["S"], item["kind"]["S"], item["gsi1pk"]["S"][:11]) == (
        "REDEMPTION",
        "HOLD",
        "LIVE_HOLDS#",
    )
    assert item["held_order_gsi1pk"]["S"] == "ORDER#m-001#o-77" and "gsi2pk" not in item
    assert capture(api, keys, rid).status == 200
    [item] = [i for i in api.items() if i["pk"]["S"] == f"REDEMPTION#{rid}"]
    assert (item["kind"]["S"], item["hold_status"]["S"], item["discount"]["N"]) == (
        "REDEMPTION",
        "CAPTURED",
        "1000",
    )
    assert (item["gsi1pk"]["S"], item["gsi1sk"]["S"]) == ("ORDER#m-001#o-77", f"REDEMPTION#{rid}")
    assert item["gsi2pk"]["S"].startswith("CLEARING_PENDING#") and "held_order_gsi1pk" not in item
    read = api.call("GET", f"/v1/redemptions/{rid}", api_key=keys["admin"]).json
    # What moved out of the capture's answer is here: the campaign, the parties, the order.
    assert (read["campaign_id"], read["merchant_id"], read["store_id"], read["order_id"]) == (
        held["campaign_id"], "m-001", "s-1", "o-77",
    )  # fmt: skip
    assert read["hold"]["hold_status"] == "CAPTURED" and "hold_status" not in read


def test_a_hold_not_captured_cannot_be_reversed_and_a_voided_one_leaves_no_index(api, keys):
    code, _ = coupon(api, keys)
    rid = hold(api, keys, code).json["redemption_id"]
    refund = api.call("POST", f"/v1/redemptions/{rid}/reversals", api_key=keys[MERCHANT], body={})
    assert_problem(refund, 404, "redemption_not_found")
    assert void(api, keys, rid).status == 200
    [item] = [i for i in api.items() if i["pk"]["S"] == f"REDEMPTION#{rid}"]
    assert (item["kind"]["S"], item["hold_status"]["S"]) == ("HOLD", "VOIDED")
    assert not {"gsi1pk", "gsi1sk", "gsi2pk", "held_order_gsi1pk"} & set(item)
    refund = api.call("POST", f"/v1/redemptions/{rid}/reversals", api_key=keys[MERCHANT], body={})
    assert_problem(refund, 404, "redemption_not_found")
    assert api.call("GET", f"/v1/redemptions/{rid}", api_key=keys["admin"]).json["hold_status"] == "VOIDED"


def test_a_hold_placed_without_an_order_is_captured_with_no_order_index(api, keys):
    from tests.integration.test_redemption_holds_concurrency import MERCHANT as M
    from tests.integration.test_redemption_holds_concurrency import redeemer_over

    code, _ = coupon(api, keys)
    from coupons.services.redemption import Order, Proof

    _, held, _ = redeemer_over(api.ddb).redeem(
        Proof(code=code), Order("m-001", "s-1", 10000, "CNY"), M, idempotency_scope="m",
        idempotency_key=None, request_body={}, capture=False,
    )  # fmt: skip
    rid = held["redemption_id"]
    _, answer, _ = holds_over(api.ddb).capture(
        rid, M, amount=None, idempotency_scope="m", idempotency_key=None, request_body={}
    )
    assert answer["status"] == "CAPTURED"
    [item] = [i for i in api.items() if i["pk"]["S"] == f"REDEMPTION#{rid}"]
    assert item["kind"]["S"] == "REDEMPTION" and not {"gsi1pk", "gsi1sk", "held_order_gsi1pk"} & set(item)
    assert coupon_of(api, keys, code)["state"] == "REDEEMED"


def test_the_trace_of_a_hold_shows_it_held_then_captured_and_cleared(api, keys, stream, clearing):
    code, _ = coupon(api, keys)
    rid = hold(api, keys, code).json["redemption_id"]
    trace = api.call("GET", f"/v1/redemptions/{rid}/trace", api_key=keys["admin"])
    assert trace.status == 200, trace.raw
    assert [s["step"] for s in trace.json["steps"]][-2:] == ["verified", "held"]
    assert trace.json["steps"][-1]["hold_status"] == "HELD"
    capture(api, keys, rid)
    clearing(stream.batch())
    steps = api.call("GET", f"/v1/redemptions/{rid}/trace", api_key=keys["admin"]).json["steps"]
    names = [s["step"] for s in steps]
    assert names[names.index("verified") :][:5] == [
        "verified",
        "risk_decision",
        "held",
        "redeemed",
        "cleared",
    ]
    assert steps[names.index("held")]["hold_status"] == "CAPTURED"
    coupon_steps = api.call("GET", f"/v1/coupons/{code}/trace", api_key=keys["admin"]).json["steps"]
    assert "redeemed" in [s["step"] for s in coupon_steps]
