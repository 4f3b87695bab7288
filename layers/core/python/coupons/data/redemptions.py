"""Redemptions and reversals, and the single transaction that redeems a coupon.

  REDEMPTION#{id} / REDEMPTION            the redemption, with what clearing needs (never reads back)
  REDEMPTION#{id} / REVERSAL#{at}#{id}    its reversals, read page by page (a Query of the partition)
      both, until clearing has posted their journal (sparse):
      gsi2: CLEARING_PENDING#{pending_shard(id)} / {business_date}#{id}
  QRTOKEN#{nonce} / QRTOKEN               a used QR token (TTL: gone once the token has expired)

Redemption and reversal items carry `kind` (REDEMPTION / REVERSAL): clearing takes those from the
table's stream and nothing else.

Clearing pending: every redemption and reversal is written with gsi2 keys in one of PENDING_SHARDS
partitions (a hash of its own id, so no partition is hot); the transaction that posts its journal
removes them (data/ledger.py). So `pending_clearing(date)` finds what is not cleared yet, up to a
business date, with a few small Queries: settlement waits until nothing is.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from coupons.data.campaigns import shard_key
from coupons.data.coupons import WriteConflict, coupon_key, history_put
from coupons.data.idempotency import completed_write, raise_if_lock_lost
from coupons.data.items import decode_cursor, encode_cursor, from_item, to_item
from coupons.data.models.idempotency import IdempotencyRecord


class CampaignInactive(Exception):
    pass


class CouponRefused(Exception):
    """The coupon's conditions failed; `coupon` is the coupon as it is now ({} when there is none)."""

    def __init__(self, coupon: dict[str, Any]):
        super().__init__("coupon refused")
        self.coupon = coupon


class IdempotencyRecordExists(Exception):
    def __init__(self, record: dict[str, Any]):
        super().__init__("idempotency key used")
        self.record = record


class QrTokenUsed(Exception):
    pass


class RedemptionIdTaken(Exception):
    pass


@dataclass(frozen=True)
class CouponChange:
    """How the coupon changes, and what must be true of it for the change to happen."""

    code: str
    campaign_id: str
    now: str  # ISO UTC: the coupon must be valid at this moment
    event: dict[str, Any]  # recorded in the coupon's history
    redemption_id: str
    balance_before: int | None = None  # gift cards: the exact balance the take was computed from
    balance_after: int | None = None
    owner: str | None = None  # QR token: the holder it was issued to
    totp_step: int | None = None  # dynamic code: a step newer than any used


@dataclass(frozen=True)
class IdempotencyWrite:
    scope: str
    key: str
    fingerprint: str
    status: int
    body: str  # the answer exactly as sent, so a replay is byte-identical
    now: int
    expires_at: int


PENDING_SHARDS = 16
CLEARING_PENDING = "CLEARING_PENDING#"
# A Query per pending shard reads at most this many items per page.
PENDING_PAGE = 10
# Index keys: on items, never in what the API answers.
INDEX_KEYS = ("gsi2pk", "gsi2sk")


def redemption_key(redemption_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"REDEMPTION#{redemption_id}"}, "sk": {"S": "REDEMPTION"}}


def pending_shard(source_id: str) -> int:
    """The clearing-pending shard of a redemption or reversal id: sha256, first 4 bytes, mod 16."""
    return int.from_bytes(hashlib.sha256(source_id.encode()).digest()[:4], "big") % PENDING_SHARDS


def pending_partition(shard: int) -> str:
    return f"{CLEARING_PENDING}{shard}"


def pending_index(source_id: str, business_date: str) -> dict[str, str]:
    """The gsi2 keys a redemption / reversal item carries until clearing has posted its journal."""
    return {
        "gsi2pk": pending_partition(pending_shard(source_id)),
        "gsi2sk": f"{business_date}#{source_id}",
    }


