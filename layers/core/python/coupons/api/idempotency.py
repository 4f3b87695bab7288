"""The one Idempotency-Key mechanism of every creating POST, usable as a plain function.

Same key + same request -> the first response again, nothing written again; same key + another
request -> 422; a duplicate while the first is still running -> 409. Keys are scoped per principal
and API key (domain/idempotency.py: scope). A request refused or failed after the key was claimed releases it: a
refusal writes nothing. The action gets a `Completion`: its effect commits the COMPLETED record in
its own transaction, or derives its ids from the key, so a retry after a lost completion never
applies the effect twice (data/idempotency.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from coupons.data.idempotency import Completion, IdempotencyStore, LockLost
from coupons.domain import idempotency as rules
from coupons.domain.errors import IdempotencyRequestInFlight
from coupons.domain.ids import random_token

# Longer than the API function may run (API Gateway stops waiting at 29 s), so a live request's lock
# is never taken over; a crashed one's is, after this.
LOCK_SECONDS = 60


def run_idempotent(
    store: IdempotencyStore,
    *,
    scope: str,
    key: str | None,
    method: str,
    path: str,
    body: Any,
    ttl_seconds: int,
    run: Callable[[Completion | None], tuple[int, Any]],
    redact: Callable[[Any], Any] | None = None,
    clock: Callable[[], float] | None = None,
) -> tuple[int, Any, bool]:
    """Runs `run` at most once per (scope, key). Returns (status, body, replayed).

    `run` gets the request's Completion (None without a key). `redact` shapes what is kept for
    replays (e.g. drops a secret shown only once).
    """
    if key is None:
        status, answer = run(None)
        return status, answer, False
    rules.check_key(key)
    request = rules.fingerprint(method, path, body)
    token = random_token(16)
    now = int((clock or time.time)())  # looked up per call, so a test can move time on
    expires_at = now + ttl_seconds
    existing = store.acquire(
        scope,
        key,
        fingerprint=request,
        token=token,
        now=now,
        lock_until=now + LOCK_SECONDS,
        expires_at=expires_at,
    )
    if existing is not None:
        replay = rules.on_existing(existing, request)
        return replay.status, replay.body, True
    completion = store.completion(
        scope, key, token=token, fingerprint=request, expires_at=expires_at, redact=redact
    )
    try:
        status, answer = run(completion)
    except LockLost:
        raise IdempotencyRequestInFlight(field=rules.HEADER) from None  # the key is another request's now
    except BaseException:
        # Deletes only our IN_PROGRESS lock: when the effect committed its completion before the
        # failure (a lost answer), that answer stays for the retry.
        store.release(scope, key, token=token)
        raise
    if not completion.committed:
        store.complete(scope, key, token=token, status=status, body=redact(answer) if redact else answer)
    return status, answer, completion.replayed
