"""Campaign records in the main table."""

from __future__ import annotations

from typing import Any

from coupons.data.items import decode_cursor, encode_cursor, from_item, to_item
from coupons.data.schema import GSI1, GSI2

_KEYS = ("pk", "sk", "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk")


def _key(campaign_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"CAMPAIGN#{campaign_id}"}, "sk": {"S": "CAMPAIGN"}}


class CampaignStore:
    def __init__(self, client, table_name: str):
        self._client = client
        self._table = table_name

    def put_new(self, record: dict[str, Any]) -> None:
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
        self._client.put_item(
            TableName=self._table, Item=to_item(item), ConditionExpression="attribute_not_exists(pk)"
        )

    def get(self, campaign_id: str) -> dict[str, Any] | None:
        item = self._client.get_item(TableName=self._table, Key=_key(campaign_id)).get("Item")
        return _record(item) if item else None

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
        start = decode_cursor(cursor, expect={index.partition_key: partition})
        if start:
            args["ExclusiveStartKey"] = start
        page = self._client.query(**args)
        return [_record(i) for i in page.get("Items", [])], encode_cursor(page.get("LastEvaluatedKey"))


def _record(item: dict[str, Any]) -> dict[str, Any]:
    record = from_item(item)
    for key in _KEYS:
        record.pop(key, None)
    return record
