"""Coupon records, their history, the per-user holding counters, and the one transaction that issues
a coupon.

COUPON#{code}             / COUPON    gsi1: USER#{user_id} / {issued_at}#{code}   (the wallet)
HISTORY#{code}            / {at}#{ref}  one item per event of the coupon (issued, redeemed, reversed,
                                      voided); ref: the redemption / reversal id, or the event's name
HOLDING#{campaign}#{user} / HOLDING   held: how many coupons of the campaign the user was issued

A coupon's history is never a list on the coupon item: a busy gift card would reach DynamoDB's 400 KB
item limit after some 2,000 uses, and every write of the item costs its whole size. Each event is an
item of its own, written in the same transaction as the change it records; the coupon item's size does
not grow with use. The history has its own partition (not beside the coupon under COUPON#): the hot
item's partition holds only the coupon, and listings of COUPON# partitions see coupons only.
"""

from __future__ import annotations

from typing import Any

from coupons.data.campaigns import shard_key
from coupons.data.idempotency import raise_if_lock_lost
from coupons.data.items import decode_cursor, encode_cursor, from_item, to_item
from coupons.data.schema import GSI1

_KEYS = ("pk", "sk", "gsi1pk", "gsi1sk")


class ShardRefused(Exception):
    """The shard had no unit left, or the campaign is not ACTIVE: `shard` is the shard as it is now."""

    def __init__(self, shard: dict[str, Any]):
        super().__init__("shard refused")
        self.shard = shard


class HoldingFull(Exception):
    pass


class CodeTaken(Exception):
    """A coupon has this code already: `coupon` is that coupon."""

    def __init__(self, coupon: dict[str, Any] | None = None):
        super().__init__("code taken")
        self.coupon = coupon or {}


class WriteConflict(Exception):
    """The transaction was cancelled without any condition failing: another transaction touched one of
    its items at that moment (TransactionConflict), or a partition was throttled. Nothing was written."""


def coupon_key(code: str) -> dict[str, Any]:
    return {"pk": {"S": f"COUPON#{code}"}, "sk": {"S": "COUPON"}}


def history_partition(code: str) -> str:
    return f"HISTORY#{code}"


def history_put(table: str, code: str, event: dict[str, Any]) -> dict[str, Any]:
    """The TransactWriteItems action that records `event` ({"at", "event", …}) in the coupon's history.

    No condition: the event's ref is new by the transaction's own conditions (a new redemption or
    reversal id, a coupon issued or voided once), and one transaction never writes one event twice."""
    ref = event.get("reversal_id") or event.get("redemption_id") or event["event"]
    item = {"pk": history_partition(code), "sk": f"{event['at']}#{ref}", **event}
    return {"Put": {"TableName": table, "Item": to_item(item)}}


def holding_key(campaign_id: str, user_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"HOLDING#{campaign_id}#{user_id}"}, "sk": {"S": "HOLDING"}}