class RedemptionStore:
    def __init__(self, client, table_name: str):
        self._client = client
        self._table = table_name

    def redeem(
        self,
        redemption: dict[str, Any],
        change: CouponChange,
        *,
        shard: int,
        idempotency: IdempotencyWrite | None = None,
        qr_token: tuple[str, int] | None = None,
    ) -> None:
        """Decides and records a redemption in ONE TransactWriteItems, or raises why it was refused.

        0 ConditionCheck a quota shard: the campaign is still ACTIVE (every shard carries its status,
          so a random one spreads these reads over the shards)
        1 Update the coupon under its conditions (state, validity, campaign, holder, TOTP step,
          gift-card balance)
        2 Put the redemption (a new id)
        3 Put the Idempotency-Key record, COMPLETED with the answer, when the caller sent a key
        4 Put the QR token's nonce, when one was used: a token works once
        last: Put the coupon's history event (data/coupons.py): a write, not a request of its own
        """
        table = self._table
        values: dict[str, Any] = {
            ":cid": change.campaign_id,
            ":now": change.now,
            ":rid": change.redemption_id,
        }
        conditions = ["campaign_id = :cid", "valid_from <= :now", "valid_until > :now"]
        if change.balance_before is None:
            conditions.append("#st = :issued")
            update = "SET #st = :redeemed, redemption_id = :rid"
            values.update({":issued": "ISSUED", ":redeemed": "REDEEMED"})
        else:
            # The exact balance the take was computed from: a concurrent take makes this fail, and
            # the failure returns the new balance to compute again from.
            conditions.append("#st IN (:issued, :partial) AND balance = :before")
            update = "SET #st = :state_after, balance = :after"
            values.update(
                {
                    ":issued": "ISSUED",
                    ":partial": "PARTIALLY_USED",
                    ":before": change.balance_before,
                    ":after": change.balance_after,
                    ":state_after": "PARTIALLY_USED" if change.balance_after else "REDEEMED",
                }
            )
        if change.owner is not None:
            conditions.append("user_id = :owner")
            values[":owner"] = change.owner
        if change.totp_step is not None:
            conditions.append("(attribute_not_exists(totp_step) OR totp_step < :step)")
            update += ", totp_step = :step"
            values[":step"] = change.totp_step
        item = {
            **{k: v["S"] for k, v in redemption_key(redemption["redemption_id"]).items()},
            **redemption,
            **pending_index(redemption["redemption_id"], redemption["business_date"]),
        }
        actions: list[dict[str, Any]] = [
            {
                "ConditionCheck": {
                    "TableName": table,
                    "Key": shard_key(change.campaign_id, shard),
                    "ConditionExpression": "#s = :active",
                    "ExpressionAttributeNames": {"#s": "status"},
                    "ExpressionAttributeValues": {":active": {"S": "ACTIVE"}},
                }
            },
            {
                "Update": {
                    "TableName": table,
                    "Key": coupon_key(change.code),
                    "UpdateExpression": update,
                    "ConditionExpression": " AND ".join(conditions),
                    "ExpressionAttributeNames": {"#st": "state"},
                    "ExpressionAttributeValues": to_item(values),
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }
            },
            {
                "Put": {
                    "TableName": table,
                    "Item": to_item(item),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
        ]
        if idempotency is not None:
            # No lock was claimed first (one request): the record goes in where no live one is.
            actions.append(
                completed_write(
                    IdempotencyRecord.bound(self._client, table),
                    idempotency.scope,
                    idempotency.key,
                    fingerprint=idempotency.fingerprint,
                    status=idempotency.status,
                    body=idempotency.body,
                    expires_at=idempotency.expires_at,
                    now=idempotency.now,
                ).item()
            )
        qr_index = len(actions)
        if qr_token is not None:
            nonce, expires_at = qr_token
            used = {"pk": f"QRTOKEN#{nonce}", "sk": "QRTOKEN", "expires_at": expires_at}
            actions.append(
                {
                    "Put": {
                        "TableName": table,
                        "Item": to_item(used),
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                }
            )
        actions.append(history_put(table, change.code, change.event))
        try:
            self._client.transact_write_items(TransactItems=actions)
        except self._client.exceptions.TransactionCanceledException as error:
            reasons = error.response.get("CancellationReasons", [])
            codes = [r.get("Code", "None") for r in reasons]
            failed = [i for i, c in enumerate(codes) if c == "ConditionalCheckFailed"]
            # The idempotency record first: a retry of a request that succeeded also fails the
            # coupon's condition (it is redeemed now), and must get its first answer, not a 409.
            if idempotency is not None and 3 in failed:
                raise IdempotencyRecordExists(_idempotency_record(reasons[3].get("Item"))) from None
            if 0 in failed:
                raise CampaignInactive() from None
            if 1 in failed:
                old = reasons[1].get("Item")
                raise CouponRefused(from_item(old) if old else {}) from None
            if qr_token is not None and qr_index in failed:
                raise QrTokenUsed() from None
            if 2 in failed:
                raise RedemptionIdTaken() from None
            if "TransactionConflict" in codes:
                raise WriteConflict() from None
            raise

    def redemption(self, redemption_id: str) -> dict[str, Any] | None:
        """The redemption item alone (its totals), never its reversals: what a reversal computes from."""
        item = self._client.get_item(
            TableName=self._table, Key=redemption_key(redemption_id), ConsistentRead=True
        ).get("Item")
        return _public(from_item(item)) if item else None

    def get(
        self, redemption_id: str, *, limit: int, cursor: str | None = None
    ) -> tuple[dict[str, Any], list[dict[str, Any]], str | None] | None:
        """The redemption, a page of at most `limit` of its reversals (oldest first) and the cursor of
        the next page. The first page is one Query: the redemption's sort key, REDEMPTION, sorts before
        its reversals' (REVERSAL#…); a later page reads the redemption item and the page."""
        partition = f"REDEMPTION#{redemption_id}"
        args: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": partition}},
            "ConsistentRead": True,
            "Limit": limit + 1,
        }
        query = {"list": "reversals", "redemption": redemption_id}  # only for this redemption's reversals
        start = decode_cursor(cursor, query=query, expect={"pk": partition})
        if start:
            redemption = self.redemption(redemption_id)
            if redemption is None:
                return None
            args.update(ExclusiveStartKey=start, Limit=limit)
        page = self._client.query(**args)
        items = [from_item(i) for i in page.get("Items", [])]
        if not start:
            if not items or items[0]["sk"] != "REDEMPTION":
                return None
            redemption = _public(items.pop(0))
        reversals = [_public(i) for i in items if i["sk"].startswith("REVERSAL#")]
        return redemption, reversals, encode_cursor(page.get("LastEvaluatedKey"), query=query)

    def pending_clearing(self, up_to_business_date: str, *, limit: int = 10) -> list[dict[str, Any]]:
        """Redemptions and reversals with business dates up to `up_to_business_date` whose journal is
        not posted yet (at most `limit`; [] = everything up to that date is cleared). One small Query
        per pending shard, stopping as soon as `limit` are found.

        The index is eventually consistent: an item cleared a moment ago may still be listed, one
        written a moment ago may not be yet. Ask about business dates that have ended."""
        found: list[dict[str, Any]] = []
        for shard in range(PENDING_SHARDS):
            start: dict[str, Any] | None = None
            while len(found) < limit:
                args: dict[str, Any] = {
                    "TableName": self._table,
                    "IndexName": "gsi2",
                    "KeyConditionExpression": "gsi2pk = :pk AND gsi2sk <= :hi",
                    "ExpressionAttributeValues": to_item(
                        {":pk": pending_partition(shard), ":hi": f"{up_to_business_date}#~"}
                    ),
                    "ProjectionExpression": "#k, #rdm, #rvs, #bd",
                    "ExpressionAttributeNames": {
                        "#k": "kind",
                        "#rdm": "redemption_id",
                        "#rvs": "reversal_id",
                        "#bd": "business_date",
                    },
                    "Limit": min(PENDING_PAGE, limit - len(found)),
                }
                if start:
                    args["ExclusiveStartKey"] = start
                page = self._client.query(**args)
                found += [_pending(from_item(i)) for i in page.get("Items", [])]
                start = page.get("LastEvaluatedKey")
                if not start:
                    break
            if len(found) >= limit:
                break
        return sorted(found, key=lambda r: (r["business_date"], r.get("reversal_id", r["redemption_id"])))

    def reverse(
        self,
        reversal: dict[str, Any],
        *,
        refunded_before: int,
        refunded_after: int,
        discount_reversed_after: int,
        coupon_update: dict[str, Any] | None,
        coupon_event: dict[str, Any] | None = None,
        completion: dict[str, Any] | None = None,
    ) -> bool:
        """Records a reversal against its redemption in one transaction. False when another reversal
        of the same redemption got in first (the caller reads again and recomputes).

        `coupon_update`: Update arguments (Key, expressions) that give the coupon back or restore a
        gift card's balance, or None; `coupon_event`: what the coupon's history records of it.
        `completion`: the Idempotency-Key's COMPLETED record, committed with the reversal (a refund
        whose answer was lost is then replayed, never applied again)."""
        redemption_id = reversal["redemption_id"]
        item = {
            "pk": f"REDEMPTION#{redemption_id}",
            "sk": f"REVERSAL#{reversal['reversed_at']}#{reversal['reversal_id']}",
            **reversal,
            **pending_index(reversal["reversal_id"], reversal["business_date"]),
        }
        actions: list[dict[str, Any]] = [
            {
                "Update": {
                    "TableName": self._table,
                    "Key": redemption_key(redemption_id),
                    "UpdateExpression": "SET refunded_amount = :after, discount_reversed = :dr",
                    # Optimistic: the totals we computed from are still the totals, so two
                    # concurrent reversals can never together reverse more than there is.
                    "ConditionExpression": "refunded_amount = :before",
                    "ExpressionAttributeValues": to_item(
                        {":after": refunded_after, ":before": refunded_before, ":dr": discount_reversed_after}
                    ),
                }
            },
            {
                "Put": {
                    "TableName": self._table,
                    "Item": to_item(item),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
        ]
        if coupon_update is not None:
            actions.append({"Update": {"TableName": self._table, **coupon_update}})
            if coupon_event is not None:
                actions.append(history_put(self._table, reversal["code"], coupon_event))
        if completion is not None:
            actions.append(completion.item())  # last: raise_if_lock_lost finds it there
        try:
            self._client.transact_write_items(TransactItems=actions)
        except self._client.exceptions.TransactionCanceledException as error:
            if completion is not None:
                raise_if_lock_lost(error, len(actions) - 1)
            codes = [r.get("Code", "None") for r in error.response.get("CancellationReasons", [])]
            if "ConditionalCheckFailed" in codes or "TransactionConflict" in codes:
                return False
            raise
        return True


def _public(record: dict[str, Any]) -> dict[str, Any]:
    for name in ("pk", "sk", *INDEX_KEYS):
        record.pop(name, None)
    return record


def _pending(item: dict[str, Any]) -> dict[str, Any]:
    keys = ("kind", "redemption_id", "business_date")
    if item.get("kind") == "REVERSAL":
        keys += ("reversal_id",)
    return {k: item[k] for k in keys if k in item}


def _idempotency_record(item: dict[str, Any] | None) -> dict[str, Any]:
    record = from_item(item) if item else {}
    if "response_body" in record:
        record["response_body"] = json.loads(record["response_body"])
    return record


def source_images(client, table_name: str, redemption_id: str) -> list[dict[str, Any]]:
    """The redemption and its reversals as stored, keys included: what clearing is given from the stream's
    new image (re-clear hands these to the same Clearer). Oldest reversal last, redemption first."""
    page = client.query(
        TableName=table_name,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"REDEMPTION#{redemption_id}"}},
        ConsistentRead=True,
    )
    items = [from_item(i) for i in page.get("Items", [])]
    return sorted(items, key=lambda i: (i["sk"] != "REDEMPTION", i["sk"]))
