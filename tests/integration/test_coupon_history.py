"""Items that must not grow with use (issue #10, point 5): a coupon's history lives in items of its own,
a redemption's reversals are read page by page, and the hot paths read neither."""

import time

from coupons.domain.principals import Principal, Role
from coupons.services.redemption import Order, Proof
from tests.integration.conftest import TABLE
from tests.integration.test_api_plumbing import assert_problem
from tests.integration.test_redemption_api import ORDER, count_requests, coupon, redeem

MERCHANT = Principal(Role.MERCHANT, "m-001")
USES = 5000


def item_size(api, code: str) -> int:
    """The coupon item's size as DynamoDB counts it, near enough: names and values in UTF-8."""
    key = {"pk": {"S": f"COUPON#{code}"}, "sk": {"S": "COUPON"}}
    item = api.ddb.get_item(TableName=TABLE, Key=key)["Item"]
    return len(str(item).encode())


def test_a_gift_card_used_5000_times_still_redeems_and_refunds_and_its_item_stays_small(api, keys):
    """At about 2,000 events a history kept on the coupon item reaches DynamoDB's 400 KB item limit (moto
    enforces it too), and from then on every use and refund of the card fails."""
    from moto.dynamodb.models import dynamodb_backends

    import dependencies
    from infra.local import moto_fixes

    moto_fixes.apply()  # moto as the local stack runs it: a transaction backs up its items, not the table
    stream = dynamodb_backends["123456789012"]["eu-west-1"].tables[TABLE].stream_shard
    code, _ = coupon(api, keys, type="GIFT_CARD", amount=USES + 1000, min_order=None)
    small = item_size(api, code)
    redeemer = dependencies.redeemer()
    started = time.monotonic()
    for n in range(USES):  # the service directly: the route's own work is tested elsewhere
        order = Order(merchant_id="m-001", store_id="s-1", order_id=f"o-{n}", order_amount=1, currency="CNY")
        status, answer, _ = redeemer.redeem(
            Proof(code=code), order, MERCHANT, idempotency_key=None, idempotency_scope="unused", request_body={"n": n}
        )
        assert (status, answer["balance_after"]) == (201, USES + 1000 - n - 1), answer
        stream.items.clear()  # nothing reads moto's stream here; it would keep every image in memory
    print(f"{USES} uses in {time.monotonic() - started:.1f} s")
    assert item_size(api, code) <= small + 200  # the balance and state changed; nothing was appended

    last = answer["redemption_id"]
    refund = api.call("POST", f"/v1/redemptions/{last}/reversals", api_key=keys["merchant:m-001"])
    assert refund.status == 201, refund.raw
    read = api.call("GET", f"/v1/coupons/{code}", api_key=keys["admin"]).json
    assert read["balance"] == 1001  # the refund restored its unit
    assert [e["event"] for e in read["history"]][-2:] == ["REDEEMED", "REVERSED"]
    assert read["history"][-1]["reversal_id"] == refund.json["reversal_id"]
    assert len(read["history"]) == 20 and read["history_next_cursor"]
    assert redeem(api, keys["merchant:m-001"], code, order_amount=1, order_id="o-last").status == 201


def test_a_coupons_history_is_read_newest_first_page_by_page_back_to_its_issue(api, keys):
    code, _ = coupon(api, keys, type="GIFT_CARD", amount=100, min_order=None)
    rids = [
        redeem(api, keys["merchant:m-001"], code, order_amount=1, order_id=f"o-{n}").json["redemption_id"]
        for n in range(24)
    ]
    read = api.call("GET", f"/v1/coupons/{code}", api_key=keys["admin"]).json
    # The coupon shows its latest 20 events, oldest first as before, and where the rest continue.
    assert [e.get("redemption_id") for e in read["history"]] == rids[-20:]
    path = f"/v1/coupons/{code}/history"
    older = api.call("GET", path, api_key=keys["admin"], query={"cursor": read["history_next_cursor"]}).json
    assert [e["event"] for e in older["items"]] == ["REDEEMED"] * 4 + ["ISSUED"]
    assert [e.get("redemption_id") for e in older["items"][:4]] == rids[3::-1] and older[
        "next_cursor"
    ] is None

    seen, cursor = [], None
    while True:
        query = {"limit": "7", **({"cursor": cursor} if cursor else {})}
        page = api.call("GET", path, api_key=keys["admin"], query=query)
        assert page.status == 200, page.raw
        seen += page.json["items"]
        cursor = page.json["next_cursor"]
        if cursor is None:
            break
    assert [e.get("redemption_id") for e in seen] == [*rids[::-1], None]
    assert [e["at"] for e in seen] == sorted((e["at"] for e in seen), reverse=True)


