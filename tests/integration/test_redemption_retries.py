"""Retries and races the happy-path tests do not reach, made deterministic in-process.

Gift cards: a botocore hook on the function's own DynamoDB client lets "another till" write the coupon just
before the function's TransactWriteItems goes out (the cases tests/e2e/test_redemption_concurrency.py hits
at random over HTTP). Retries: a till that timed out retries with the same Idempotency-Key later, when what
it proved the first time (a 60 s QR token, a 30 s TOTP step) no longer holds; the contract is still the
first answer, for as long as the key is kept (24 h or more)."""

import base64
import time
from urllib.parse import parse_qs, urlparse

from coupons.domain import verification
from coupons.domain.redemption import BalanceExhausted, refusal_from_coupon
from tests.integration.conftest import TABLE
from tests.integration.test_api_plumbing import assert_problem
from tests.integration.test_redemption_api import ORDER, coupon, redeem


def before_each_transaction(action):
    """Runs `action(n)` (n = 1, 2, ...) just before each TransactWriteItems the API function sends."""
    import dependencies

    sent = []

    def hook(**_):
        sent.append(1)
        action(len(sent))

    dependencies.coupons()._client.meta.events.register("before-call.dynamodb.TransactWriteItems", hook)
    return sent


def another_till_takes(api, code, units):
    """What a concurrent redemption does to the card: its balance goes down (to 0: the card is used up)."""
    key = {"pk": {"S": f"COUPON#{code}"}, "sk": {"S": "COUPON"}}
    balance = int(api.ddb.get_item(TableName=TABLE, Key=key)["Item"]["balance"]["N"]) - units
    api.ddb.update_item(
        TableName=TABLE,
        Key=key,
        UpdateExpression="SET balance = :b, #st = :s",
        ExpressionAttributeNames={"#st": "state"},
        ExpressionAttributeValues={
            ":b": {"N": str(balance)},
            ":s": {"S": "REDEEMED" if balance == 0 else "PARTIALLY_USED"},
        },
    )


def test_a_used_up_gift_card_is_refused_as_exhausted_however_the_refusal_is_found(api, keys):
    """Read first (balance 0 → gift_card_balance_exhausted) or told by the cancelled transaction (ALL_OLD:
    state REDEEMED, balance 0): the same card, the same reason, whichever till lost which race."""
    code, _ = coupon(api, keys, type="GIFT_CARD", amount=40, min_order=None)
    before_each_transaction(lambda n: another_till_takes(api, code, 40) if n == 1 else None)
    lost = redeem(api, keys["merchant:m-001"], code, amount=1, order_amount=100)
    assert_problem(lost, 409, "gift_card_balance_exhausted")


def test_the_refusal_read_from_a_used_up_gift_card_is_balance_exhausted():
    used_up = {
        "type": "GIFT_CARD",
        "state": "REDEEMED",  # what a take that leaves 0 writes (data/redemptions.py)
        "balance": 0,
        "valid_from": "2026-01-01T00:00:00Z",
        "valid_until": "2099-01-01T00:00:00Z",
    }
    assert isinstance(refusal_from_coupon(used_up, now_iso="2026-11-25T00:00:00Z"), BalanceExhausted)


def test_a_quote_on_a_used_up_gift_card_says_its_balance_is_exhausted(api, keys):
    code, _ = coupon(api, keys, type="GIFT_CARD", amount=5000, min_order=None)
    assert redeem(api, keys["merchant:m-001"], code, order_amount=8000).json["balance_after"] == 0
    quote = api.call(
        "POST", "/v1/redemptions/quote", api_key=keys["merchant:m-001"], body={**ORDER, "code": code}
    )
    assert_problem(quote, 409, "gift_card_balance_exhausted")


def test_a_retry_of_the_redemption_that_used_up_a_gift_card_replays_its_first_answer(api, keys):
    """The till times out after the card paid 5000 of an 8000 order and retries with the same key: it must
    get the first answer (201, balance_after 0), not a 409 that reads as "the card paid nothing"."""
    code, _ = coupon(api, keys, type="GIFT_CARD", amount=5000, min_order=None)
    key = {"Idempotency-Key": "till-7-order-8000"}
    first = redeem(api, keys["merchant:m-001"], code, order_amount=8000, headers=key)
    assert first.status == 201 and first.json["balance_after"] == 0
    again = redeem(api, keys["merchant:m-001"], code, order_amount=8000, headers=key)
    assert (again.status, again.raw) == (first.status, first.raw)


def test_a_gift_card_take_that_keeps_losing_the_race_is_never_a_500(api, keys):
    """Another till takes 1 unit just before each of the function's first 12 transactions (the card holds
    100): every attempt is cancelled on `balance = :before`. The card still has 88 units; the till must get
    its unit, or at worst a problem it can act on, never an internal error."""
    code, _ = coupon(api, keys, type="GIFT_CARD", amount=100, min_order=None)
    sent = before_each_transaction(lambda n: another_till_takes(api, code, 1) if n <= 12 else None)
    answer = redeem(api, keys["merchant:m-001"], code, amount=1, order_amount=100)
    assert len(sent) >= 12
    assert answer.status != 500, answer.raw
    assert answer.status == 201 or answer.content_type == "application/problem+json", answer.raw


