"""Idempotency records: one per (scope, Idempotency-Key), holding the request's fingerprint and,
once done, the response to replay. Expire through the table's TTL.

The COMPLETED record is built in one place (`completed_put`) and written inside the transaction of the
effect it answers wherever the effect is one transaction: the effect and its answer commit together,
so a request that dies after its effect can never have it applied again (`Completion`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable
from typing import Any

from coupons.data.items import from_item, to_item


class LockLost(Exception):
    """The completion's condition failed: another request took this key over (its lock had run out),
    so this effect was not written."""


def record_key(scope: str, key: str) -> dict[str, Any]:
    return {"pk": {"S": f"IDEMPOTENCY#{scope}#{key}"}, "sk": {"S": "IDEMPOTENCY"}}


def completed_put(
    table: str,
    scope: str,
    key: str,
    *,
    fingerprint: str,
    status: int,
    body: str,
    expires_at: int,
    token: str | None = None,
    now: int | None = None,
) -> dict[str, Any]:
    """The TransactWriteItems Put of a COMPLETED record answering `status` / `body` (JSON as sent, so a
    replay is byte-identical). With `token`: only while we hold the key's IN_PROGRESS lock. Without
    (redemption, which claims no lock first): only where no live record is."""
    record = {
        **{k: v["S"] for k, v in record_key(scope, key).items()},
        "status": "COMPLETED",
        "fingerprint": fingerprint,
        "response_status": status,
        "response_body": body,
        "expires_at": expires_at,
    }
    if token is not None:
        # Our lock, still IN_PROGRESS: a holder whose lock was taken over writes nothing — not even
        # its effect, which shares this transaction.
        condition = "#t = :token AND #s = :in_progress"
        names = {"#t": "token", "#s": "status"}
        values = {":token": {"S": token}, ":in_progress": {"S": "IN_PROGRESS"}}
    else:
        # Same rule as acquire: an expired record counts as absent.
        condition, names, values = (
            "attribute_not_exists(pk) OR expires_at < :now",
            {},
            {":now": {"N": str(now)}},
        )
    put: dict[str, Any] = {
        "TableName": table,
        "Item": to_item(record),
        "ConditionExpression": condition,
        "ExpressionAttributeValues": values,
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }
    if names:
        put["ExpressionAttributeNames"] = names
    return {"Put": put}


class Completion:
    """What run_idempotent hands the action it runs under a key.

    - `put(result)`: the COMPLETED record's Put, for a store to append to the transaction that writes
      the effect (then no separate completion write follows). The answer is `shape(result)`. Ask for
      it only for a transaction that commits before the action returns (a retry asks again).
    - `scope`, `key`, `ref`: for an effect that cannot share one transaction (many transactions, or a
      write outside DynamoDB): ids derived from (scope, key) and written under attribute_not_exists,
      so a re-run after a lost completion lands on the first effect; the action then calls
      `found_first()` and its answer is marked a replay. run_idempotent completes the key afterwards.
    """

    def __init__(
        self,
        table: str,
        scope: str,
        key: str,
        *,
        token: str,
        fingerprint: str,
        expires_at: int,
        redact: Callable[[Any], Any] | None = None,
    ):
        self.scope, self.key = scope, key
        self._table, self._token, self._fingerprint, self._expires_at = table, token, fingerprint, expires_at
        self._redact = redact or (lambda body: body)
        self._status, self._shape = 201, (lambda result: result)
        self.committed = False  # a put was handed to a transaction (run_idempotent: no complete())
        self.replayed = False

    def answering(self, status: int, shape: Callable[[Any], Any] | None = None) -> Completion:
        """Says which status, and which view of the action's result, the put records."""
        self._status, self._shape = status, shape or (lambda result: result)
        return self

    def put(self, result: Any) -> dict[str, Any]:
        self.committed = True
        return completed_put(
            self._table,
            self.scope,
            self.key,
            fingerprint=self._fingerprint,
            status=self._status,
            body=json.dumps(self._redact(self._shape(result))),
            expires_at=self._expires_at,
            token=self._token,
        )

    @property
    def ref(self) -> str:
        """A stable reference to (scope, key), safe to store on an effect."""
        return hashlib.sha256(f"{self.scope}|{self.key}".encode()).hexdigest()[:32]

    def found_first(self) -> None:
        self.replayed = True


def put_of(completion: Completion | None, result: Any) -> dict[str, Any] | None:
    """The completion's Put answering `result`, or None without a key: what a service hands its store."""
    return completion.put(result) if completion is not None else None


def raise_if_lock_lost(error: Exception, index: int) -> None:
    """A store's first check on a cancelled transaction that carried a completion at `index`."""
    reasons = getattr(error, "response", {}).get("CancellationReasons", [])
    if index < len(reasons) and reasons[index].get("Code") == "ConditionalCheckFailed":
        raise LockLost() from None


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

    def completion(self, scope: str, key: str, **how: Any) -> Completion:
        """The Completion of our claim on (scope, key): `how` is Completion's token, fingerprint,
        expires_at and redact."""
        return Completion(self._table, scope, key, **how)

    def complete(self, scope: str, key: str, *, token: str, status: int, body: Any) -> None:
        """For an effect that could not carry its completion (see Completion)."""
        # Only the holder of the lock completes it; a holder whose lock was taken over writes nothing.
        self._client.update_item(
            TableName=self._table,
            Key=record_key(scope, key),
            UpdateExpression="SET #s = :done, response_status = :code, response_body = :body REMOVE lock_until",
            ConditionExpression="#t = :token AND #s = :in_progress",
            ExpressionAttributeNames={"#s": "status", "#t": "token"},
            ExpressionAttributeValues={
                ":done": {"S": "COMPLETED"},
                ":code": {"N": str(status)},
                ":body": {"S": json.dumps(body)},  # field order kept: a replay is byte-identical
                ":token": {"S": token},
                ":in_progress": {"S": "IN_PROGRESS"},
            },
        )

    def release(self, scope: str, key: str, *, token: str) -> None:
        """Drops our lock after a refused or failed request, so nothing stays written and a retry runs anew."""
        with contextlib.suppress(self._client.exceptions.ConditionalCheckFailedException):
            self._client.delete_item(
                TableName=self._table,
                Key=record_key(scope, key),
                # Our lock only, and only while IN_PROGRESS: a failure after the effect committed with
                # its completion (a lost answer) must leave that answer for the retry.
                ConditionExpression="#t = :token AND #s = :in_progress",
                ExpressionAttributeNames={"#t": "token", "#s": "status"},
                ExpressionAttributeValues={":token": {"S": token}, ":in_progress": {"S": "IN_PROGRESS"}},
            )


def _decoded(record: dict[str, Any]) -> dict[str, Any]:
    if "response_body" in record:
        record["response_body"] = json.loads(record["response_body"])
    return record
