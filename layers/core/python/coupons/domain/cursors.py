"""Paging cursors: opaque to clients, signed with the tenant key and bound to the query that issued them.

A cursor is `coupons.domain.signing`'s text over the listing's position (a start key, or a partition
index and a key), with the MAC also covering the query: the listing's name and everything that shapes
its answer (partition, filters, date range). The query itself is not in the cursor; the reader
recomputes it from the request. So a cursor from another listing, one with any character changed, or one
reused with other parameters is refused (InvalidCursor, a 400 naming `cursor`) before anything in it is
read, and no start key reaches DynamoDB that this API did not produce for this very query.
"""

from __future__ import annotations

import json
from typing import Any

from coupons.domain import signing
from coupons.domain.errors import InvalidCursor

MAX_CURSOR_CHARS = 4096
_DOMAIN = b"cursor:v1:"


def issue(key: bytes, query: dict[str, Any], position: Any) -> str:
    return signing.seal(key, _domain(query), _canonical(position))


def read(key: bytes, query: dict[str, Any], cursor: str) -> Any:
    """The position `issue(key, query, position)` signed; InvalidCursor for any other text."""
    try:
        return json.loads(signing.unseal(key, _domain(query), cursor, max_chars=MAX_CURSOR_CHARS))
    except (signing.BadSignature, ValueError):
        raise InvalidCursor(field="cursor") from None


def _domain(query: dict[str, Any]) -> bytes:
    # Canonical JSON holds no raw newline, so the newline ends the query unambiguously.
    return _DOMAIN + _canonical(query) + b"\n"


def _canonical(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=True).encode()