def frozen_clock() -> list[float]:
    """The function's clock (the Redeemer's) stands still at now; the test moves it (`now[0] += s`)."""
    import dependencies

    redeemer = dependencies.redeemer()
    now = [redeemer._clock()]
    redeemer._clock = lambda: now[0]
    return now


def card_balance(api, code: str) -> int:
    item = api.ddb.get_item(TableName=TABLE, Key={"pk": {"S": f"COUPON#{code}"}, "sk": {"S": "COUPON"}})
    return int(item["Item"]["balance"]["N"])


def later(seconds: int) -> None:
    """The function's clock (the Redeemer's) moves on by `seconds`."""
    import dependencies

    redeemer = dependencies.redeemer()
    now = redeemer._clock()
    redeemer._clock = lambda: now + seconds


def test_a_retry_after_the_qr_token_expired_replays_the_first_answer(api, keys):
    code, _ = coupon(api, keys, verification_methods=["QR_TOKEN"])
    token = api.call("POST", f"/v1/coupons/{code}/qr-token", api_key=keys["admin"]).json["qr_token"]
    key = {"Idempotency-Key": "till-3-order-qr"}
    first = redeem(api, keys["merchant:m-001"], qr_token=token, headers=key)
    assert first.status == 201, first.raw
    later(120)  # the token (60 s) has expired; the key (>= 24 h) has not
    again = redeem(api, keys["merchant:m-001"], qr_token=token, headers=key)
    assert (again.status, again.raw) == (first.status, first.raw)


def test_a_retry_after_the_dynamic_code_step_passed_replays_the_first_answer(api, keys):
    code, _ = coupon(api, keys, verification_methods=["DYNAMIC_CODE"])
    uri = api.call("POST", f"/v1/coupons/{code}/dynamic-code", api_key=keys["admin"]).json["otpauth_uri"]
    secret_b32 = parse_qs(urlparse(uri).query)["secret"][0]
    secret = base64.b32decode(secret_b32 + "=" * (-len(secret_b32) % 8))
    now_code = verification.totp(secret, int(time.time()))
    key = {"Idempotency-Key": "till-4-order-totp"}
    first = redeem(api, keys["merchant:m-001"], code, dynamic_code=now_code, headers=key)
    assert first.status == 201, first.raw
    later(120)  # beyond the ±1 step window
    again = redeem(api, keys["merchant:m-001"], code, dynamic_code=now_code, headers=key)
    assert (again.status, again.raw) == (first.status, first.raw)


def test_a_gift_card_take_that_loses_12_races_still_gets_its_unit_while_the_card_has_balance(api, keys):
    """Issue #4: 64 takes of 1 from a card of 40 → exactly 40 succeed. Over HTTP, 8 workers race on one card
    and a take loses 12 races in a row often ((7/8)^12 ≈ 20 %); giving up then (409 contention) while
    units remain leaves the card with balance and tills refused (tests/e2e/test_redemption_concurrency.py)."""
    code, _ = coupon(api, keys, type="GIFT_CARD", amount=100, min_order=None)
    before_each_transaction(lambda n: another_till_takes(api, code, 1) if n <= 12 else None)
    answer = redeem(api, keys["merchant:m-001"], code, amount=1, order_amount=100)
    assert answer.status == 201, answer.raw
    assert answer.json["balance_after"] == 100 - 12 - 1


def test_a_gift_card_take_still_losing_races_when_the_function_runs_short_of_time_answers_contention(
    api, keys
):
    """Tills keep winning the card just before each of this function's transactions, and each attempt costs
    it 4 s (its clock moves on). A function that kept retrying until it won would pass its 29 s timeout
    after writing: the till would get API Gateway's 502 for a take that happened. It stops while there is
    time to answer instead: 409 contention (retry shortly), nothing of it written."""

    code, _ = coupon(api, keys, type="GIFT_CARD", amount=100, min_order=None)
    now = frozen_clock()

    def another_till_wins(_: int) -> None:
        another_till_takes(api, code, 1)
        now[0] += 4

    sent = before_each_transaction(another_till_wins)
    answer = redeem(api, keys["merchant:m-001"], code, amount=1, order_amount=100)
    assert_problem(answer, 409, "contention")
    # FakeContext leaves 29 s: attempts start at +0, +4, ..., +16 s. One at +20 s would end at +24 s,
    # leaving no more than the 5 s margin: it does not start.
    assert len(sent) == 5, len(sent)
    assert card_balance(api, code) == 100 - len(sent)  # only the other tills' takes


def test_a_take_does_not_start_an_attempt_it_could_not_answer_in_time_at_the_pace_of_the_last_ones(api, keys):
    """A starved table: each attempt costs 10 s (the clock moves on). The first two lose their race; a
    third would win, but starting at +20 s it would end at +30 s, past the 29 s timeout: the till would
    get a 502 for a take that happened. It answers 409 contention instead, nothing of it written."""

    code, _ = coupon(api, keys, type="GIFT_CARD", amount=100, min_order=None)
    now = frozen_clock()

    def slow_and_lost_twice(n: int) -> None:
        if n <= 2:
            another_till_takes(api, code, 1)
        now[0] += 10

    sent = before_each_transaction(slow_and_lost_twice)
    answer = redeem(api, keys["merchant:m-001"], code, amount=1, order_amount=100)
    assert_problem(answer, 409, "contention")
    assert len(sent) == 2, len(sent)
    assert card_balance(api, code) == 100 - 2  # only the other tills' takes
