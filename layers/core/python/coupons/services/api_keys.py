"""Creating and revoking API keys."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from coupons.data.api_keys import ApiKeyStore
from coupons.data.idempotency import Completion, put_of
from coupons.domain import api_keys
from coupons.domain.errors import ApiKeyNotFound
from coupons.domain.principals import Principal
from coupons.domain.times import iso


def _now() -> str:
    return iso(datetime.now(UTC))


def create_key(
    store: ApiKeyStore,
    *,
    principal: Principal,
    description: str | None,
    created_by: str,
    completion: Completion | None = None,
) -> dict:
    """Stores a new key's hash (with the Idempotency-Key's completion, if any); the answer carries the
    plain key, which is never stored or shown again."""
    new = api_keys.generate()
    record: dict[str, Any] = {
        "key_id": new.key_id,
        "principal": str(principal),
        "description": description,
        "secret_hash": new.secret_hash,
        "created_at": _now(),
        "created_by": created_by,
    }
    answer = {**public_view(record), "api_key": new.plain}
    store.put_new(record, completion=put_of(completion, answer))  # the completion redacts the key
    return answer


def revoke_key(store: ApiKeyStore, key_id: str) -> None:
    if not store.revoke(key_id, _now()):
        raise ApiKeyNotFound(field="key_id")


def public_view(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k != "secret_hash" and v is not None}
