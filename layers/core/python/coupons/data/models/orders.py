"""Merchants' order outcomes (coupons.data.orders), and the index that finds an order's redemptions.

ORDER#{merchant_id}#{order_id} / EVENT#{occurred_at}#{event_id}   OrderEventItem
gsi1: ORDER#{merchant_id}#{order_id} / REDEMPTION#{redemption_id}  on the redemption item itself
      (coupons.data.redemptions writes it with the redemption, when the redemption has an order id)
"""

from __future__ import annotations

from coupons.data.models.base import Integer, MainModel, Map, Text

EVENT_SK_PREFIX = "EVENT#"


def order_pk(merchant_id: str, order_id: str) -> str:
    return f"ORDER#{merchant_id}#{order_id}"


def order_index(merchant_id: str | None, order_id: str | None, redemption_id: str) -> dict[str, str]:
    """The gsi1 keys of a redemption made against an order (none without an order id)."""
    if not merchant_id or not order_id:
        return {}
    return {"gsi1pk": order_pk(merchant_id, order_id), "gsi1sk": f"REDEMPTION#{redemption_id}"}


def event_sk(occurred_at: str, event_id: str) -> str:
    return f"{EVENT_SK_PREFIX}{occurred_at}#{event_id}"


class OrderEventItem(MainModel):
    """One outcome a merchant reported for an order, and what it did (`effects`: per redemption, the
    reversal it made or the exception it opened)."""

    kind = Text()
    event_id = Text()
    merchant_id = Text()
    order_id = Text()
    type = Text()  # PAID / CANCELLED / REFUNDED
    amount = Integer(null=True)
    currency = Text(null=True)
    occurred_at = Text()
    received_at = Text()
    source = Text()  # api / the order file's key
    reported_by = Text()
    effects = Map(null=True)
