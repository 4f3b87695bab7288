"""Plain values <-> DynamoDB attribute values, and opaque paging cursors.

Written here rather than taken from boto3.dynamodb.types because importing that module imports all
of boto3 (and s3transfer) into every cold start; our values are few kinds: str, int, bool, None,
lists and maps. Floats are refused: money is integers in minor units.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from coupons.domain.errors import InvalidCursor


def to_attribute(value: Any) -> dict[str, Any]:
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):  # before int: bool is an int subclass
        return {"BOOL": value}
    if isinstance(value, int | Decimal):
        return {"N": str(value)}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, list | tuple):
        return {"L": [to_attribute(v) for v in value]}
    if isinstance(value, dict):
        return {"M": {k: to_attribute(v) for k, v in value.items()}}
    raise TypeError(f"cannot store {type(value).__name__} {value!r} (floats are never stored)")


def from_attribute(attribute: dict[str, Any]) -> Any:
    ((kind, value),) = attribute.items()
    if kind == "S":
        return value
    if kind == "N":
        return int(value) if value.lstrip("-").isdigit() else Decimal(value)
    if kind == "BOOL":
        return value
    if kind == "NULL":
        return None
    if kind == "L":
        return [from_attribute(v) for v in value]
    if kind == "M":
        return {k: from_attribute(v) for k, v in value.items()}
    if kind in ("SS", "NS"):
        return sorted(from_attribute({kind[0]: v}) for v in value)
    raise TypeError(f"unexpected DynamoDB type {kind}")


def to_item(values: dict[str, Any]) -> dict[str, Any]:
    return {k: to_attribute(v) for k, v in values.items() if v is not None}


def from_item(item: dict[str, Any]) -> dict[str, Any]:
    return {k: from_attribute(v) for k, v in item.items()}


def encode_cursor(last_key: dict[str, Any] | None) -> str | None:
    if not last_key:
        return None
    plain = from_item(last_key)
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


def encode_position(scope: str, position: tuple[int, dict[str, Any] | None] | None) -> str | None:
    """A cursor for a listing that reads partition after partition: (partition index, last key), tied
    to what is listed (`scope`: an account, a run)."""
    if position is None:
        return None
    index, key = position
    plain = {"r": scope, "b": index, "k": from_item(key) if key else None}
    return base64.urlsafe_b64encode(json.dumps(plain, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_position(
    cursor: str | None, scope: str, *, partitions: int, partition_key: Callable[[int], str]
) -> tuple[int, dict[str, Any] | None]:
    """The position a cursor of `encode_position` stands for; anything this listing did not issue (another
    scope, a partition out of range, a key of another partition) is an InvalidCursor."""
    if cursor is None:
        return 0, None
    try:
        plain = json.loads(base64.urlsafe_b64decode((cursor + "=" * (-len(cursor) % 4)).encode()))
        index, key = plain["b"], plain["k"]
        if plain["r"] != scope or not isinstance(index, int) or not 0 <= index < partitions:
            raise ValueError
        if key is not None and (set(key) != {"pk", "sk"} or key["pk"] != partition_key(index)):
            raise ValueError
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError):
        raise InvalidCursor(field="cursor") from None
    return index, to_item(key) if key else None
