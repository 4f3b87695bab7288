"""Idempotency-Key rules: what counts as the same request, and what a second arrival gets."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from coupons.domain.errors import IdempotencyKeyReused, IdempotencyRequestInFlight, InvalidField

HEADER = "Idempotency-Key"
_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")  # printable ASCII, no spaces


def check_key(key: str) -> str:
    if not _KEY.match(key):
        raise InvalidField("Idempotency-Key must be 1 to 255 printable ASCII characters", field=HEADER)
    return key


def scope(principal: object, api_key_id: str | None) -> str:
    """Whose keys these are: the principal and the API key it called with, so two clients (two admin
    keys, say) never replay each other's answers. `/` is in neither part, and no scope has a `#`."""
    return f"{principal}/{api_key_id}" if api_key_id else str(principal)


def fingerprint(method: str, path: str, body: Any) -> str:
    """Same request = same method, path and parsed body; JSON whitespace and key order do not count."""
    canonical = json.dumps([method.upper(), path, body], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Replay:
    status: int
    body: Any


def on_existing(record: dict[str, Any], request_fingerprint: str) -> Replay:
    """What a request gets when its key already has a record (a live one: expired ones never get here)."""
    if record.get("fingerprint") != request_fingerprint:
        raise IdempotencyKeyReused(field=HEADER)
    if record.get("status") == "COMPLETED":
        return Replay(int(record["response_status"]), record["response_body"])
    raise IdempotencyRequestInFlight(field=HEADER)
