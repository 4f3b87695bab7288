"""Turns the x-api-key header into a principal; verified keys are cached briefly per container."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from coupons.domain import api_keys
from coupons.domain.errors import Unauthenticated
from coupons.domain.principals import Principal, parse_principal

HEADER = "x-api-key"


class Authenticator:
    def __init__(
        self, lookup: Callable[[str], dict[str, Any] | None], *, cache_seconds: int, clock=time.monotonic
    ):
        self._lookup = lookup
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._cache: dict[str, tuple[float, str, Principal]] = {}
        self._lock = threading.Lock()

    def principal(self, plain_key: str | None) -> Principal:
        if not plain_key:
            raise Unauthenticated("the x-api-key header is missing")
        key_id = api_keys.key_id_of(plain_key)
        if key_id is None:
            raise Unauthenticated("the x-api-key is not a key this service issued")
        now = self._clock()
        with self._lock:
            cached = self._cache.get(key_id)
        if cached and cached[0] > now:
            _, secret_hash, principal = cached
        else:
            record = self._lookup(key_id)
            if record is None or record.get("revoked_at"):
                raise Unauthenticated("the x-api-key is unknown or revoked")
            secret_hash, principal = record["secret_hash"], parse_principal(record["principal"])
            with self._lock:
                self._cache[key_id] = (now + self._cache_seconds, secret_hash, principal)
        if not api_keys.matches(plain_key, secret_hash):
            raise Unauthenticated("the x-api-key is unknown or revoked")
        return principal

    def forget(self, key_id: str) -> None:
        """Drops a revoked key at once in this container (others wait out the cache time)."""
        with self._lock:
            self._cache.pop(key_id, None)
