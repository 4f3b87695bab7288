"""Idempotency records: one per (scope, Idempotency-Key) (coupons.data.idempotency)."""

from __future__ import annotations

from coupons.data.models.base import Integer, MainModel, Text


def idempotency_pk(scope: str, key: str) -> str:
    return f"IDEMPOTENCY#{scope}#{key}"


IDEMPOTENCY_SK = "IDEMPOTENCY"


class IdempotencyRecord(MainModel):
    """IN_PROGRESS (a lock, with `token` and `lock_until`) or COMPLETED (with the answer to replay);
    `expires_at` is the table's TTL."""

    status = Text()
    fingerprint = Text()
    token = Text(null=True)
    lock_until = Integer(null=True)
    response_status = Integer(null=True)
    response_body = Text(null=True)  # JSON as sent: a replay is byte-identical
