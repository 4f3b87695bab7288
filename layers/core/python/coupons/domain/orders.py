"""Orders against coupons (订单与券核对), pure: what a merchant's order outcome (PAID with its amount,
CANCELLED, REFUNDED with its amount) means for the redemption made against that order.

  CANCELLED                 the redemption is reversed in full (what is left of it), automatically
  REFUNDED R                the order's refunds so far (Σ R) beyond what the redemption's reversals
                            refunded: that difference is reversed (the discount in proportion)
  PAID A, A ≠ the order amount the redemption was made for (or another currency)
                            ORDER_AMOUNT_MISMATCH (also a refund beyond the order's amount)
  no outcome grace_hours after the redemption
                            ORDER_OUTCOME_MISSING

An event's id is the merchant's `event_id` or derived from what it says; the automatic reversal runs
under an idempotency key derived from that id, so a redelivered event reverses nothing twice."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any


class OrderEventType(StrEnum):
    PAID = "PAID"
    CANCELLED = "CANCELLED"
    REFUNDED = "REFUNDED"


def event_id_of(merchant_id: str, order_id: str, type_: str, amount: int | None, occurred_at: str) -> str:
    """Derived from what the event says: the same outcome reported twice (API and file) is one event."""
    text = f"{merchant_id}|{order_id}|{type_}|{'' if amount is None else amount}|{occurred_at}"
    return f"oev_{hashlib.sha256(text.encode()).hexdigest()[:24]}"


@dataclass(frozen=True)
class OrderEvent:
    merchant_id: str
    order_id: str
    type: OrderEventType
    occurred_at: str
    amount: int | None = None  # minor units: PAID and REFUNDED
    currency: str | None = None
    event_id: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "type", OrderEventType(self.type))
        if not self.event_id:
            object.__setattr__(self, "event_id", event_id_of(
                self.merchant_id, self.order_id, self.type, self.amount, self.occurred_at))  # fmt: skip


def problems(event: OrderEvent) -> list[tuple[str, str]]:
    """(field, message) for what the schema cannot say: which types carry an amount."""
    out = []
    if event.type in (OrderEventType.PAID, OrderEventType.REFUNDED):
        if event.amount is None:
            out.append(("amount", f"a {event.type} event carries the amount (minor units)"))
        if event.currency is None:
            out.append(("currency", f"a {event.type} event carries the currency"))
    elif event.amount is not None:
        out.append(("amount", "a CANCELLED event carries no amount: the whole order is cancelled"))
    return out


@dataclass(frozen=True)
class Outcome:
    """What one event does to one redemption: a reversal of `reverse` of the order (minor units), and /
    or an exception (class, amount at stake, detail)."""

    reverse: int = 0
    exception: tuple[str, int, str] | None = None


def decide(redemption: dict[str, Any], event: OrderEvent, order_refunds: int) -> Outcome:
    """`order_refunds`: Σ of the REFUNDED amounts the order reported so far, this event's included."""
    order, refunded = redemption["order_amount"], redemption.get("refunded_amount", 0)
    left = order - refunded
    if event.type is OrderEventType.CANCELLED:
        return Outcome(reverse=left)
    if event.currency != redemption["currency"]:
        return Outcome(exception=("ORDER_AMOUNT_MISMATCH", event.amount,
                                  f"the order reports {event.currency}, the redemption is in {redemption['currency']}"))  # fmt: skip
    if event.type is OrderEventType.PAID:
        if event.amount != order:
            return Outcome(exception=("ORDER_AMOUNT_MISMATCH", abs(event.amount - order),
                                      f"the order was paid {event.amount}, the coupon was redeemed on {order}"))  # fmt: skip
        return Outcome()
    beyond = order_refunds - order
    reverse = max(0, min(order_refunds, order) - refunded)
    if beyond > 0:
        return Outcome(reverse=reverse, exception=(
            "ORDER_AMOUNT_MISMATCH", beyond, f"the order's refunds ({order_refunds}) exceed the order ({order})"))  # fmt: skip
    return Outcome(reverse=reverse)


def missing_outcomes(
    redemptions: Iterable[dict[str, Any]], answered: set[str], *, now: datetime, grace_hours: int
) -> list[dict[str, Any]]:
    """The redemptions (with an order id) whose order reported no outcome `grace_hours` after it."""
    out = []
    for r in redemptions:
        if not r.get("order_id") or r["redemption_id"] in answered:
            continue
        redeemed = datetime.fromisoformat(r["redeemed_at"].replace("Z", "+00:00"))
        if now >= redeemed + timedelta(hours=grace_hours):
            out.append(r)
    return out