class CouponStore:
    def __init__(self, client, table_name: str):
        self._client = client
        self._table = table_name

    def issue(
        self,
        coupon: dict[str, Any],
        *,
        shard: int,
        per_user_limit: int,
        completion: dict[str, Any] | None = None,
    ) -> None:
        """Issues `coupon` in one transaction, or raises why not. Three conditions hold together:
        the shard has a unit left and the campaign is ACTIVE (no over-issue, no issue while paused),
        the code is new (unique per tenant by condition, not by probability alone), and the user
        holds fewer than `per_user_limit` coupons of the campaign. `completion`: the Idempotency-Key's
        COMPLETED record, committed with the coupon."""
        campaign_id, user_id = coupon["campaign_id"], coupon["user_id"]
        history = coupon.get("history", [])
        item = {
            **{k: v["S"] for k, v in coupon_key(coupon["code"]).items()},
            "gsi1pk": f"USER#{user_id}",
            "gsi1sk": f"{coupon['issued_at']}#{coupon['code']}",
            **{k: v for k, v in coupon.items() if k != "history"},  # its events: items of their own
        }
        actions = [
            {
                "Update": {
                    "TableName": self._table,
                    "Key": shard_key(campaign_id, shard),
                    "UpdateExpression": "SET remaining = remaining - :one",
                    "ConditionExpression": "remaining >= :one AND #s = :active",
                    "ExpressionAttributeNames": {"#s": "status"},
                    "ExpressionAttributeValues": {":one": {"N": "1"}, ":active": {"S": "ACTIVE"}},
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }
            },
            {
                "Put": {
                    "TableName": self._table,
                    "Item": to_item(item),
                    "ConditionExpression": "attribute_not_exists(pk)",
                    # A code derived from an Idempotency-Key that exists is the first run's coupon.
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }
            },
            {
                "Update": {
                    "TableName": self._table,
                    "Key": holding_key(campaign_id, user_id),
                    "UpdateExpression": "ADD held :one SET campaign_id = :c, user_id = :u",
                    "ConditionExpression": "attribute_not_exists(held) OR held < :limit",
                    "ExpressionAttributeValues": to_item(
                        {":one": 1, ":limit": per_user_limit, ":c": campaign_id, ":u": user_id}
                    ),
                }
            },
        ]
        actions += [history_put(self._table, coupon["code"], event) for event in history]
        if completion is not None:
            actions.append(completion.item())  # last: raise_if_lock_lost finds it there
        try:
            self._client.transact_write_items(TransactItems=actions)
        except self._client.exceptions.TransactionCanceledException as error:
            if completion is not None:
                raise_if_lock_lost(error, len(actions) - 1)
            codes = [r.get("Code", "None") for r in error.response.get("CancellationReasons", [])]
            # The code first: a re-run that lands on its first coupon also finds the user's holding
            # counted and maybe the shard dry, and must learn that the coupon is there.
            if codes[1] == "ConditionalCheckFailed":
                old = error.response["CancellationReasons"][1].get("Item")
                raise CodeTaken(_record(old) if old else None) from None
            if codes[0] == "ConditionalCheckFailed":
                old = error.response["CancellationReasons"][0].get("Item")
                raise ShardRefused(from_item(old) if old else {}) from None
            if codes[2] == "ConditionalCheckFailed":
                raise HoldingFull() from None
            if {"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"} & set(codes):
                raise WriteConflict() from None
            raise

    def get(self, code: str) -> dict[str, Any] | None:
        item = self._client.get_item(TableName=self._table, Key=coupon_key(code), ConsistentRead=True).get(
            "Item"
        )
        return _record(item) if item else None

    def history(
        self, code: str, *, limit: int, cursor: str | None = None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """A page of the coupon's events, newest first, and the cursor of the next (older) page."""
        partition = history_partition(code)
        args: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": partition}},
            "ScanIndexForward": False,
            "Limit": limit,
            "ConsistentRead": True,  # the event a change wrote a moment ago is shown with it
        }
        query = {"list": "coupon_history", "code": code}  # a page's start key is only for this coupon
        start = decode_cursor(cursor, query=query, expect={"pk": partition})
        if start:
            args["ExclusiveStartKey"] = start
        page = self._client.query(**args)
        events = [from_item(i) for i in page.get("Items", [])]
        for event in events:
            event.pop("pk"), event.pop("sk")
        return events, encode_cursor(page.get("LastEvaluatedKey"), query=query)

    def void(self, code: str, event: dict[str, Any]) -> bool:
        """ISSUED → VOID, with `event` in its history; False if the coupon is not ISSUED now."""
        actions = [
            {
                "Update": {
                    "TableName": self._table,
                    "Key": coupon_key(code),
                    "UpdateExpression": "SET #s = :void",
                    # Only an unused coupon: a redemption racing the void wins or loses as a whole.
                    "ConditionExpression": "#s = :issued",
                    "ExpressionAttributeNames": {"#s": "state"},
                    "ExpressionAttributeValues": to_item({":void": "VOID", ":issued": "ISSUED"}),
                }
            },
            history_put(self._table, code, event),
        ]
        try:
            self._client.transact_write_items(TransactItems=actions)
        except self._client.exceptions.TransactionCanceledException as error:
            codes = [r.get("Code", "None") for r in error.response.get("CancellationReasons", [])]
            if codes[0] == "ConditionalCheckFailed":
                return False
            if "TransactionConflict" in codes:
                raise WriteConflict() from None
            raise
        return True

    def mark_dynamic_code_provisioned(
        self, code: str, at: str, *, completion: dict[str, Any] | None = None
    ) -> bool:
        """Records that the coupon's dynamic-code secret was handed out; False if it was already.
        With `completion` (the Idempotency-Key's COMPLETED record) in one transaction."""
        update = {
            "TableName": self._table,
            "Key": coupon_key(code),
            "UpdateExpression": "SET dynamic_code_provisioned_at = :at",
            # Once per coupon: two concurrent calls cannot both hand the secret out.
            "ConditionExpression": "attribute_exists(pk) AND attribute_not_exists(dynamic_code_provisioned_at)",
            "ExpressionAttributeValues": {":at": {"S": at}},
        }
        if completion is not None:
            try:
                self._client.transact_write_items(TransactItems=[{"Update": update}, completion.item()])
            except self._client.exceptions.TransactionCanceledException as error:
                raise_if_lock_lost(error, 1)
                return False
            return True
        try:
            self._client.update_item(**update)
        except self._client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def wallet(
        self,
        user_id: str,
        *,
        limit: int,
        cursor: str | None,
        brand_id: str | None,
        state: str | None,
        now: str,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """A user's coupons, newest first; optionally one brand's, and in one state as of `now`
        (EXPIRED is not stored: it is an unused coupon whose valid_until has passed)."""
        partition = f"USER#{user_id}"
        names = {"#p": GSI1.partition_key}
        values: dict[str, Any] = {":p": partition}
        filters = []
        if brand_id is not None:
            filters.append("brand_id = :b")
            values[":b"] = brand_id
        if state is not None:
            names["#st"] = "state"
            values[":now"] = now
            if state == "EXPIRED":
                filters.append("#st IN (:issued, :partial) AND valid_until <= :now")
                values.update({":issued": "ISSUED", ":partial": "PARTIALLY_USED"})
            elif state in ("ISSUED", "PARTIALLY_USED"):
                filters.append("#st = :st AND valid_until > :now")
                values[":st"] = state
            else:
                filters.append("#st = :st")
                values[":st"] = state
                del values[":now"]
        args: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": GSI1.name,
            "KeyConditionExpression": "#p = :p",
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": to_item(values),
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if filters:
            args["FilterExpression"] = " AND ".join(filters)
        # The cursor is bound to the user and the filters: a page's start key is only meant for them.
        query = {"list": "wallet", "user": user_id, "brand": brand_id, "state": state}
        start = decode_cursor(cursor, query=query, expect={GSI1.partition_key: partition})
        if start:
            args["ExclusiveStartKey"] = start
        page = self._client.query(**args)
        next_cursor = encode_cursor(page.get("LastEvaluatedKey"), query=query)
        return [_record(i) for i in page.get("Items", [])], next_cursor


def _record(item: dict[str, Any]) -> dict[str, Any]:
    record = from_item(item)
    for key in _KEYS:
        record.pop(key, None)
    return record
