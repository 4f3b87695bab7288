"""Orders against coupons, pure (coupons.domain.orders, coupons.domain.orders_file)."""

from datetime import UTC, datetime

import pytest

from coupons.domain.orders import OrderEvent, decide, event_id_of, missing_outcomes, problems
from coupons.domain.orders_file import OrderFileError, parse, parse_key

REDEMPTION = {"redemption_id": "rdm_1", "order_amount": 10000, "refunded_amount": 0, "currency": "CNY",
              "order_id": "o-1", "redeemed_at": "2026-03-10T01:00:00.000000Z"}  # fmt: skip
AT = "2026-03-10T04:00:00.000000Z"


def event(type_, amount=None, currency="CNY", **kw):
    return OrderEvent(merchant_id="m-1", order_id="o-1", type=type_, occurred_at=AT, amount=amount,
                      currency=currency if amount is not None else None, **kw)  # fmt: skip


def test_a_cancellation_reverses_what_is_left_of_the_redemption():
    assert decide({**REDEMPTION, "refunded_amount": 3000}, event("CANCELLED"), 0).reverse == 7000
    assert decide({**REDEMPTION, "refunded_amount": 10000}, event("CANCELLED"), 0).reverse == 0


def test_a_refund_reverses_only_what_the_redemptions_reversals_have_not():
    assert decide(REDEMPTION, event("REFUNDED", 4000), 4000).reverse == 4000
    assert decide({**REDEMPTION, "refunded_amount": 4000}, event("REFUNDED", 4000), 4000).reverse == 0
    # two refunds, the first already reversed: the second alone
    assert decide({**REDEMPTION, "refunded_amount": 4000}, event("REFUNDED", 1000), 5000).reverse == 1000


def test_a_refund_beyond_the_order_reverses_the_rest_and_is_an_amount_mismatch():
    outcome = decide({**REDEMPTION, "refunded_amount": 9000}, event("REFUNDED", 2000), 11000)
    assert outcome.reverse == 1000 and outcome.exception[:2] == ("ORDER_AMOUNT_MISMATCH", 1000)


def test_a_paid_amount_or_currency_other_than_the_redemptions_is_an_amount_mismatch():
    assert decide(REDEMPTION, event("PAID", 10000), 0).exception is None
    assert decide(REDEMPTION, event("PAID", 9990), 0).exception[:2] == ("ORDER_AMOUNT_MISMATCH", 10)
    assert decide(REDEMPTION, event("PAID", 10000, currency="USD"), 0).exception[0] == "ORDER_AMOUNT_MISMATCH"


def test_an_events_id_is_the_merchants_or_derived_from_what_it_says():
    assert event("CANCELLED").event_id == event_id_of("m-1", "o-1", "CANCELLED", None, AT)
    assert event("CANCELLED").event_id != event("PAID", 1).event_id
    assert event("CANCELLED", event_id="pos-1").event_id == "pos-1"


def test_which_types_carry_an_amount():
    assert [f for f, _ in problems(OrderEvent("m", "o", "REFUNDED", AT))] == ["amount", "currency"]
    assert [f for f, _ in problems(OrderEvent("m", "o", "CANCELLED", AT, amount=5))] == ["amount"]
    assert problems(OrderEvent("m", "o", "PAID", AT, amount=5, currency="CNY")) == []


def test_an_outcome_is_missing_only_past_the_grace_period_and_only_for_an_order():
    later = datetime(2026, 3, 12, 1, 0, tzinfo=UTC)
    assert missing_outcomes([REDEMPTION], set(), now=later, grace_hours=48) == [REDEMPTION]
    assert missing_outcomes([REDEMPTION], set(), now=later, grace_hours=49) == []
    assert missing_outcomes([REDEMPTION], {"rdm_1"}, now=later, grace_hours=1) == []
    assert missing_outcomes([{**REDEMPTION, "order_id": None}], set(), now=later, grace_hours=1) == []


def test_an_order_file_is_read_whole_with_its_merchant_and_date_from_the_key():
    assert parse_key("order-files/m-1/2026-03-10.csv") == ("m-1", "2026-03-10")
    text = ("order_id,type,amount,currency,occurred_at,event_id\n"
            "o-1,PAID,10000,CNY,2026-03-10T12:00:00+08:00,\n"
            "o-2,CANCELLED,,,2026-03-10T13:00:00+08:00,pos-9\n")  # fmt: skip
    paid, cancelled = parse(text, "m-1")
    assert (paid.amount, paid.currency, paid.occurred_at) == (10000, "CNY", "2026-03-10T04:00:00.000000Z")
    assert (cancelled.type, cancelled.amount, cancelled.event_id) == ("CANCELLED", None, "pos-9")


@pytest.mark.parametrize(
    ("line", "where"),
    [
        ("o-1,PAID,100.5,CNY,2026-03-10T12:00:00+08:00,", "line 2, amount"),
        ("o-1,LOST,,,2026-03-10T12:00:00+08:00,", "line 2, type"),
        ("o-1,PAID,100,XXX,2026-03-10T12:00:00+08:00,", "line 2, currency"),
        ("o-1,PAID,100,CNY,2026-03-10T12:00:00,", "line 2, occurred_at"),
        ("o-1,REFUNDED,,CNY,2026-03-10T12:00:00+08:00,", "line 2, amount"),
        ("o-1,PAID,100,CNY", "line 2: 4 columns"),
    ],
)
def test_a_bad_line_refuses_the_file_naming_the_line_and_the_column(line, where):
    with pytest.raises(OrderFileError, match=where):
        parse("order_id,type,amount,currency,occurred_at,event_id\n" + line + "\n", "m-1")
    with pytest.raises(OrderFileError):
        parse_key("order-files/m-1/yesterday.csv")
