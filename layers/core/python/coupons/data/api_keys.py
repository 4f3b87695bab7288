"""API key records: the key's hash and the principal it stands for; never the key itself."""

from __future__ import annotations

from typing import Any

from coupons.data.idempotency import raise_if_lock_lost
from coupons.data.items import from_item, to_item


def _key(key_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"APIKEY#{key_id}"}, "sk": {"S": "APIKEY"}}


class ApiKeyStore:
    def __init__(self, client, table_name: str):
        self._client = client
        self._table = table_name

    def put_new(self, record: dict[str, Any], *, completion: dict[str, Any] | None = None) -> None:
        """The key's record; with `completion` (the Idempotency-Key's COMPLETED record) in one transaction."""
        item = {
            "pk": f"APIKEY#{record['key_id']}",
            "sk": "APIKEY",
            "gsi1pk": "APIKEYS",
            "gsi1sk": f"{record['created_at']}#{record['key_id']}",
            **record,
        }
        # 80 random bits make a clash unlikely; the condition makes it impossible to overwrite a key.
        put = {
            "TableName": self._table,
            "Item": to_item(item),
            "ConditionExpression": "attribute_not_exists(pk)",
        }
        if completion is None:
            self._client.put_item(**put)
            return
        try:
            self._client.transact_write_items(TransactItems=[{"Put": put}, completion.item()])
        except self._client.exceptions.TransactionCanceledException as error:
            raise_if_lock_lost(error, 1)
            raise

    def get(self, key_id: str) -> dict[str, Any] | None:
        item = self._client.get_item(TableName=self._table, Key=_key(key_id), ConsistentRead=True).get("Item")
        if not item:
            return None
        record = from_item(item)
        for k in ("pk", "sk", "gsi1pk", "gsi1sk"):
            record.pop(k, None)
        return record

    def revoke(self, key_id: str, at: str) -> bool:
        """Marks the key revoked (kept for audit); False when there is no such key. Revoking twice keeps
        the first time."""
        try:
            self._client.update_item(
                TableName=self._table,
                Key=_key(key_id),
                UpdateExpression="SET revoked_at = if_not_exists(revoked_at, :at)",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeValues={":at": {"S": at}},
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            return False
        return True
