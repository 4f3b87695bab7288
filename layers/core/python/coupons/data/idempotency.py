"""Idempotency records: one per (principal, Idempotency-Key), holding the request's fingerprint and,
once done, the response to replay. Expire through the table's TTL."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from coupons.data.items import from_item, to_item


def record_key(scope: str, key: str) -> dict[str, Any]:
    return {"pk": {"S": f"IDEMPOTENCY#{scope}#{key}"}, "sk": {"S": "IDEMPOTENCY"}}


class IdempotencyStore:
    def __init__(self, client, table_name: str):
        self._client = client
        self._table = table_name

    def acquire(
        self,
        scope: str,
        key: str,
        *,
        fingerprint: str,
        token: str,
        now: int,
        lock_until: int,
        expires_at: int,
    ) -> dict[str, Any] | None:
        """Claims the key for this request. Returns None when claimed, else the record already there.

        The condition lets a new claim in when no record exists, or when the record is an
        IN_PROGRESS lock whose holder died (its lock expired). TTL deletion is lazy, so an expired
        record may still be read: it counts as absent.
        """
        item = {
            **{k: v["S"] for k, v in record_key(scope, key).items()},
            "status": "IN_PROGRESS",
            "fingerprint": fingerprint,
            "token": token,
            "lock_until": lock_until,
            "expires_at": expires_at,
        }
        try:
            self._client.put_item(
                TableName=self._table,
                Item=to_item(item),
                ConditionExpression=(
                    "attribute_not_exists(pk) OR expires_at < :now"
                    " OR (#s = :in_progress AND lock_until < :now)"
                ),
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={":now": {"N": str(now)}, ":in_progress": {"S": "IN_PROGRESS"}},
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except self._client.exceptions.ConditionalCheckFailedException as err:
            old = err.response.get("Item")
            if old is None:  # some DynamoDB emulators leave the item out: read it
                old = self._client.get_item(
                    TableName=self._table, Key=record_key(scope, key), ConsistentRead=True
                ).get("Item", {})
            return _decoded(from_item(old))
        return None

    def get(self, scope: str, key: str) -> dict[str, Any] | None:
        item = self._client.get_item(
            TableName=self._table, Key=record_key(scope, key), ConsistentRead=True
        ).get("Item")
        return _decoded(from_item(item)) if item else None

    def complete(self, scope: str, key: str, *, token: str, status: int, body: Any) -> None:
        # Only the holder of the lock completes it; a holder whose lock was taken over writes nothing.
        self._client.update_item(
            TableName=self._table,
            Key=record_key(scope, key),
            UpdateExpression="SET #s = :done, response_status = :code, response_body = :body REMOVE lock_until",
            ConditionExpression="#t = :token",
            ExpressionAttributeNames={"#s": "status", "#t": "token"},
            ExpressionAttributeValues={
                ":done": {"S": "COMPLETED"},
                ":code": {"N": str(status)},
                ":body": {"S": json.dumps(body)},  # field order kept: a replay is byte-identical
                ":token": {"S": token},
            },
        )

    def release(self, scope: str, key: str, *, token: str) -> None:
        """Drops our lock after a refused or failed request, so nothing stays written and a retry runs anew."""
        with contextlib.suppress(self._client.exceptions.ConditionalCheckFailedException):
            self._client.delete_item(
                TableName=self._table,
                Key=record_key(scope, key),
                ConditionExpression="#t = :token",
                ExpressionAttributeNames={"#t": "token"},
                ExpressionAttributeValues={":token": {"S": token}},
            )


def _decoded(record: dict[str, Any]) -> dict[str, Any]:
    if "response_body" in record:
        record["response_body"] = json.loads(record["response_body"])
    return record
