"""Order outcomes (models: coupons.data.models.orders): written once per event id, read per order,
and the redemptions made against an order (the gsi1 the redemption item carries)."""

from __future__ import annotations

from typing import Any

from pynamodb.exceptions import PutError, UpdateError

from coupons.data.models.base import failed_condition
from coupons.data.models.orders import EVENT_SK_PREFIX, OrderEventItem, event_sk, order_pk
from coupons.data.models.redemptions import Redemption


class OrderStore:
    def __init__(self, client, table_name: str):
        self._event = OrderEventItem.bound(client, table_name)
        self._redemption = Redemption.bound(client, table_name)

    def record(self, event: dict[str, Any]) -> bool:
        """True if the event is new; a redelivered one (the same event id) is there already."""
        E = self._event
        item = E.from_record({"kind": "ORDER_EVENT", **{k: v for k, v in event.items() if v is not None}},
                             pk=order_pk(event["merchant_id"], event["order_id"]),
                             sk=event_sk(event["occurred_at"], event["event_id"]))  # fmt: skip
        try:
            # One item per event id (and moment): a redelivery never counts a refund twice.
            item.save(condition=E.pk.does_not_exist())
            return True
        except PutError as error:
            if failed_condition(error):
                return False
            raise

    def set_effects(self, event: dict[str, Any], effects: dict[str, Any]) -> None:
        E = self._event
        try:
            E(order_pk(event["merchant_id"], event["order_id"]), event_sk(event["occurred_at"], event["event_id"])).update(
                actions=[E.effects.set(effects)], condition=E.pk.exists()  # never a stub event
            )  # fmt: skip
        except UpdateError as error:
            if not failed_condition(error):
                raise

    def events(self, merchant_id: str, order_id: str) -> list[dict[str, Any]]:
        """The order's events, in the order they happened."""
        E = self._event
        return [e.record() for e in E.query(order_pk(merchant_id, order_id), E.sk.startswith(EVENT_SK_PREFIX),
                                            consistent_read=True)]  # fmt: skip

    def redemptions(self, merchant_id: str, order_id: str) -> list[dict[str, Any]]:
        """The redemptions made against the order (gsi1: eventually consistent, like every index)."""
        R = self._redemption
        return [r.record() for r in R.query(order_pk(merchant_id, order_id), index_name="gsi1")]
