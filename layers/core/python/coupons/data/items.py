"""Plain values <-> DynamoDB attribute values, and opaque paging cursors."""

from __future__ import annotations

import base64
import binascii
import json
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from coupons.domain.errors import InvalidCursor

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def to_item(values: dict[str, Any]) -> dict[str, Any]:
    return {k: _serializer.serialize(v) for k, v in values.items() if v is not None}


def _plain(value: Any) -> Any:
    # We never store floats: every number is an integer (money in minor units, counts, epochs).
    if isinstance(value, Decimal):
        return int(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, set):
        return sorted(_plain(v) for v in value)
    return value


def from_item(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _plain(_deserializer.deserialize(v)) for k, v in item.items()}


def encode_cursor(last_key: dict[str, Any] | None) -> str | None:
    if not last_key:
        return None
    plain = {k: _deserializer.deserialize(v) for k, v in last_key.items()}
    return base64.urlsafe_b64encode(json.dumps(plain, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None, *, expect: dict[str, str]) -> dict[str, Any] | None:
    """The start key a cursor stands for; `expect` pins attributes (the listing's partition) it must carry."""
    if cursor is None:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        plain = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidCursor(field="cursor") from None
    if (
        not isinstance(plain, dict)
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in plain.items())
        or any(plain.get(k) != v for k, v in expect.items())
    ):
        raise InvalidCursor(field="cursor")
    return to_item(plain)