def test_a_coupons_history_is_shown_to_whom_the_coupon_is(api, keys):
    code, _ = coupon(api, keys, type="GIFT_CARD", amount=100, min_order=None)
    redeem(api, keys["merchant:m-001"], code, order_amount=1)  # two events: a page of one has a next
    path = f"/v1/coupons/{code}/history"
    assert api.call("GET", path, api_key=keys["admin"]).status == 200
    assert_problem(api.call("GET", path, api_key=keys["issuer:brand-b"]), 404, "coupon_not_found")
    assert_problem(api.call("GET", path, api_key=keys["merchant:m-001"]), 403, "forbidden")
    other, _ = coupon(api, keys, user="u-2")
    foreign = api.call("GET", path, api_key=keys["admin"], query={"limit": "1"}).json["next_cursor"]
    assert_problem(
        api.call("GET", f"/v1/coupons/{other}/history", api_key=keys["admin"], query={"cursor": foreign}),
        400,
        "invalid_cursor",
    )


def test_void_and_whole_reversals_write_their_events_in_the_same_transaction(api, keys):
    voided, _ = coupon(api, keys)
    calls = count_requests(api)
    answer = api.call("POST", f"/v1/coupons/{voided}/void", api_key=keys["admin"], body={"reason": "lost"})
    assert answer.status == 200 and [e["event"] for e in answer.json["history"]] == ["ISSUED", "VOIDED"]
    assert calls.count("TransactWriteItems") == 1 and "UpdateItem" not in calls

    used, _ = coupon(api, keys, user="u-2")
    rid = redeem(api, keys["merchant:m-001"], used).json["redemption_id"]
    reversal = api.call("POST", f"/v1/redemptions/{rid}/reversals", api_key=keys["merchant:m-001"]).json
    assert reversal["coupon_restored"] is True
    history = api.call("GET", f"/v1/coupons/{used}", api_key=keys["admin"]).json["history"]
    assert [e["event"] for e in history] == ["ISSUED", "REDEEMED", "REVERSED"]
    assert history[-1]["reversal_id"] == reversal["reversal_id"]


def test_the_checkout_and_a_refund_read_no_history_and_no_reversals(api, keys):
    code, _ = coupon(api, keys, type="GIFT_CARD", amount=100, min_order=None)
    for n in range(3):
        redeem(api, keys["merchant:m-001"], code, order_amount=1, order_id=f"o-{n}")
    calls = count_requests(api)
    body = {**ORDER, "code": code}
    quote = api.call("POST", "/v1/redemptions/quote", api_key=keys["merchant:m-001"], body=body)
    rid = redeem(api, keys["merchant:m-001"], code, order_amount=1, order_id="o-9").json["redemption_id"]
    api.call("POST", f"/v1/redemptions/{rid}/reversals", api_key=keys["merchant:m-001"])
    assert quote.status == 200 and "Query" not in calls, calls


def test_a_redemption_with_many_reversals_is_read_page_by_page_and_reversing_reads_none_of_them(api, keys):
    code, _ = coupon(api, keys)
    rid = redeem(api, keys["merchant:m-001"], code, order_amount=10000).json["redemption_id"]
    path = f"/v1/redemptions/{rid}/reversals"
    made = [
        api.call("POST", path, api_key=keys["merchant:m-001"], body={"amount": 10}).json for _ in range(25)
    ]
    calls = count_requests(api)
    made.append(api.call("POST", path, api_key=keys["merchant:m-001"], body={"amount": 10}).json)
    assert "Query" not in calls, calls  # the reversal reads the redemption item, not its reversals

    read = api.call("GET", f"/v1/redemptions/{rid}", api_key=keys["admin"]).json
    assert read["refunded_amount"] == 260
    assert [r["reversal_id"] for r in read["reversals"]] == [r["reversal_id"] for r in made[:20]]
    seen, cursor = list(read["reversals"]), read["reversals_next_cursor"]
    while cursor:
        page = api.call("GET", path, api_key=keys["admin"], query={"limit": "4", "cursor": cursor}).json
        seen += page["items"]
        cursor = page["next_cursor"]
    assert [r["reversal_id"] for r in seen] == [r["reversal_id"] for r in made]
