"""Campaign records and their quota shards in the main table.

A campaign's remaining quantity lives on `shards` items, each under its own partition key
(`QUOTA#{campaign}#{i}`), so a flash drop spreads its writes over that many partitions instead of
one hot item. Each shard also carries the campaign's status, so the issuance write checks "still
ACTIVE" on the item it writes anyway, with no extra read.
"""

from __future__ import annotations

from typing import Any

from coupons.data.idempotency import raise_if_lock_lost
from coupons.data.items import decode_cursor, encode_cursor, from_item, to_item
from coupons.data.schema import GSI1, GSI2

_KEYS = ("pk", "sk", "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk")


_NEW = "attribute_not_exists(pk)"


class TagTaken(Exception):
    """Another campaign of the tenant has this code tag already."""


def tag_key(tag: str) -> dict[str, Any]:
    return {"pk": {"S": f"CAMPAIGNTAG#{tag}"}, "sk": {"S": "TAG"}}


def shard_key(campaign_id: str, shard: int) -> dict[str, Any]:
    return {"pk": {"S": f"QUOTA#{campaign_id}#{shard}"}, "sk": {"S": "QUOTA"}}


def _key(campaign_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"CAMPAIGN#{campaign_id}"}, "sk": {"S": "CAMPAIGN"}}


class CampaignStore:
    def __init__(self, client, table_name: str):
        self._client = client
        self._table = table_name

    def put_new(
        self, record: dict[str, Any], shard_capacities: list[int], *, completion: dict[str, Any] | None = None
    ) -> None:
        """The campaign and its quota shards, all or nothing; with `completion` (the Idempotency-Key's
        COMPLETED record) in the same transaction."""
        order = f"{record['created_at']}#{record['campaign_id']}"
        item = {
            "pk": f"CAMPAIGN#{record['campaign_id']}",
            "sk": "CAMPAIGN",
            "gsi1pk": "CAMPAIGNS",
            "gsi1sk": order,
            "gsi2pk": f"BRAND#{record['brand_id']}#CAMPAIGNS",
            "gsi2sk": order,
            **record,
        }
        # The id is fresh from the CSPRNG; the condition makes a collision an error, never an overwrite.
        puts = [{"Put": {"TableName": self._table, "Item": to_item(item), "ConditionExpression": _NEW}}]
        # The code tag names the campaign inside its codes: unique per tenant, by condition.
        tag = {
            **{k: v["S"] for k, v in tag_key(record["code_tag"]).items()},
            "campaign_id": record["campaign_id"],
        }
        puts.append({"Put": {"TableName": self._table, "Item": to_item(tag), "ConditionExpression": _NEW}})
        for i, capacity in enumerate(shard_capacities):
            shard = {
                **{k: v["S"] for k, v in shard_key(record["campaign_id"], i).items()},
                "capacity": capacity,
                "remaining": capacity,
                "status": record["status"],
            }
            puts.append(
                {"Put": {"TableName": self._table, "Item": to_item(shard), "ConditionExpression": _NEW}}
            )
        if completion is not None:
            puts.append(completion)
        try:
            self._client.transact_write_items(TransactItems=puts)
        except self._client.exceptions.TransactionCanceledException as error:
            if completion is not None:
                raise_if_lock_lost(error, len(puts) - 1)
            reasons = error.response.get("CancellationReasons", [])
            if len(reasons) > 1 and reasons[1].get("Code") == "ConditionalCheckFailed":
                raise TagTaken() from None
            raise

    def campaign_id_of_tag(self, tag: str) -> str | None:
        item = self._client.get_item(TableName=self._table, Key=tag_key(tag)).get("Item")
        return item["campaign_id"]["S"] if item else None

    def get(self, campaign_id: str) -> dict[str, Any] | None:
        """The campaign's terms and status (immutable terms: callers may cache this)."""
        item = self._client.get_item(TableName=self._table, Key=_key(campaign_id)).get("Item")
        return _record(item) if item else None

    def issued_counts(self, campaign_id: str, shards: int) -> list[int]:
        """Coupons issued per shard (capacity - remaining), read in one request."""
        keys = [shard_key(campaign_id, i) for i in range(shards)]
        found: dict[str, dict[str, Any]] = {}
        request = {self._table: {"Keys": keys, "ConsistentRead": True}}
        while request:
            answer = self._client.batch_get_item(RequestItems=request)
            for item in answer["Responses"].get(self._table, []):
                found[item["pk"]["S"]] = from_item(item)
            request = answer.get("UnprocessedKeys") or None
        return [found[k["pk"]["S"]]["capacity"] - found[k["pk"]["S"]]["remaining"] for k in keys]

    def set_status(
        self,
        campaign_id: str,
        shards: int,
        *,
        allowed_from: set[str],
        to: str,
        at: str,
        completion: dict[str, Any] | None = None,
    ) -> bool:
        """Moves the campaign and every shard to `to` if the campaign's status is one of `allowed_from`.
        False when it is not (nothing written). With `completion` (the Idempotency-Key's COMPLETED
        record) in the same transaction."""
        names = {"#s": "status"}
        values = to_item({":to": to, ":at": at})
        froms = {f":from{i}": {"S": s} for i, s in enumerate(sorted(allowed_from))}
        items = [
            {
                "Update": {
                    "TableName": self._table,
                    "Key": _key(campaign_id),
                    "UpdateExpression": "SET #s = :to, status_changed_at = :at",
                    # The transition rule, enforced by the write: no read-then-write race.
                    "ConditionExpression": f"#s IN ({', '.join(froms)})",
                    "ExpressionAttributeNames": names,
                    "ExpressionAttributeValues": {**values, **froms},
                }
            }
        ]
        items += [
            {
                "Update": {
                    "TableName": self._table,
                    "Key": shard_key(campaign_id, i),
                    "UpdateExpression": "SET #s = :to",
                    "ExpressionAttributeNames": names,
                    "ExpressionAttributeValues": {":to": values[":to"]},
                }
            }
            for i in range(shards)
        ]
        if completion is not None:
            items.append(completion)
        try:
            self._client.transact_write_items(TransactItems=items)
        except self._client.exceptions.TransactionCanceledException as error:
            if completion is not None:
                raise_if_lock_lost(error, len(items) - 1)
            reasons = error.response.get("CancellationReasons", [])
            if reasons and reasons[0].get("Code") == "ConditionalCheckFailed":
                return False
            raise
        return True

    def list(
        self, *, brand_id: str | None, limit: int, cursor: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Newest first; every campaign (brand_id None) or one brand's."""
        index, partition = (GSI1, "CAMPAIGNS") if brand_id is None else (GSI2, f"BRAND#{brand_id}#CAMPAIGNS")
        args: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": index.name,
            "KeyConditionExpression": "#p = :p",
            "ExpressionAttributeNames": {"#p": index.partition_key},
            "ExpressionAttributeValues": {":p": {"S": partition}},
            "ScanIndexForward": False,
            "Limit": limit,
        }
        query = {"list": "campaigns", "partition": partition}
        start = decode_cursor(cursor, query=query, expect={index.partition_key: partition})
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
