"""Idempotency records: one per (scope, Idempotency-Key), holding the request's fingerprint and,
once done, the response to replay. Expire through the table's TTL.

The COMPLETED record is built in one place (`completed_write`) and written inside the transaction of the
effect it answers wherever the effect is one transaction: the effect and its answer commit together,
so a request that dies after its effect can never have it applied again (`Completion`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from coupons.data.models.base import Transaction, Write, failed_condition
from coupons.data.models.idempotency import IDEMPOTENCY_SK, IdempotencyRecord, idempotency_pk

_IN_PROGRESS, _COMPLETED = "IN_PROGRESS", "COMPLETED"


class LockLost(Exception):
    """The completion's condition failed: another request took this key over (its lock had run out),
    so this effect was not written."""


# The tag of the COMPLETED record in a store's Transaction: raise_if_lock_lost finds its reason by it.
COMPLETION = "completion"


def completed_write(
    model: type[IdempotencyRecord],
    scope: str,
    key: str,
    *,
    fingerprint: str,
    status: int,
    body: str,
    expires_at: int,
    token: str | None = None,
    now: int | None = None,
) -> Write:
    """The transaction's Put of a COMPLETED record answering `status` / `body` (JSON as sent, so a
    replay is byte-identical). With `token`: only while we hold the key's IN_PROGRESS lock. Without
    (redemption, which claims no lock first): only where no live record is."""
    record = model(
        idempotency_pk(scope, key),
        IDEMPOTENCY_SK,
        status=_COMPLETED,
        fingerprint=fingerprint,
        response_status=status,
        response_body=body,
        expires_at=expires_at,
    )
    if token is not None:
        # Our lock, still IN_PROGRESS: a holder whose lock was taken over writes nothing — not even
        # its effect, which shares this transaction.
        condition = (model.token == token) & (model.status == _IN_PROGRESS)
    else:
        # Same rule as acquire: an expired record counts as absent.
        condition = model.pk.does_not_exist() | (model.expires_at < now)
    return Write("put", record, condition, return_values="ALL_OLD")


class Completion:
    """What run_idempotent hands the action it runs under a key.

    - `put(result)`: the COMPLETED record's Put (a Write), for a store to add to the Transaction that
      writes the effect, tagged COMPLETION and added LAST (then no separate completion write follows). The answer is `shape(result)`. Ask for
      it only for a transaction that commits before the action returns (a retry asks again).
    - `scope`, `key`, `ref`: for an effect that cannot share one transaction (many transactions, or a
      write outside DynamoDB): ids derived from (scope, key) and written under attribute_not_exists,
      so a re-run after a lost completion lands on the first effect; the action then calls
      `found_first()` and its answer is marked a replay. run_idempotent completes the key afterwards.
    """

    def __init__(
        self,
        model: type[IdempotencyRecord],
        scope: str,
        key: str,
        *,
        token: str,
        fingerprint: str,
        expires_at: int,
        redact: Callable[[Any], Any] | None = None,
    ):
        self.scope, self.key = scope, key
        self._model, self._token, self._fingerprint, self._expires_at = model, token, fingerprint, expires_at
        self._redact = redact or (lambda body: body)
        self._status, self._shape = 201, (lambda result: result)
        self.committed = False  # a put was handed to a transaction (run_idempotent: no complete())
        self.replayed = False

    def answering(self, status: int, shape: Callable[[Any], Any] | None = None) -> Completion:
        """Says which status, and which view of the action's result, the put records."""
        self._status, self._shape = status, shape or (lambda result: result)
        return self

    def put(self, result: Any) -> Write:
        self.committed = True
        return completed_write(
            self._model,
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


class IdempotencyRecordExists(Exception):
    """A transaction's completion put found a record under its key: `record` is it (existing_record)."""

    def __init__(self, record: dict[str, Any]):
        super().__init__("idempotency key used")
        self.record = record


def existing_record(model: type[IdempotencyRecord], raw: dict[str, Any] | None) -> dict[str, Any]:
    """The record that stood in the way of a transaction's completion put (its ALL_OLD item), keys
    included, its answer decoded: what `domain.idempotency.on_existing` replays from."""
    record = model.from_raw_data(raw).record(keep_keys=True) if raw else {}
    if "response_body" in record:
        record["response_body"] = json.loads(record["response_body"])
    return record


def put_of(completion: Completion | None, result: Any) -> Write | None:
    """The completion's Put answering `result`, or None without a key: what a service hands its store."""
    return completion.put(result) if completion is not None else None


def raise_if_lock_lost(error: Exception, transaction: Transaction) -> None:
    """A store's first check on a cancelled transaction that carried a completion (tagged COMPLETION)."""
    if transaction.failed(error, COMPLETION):
        raise LockLost() from None


class IdempotencyStore:
    def __init__(self, client, table_name: str):
        self._client = client
        self._model = IdempotencyRecord.bound(client, table_name)

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
        model = self._model
        lock = model(
            idempotency_pk(scope, key),
            IDEMPOTENCY_SK,
            status=_IN_PROGRESS,
            fingerprint=fingerprint,
            token=token,
            lock_until=lock_until,
            expires_at=expires_at,
        )
        condition = (
            model.pk.does_not_exist()
            | (model.expires_at < now)
            | ((model.status == _IN_PROGRESS) & (model.lock_until < now))
        )
        # PynamoDB builds the request; the low-level client sends it, because PynamoDB's save cannot ask
        # for the record that stood in the way (ReturnValuesOnConditionCheckFailure), and reading it
        # afterwards would cost every replay a second request.
        request = lock.get_save_kwargs_from_instance(
            condition=condition, return_values_on_condition_failure="ALL_OLD"
        )
        try:
            self._client.put_item(**request)
        except self._client.exceptions.ConditionalCheckFailedException as err:
            old = err.response.get("Item")
            if old is None:  # some DynamoDB emulators leave the item out: read it
                return self.get(scope, key)
            return _decoded(model.from_raw_data(old).record(keep_keys=True))
        return None

    def get(self, scope: str, key: str) -> dict[str, Any] | None:
        try:
            found = self._model.get(idempotency_pk(scope, key), IDEMPOTENCY_SK, consistent_read=True)
        except self._model.DoesNotExist:
            return None
        return _decoded(found.record(keep_keys=True))

    def completion(self, scope: str, key: str, **how: Any) -> Completion:
        """The Completion of our claim on (scope, key): `how` is Completion's token, fingerprint,
        expires_at and redact."""
        return Completion(self._model, scope, key, **how)

    def complete(self, scope: str, key: str, *, token: str, status: int, body: Any) -> None:
        """For an effect that could not carry its completion (see Completion)."""
        model = self._model
        model(idempotency_pk(scope, key), IDEMPOTENCY_SK).update(
            actions=[
                model.status.set(_COMPLETED),
                model.response_status.set(status),
                model.response_body.set(json.dumps(body)),  # field order kept: a replay is byte-identical
                model.lock_until.remove(),
            ],
            # Only the holder of the lock completes it; a holder whose lock was taken over writes nothing.
            condition=(model.token == token) & (model.status == _IN_PROGRESS),
        )

    def release(self, scope: str, key: str, *, token: str) -> None:
        """Drops our lock after a refused or failed request, so nothing stays written and a retry runs anew."""
        model = self._model
        try:
            model(idempotency_pk(scope, key), IDEMPOTENCY_SK).delete(
                # Our lock only, and only while IN_PROGRESS: a failure after the effect committed with
                # its completion (a lost answer) must leave that answer for the retry.
                condition=(model.token == token) & (model.status == _IN_PROGRESS),
            )
        except Exception as error:
            if not failed_condition(error):
                raise


def _decoded(record: dict[str, Any]) -> dict[str, Any]:
    if "response_body" in record:
        record["response_body"] = json.loads(record["response_body"])
    return record
