"""Plain values <-> DynamoDB attribute values, and paging cursors (signed: coupons.domain.cursors).

Written here rather than taken from boto3.dynamodb.types because importing that module imports all
of boto3 (and s3transfer) into every cold start; our values are few kinds: str, int, bool, None,
lists and maps. Floats are refused: money is integers in minor units.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from coupons.data import secrets
from coupons.domain import cursors
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


def encode_cursor(last_key: dict[str, Any] | None, *, query: dict[str, Any]) -> str | None:
    """The cursor for a page that ended at `last_key`, signed and bound to `query` (coupons.domain.cursors):
    the listing's name and every parameter that shapes its answer."""
    if not last_key:
        return None
    return cursors.issue(secrets.tenant_key(), query, from_item(last_key))


def decode_cursor(
    cursor: str | None, *, query: dict[str, Any], expect: dict[str, str]
) -> dict[str, Any] | None:
    """The start key a cursor of `encode_cursor` for this same query stands for. Beyond the signature,
    `expect` pins attributes (the listing's partition) it must carry: a second lock on the same door."""
    if cursor is None:
        return None
    plain = cursors.read(secrets.tenant_key(), query, cursor)
    if (
        not isinstance(plain, dict)
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in plain.items())
        or any(plain.get(k) != v for k, v in expect.items())
    ):
        raise InvalidCursor(field="cursor")
    return to_item(plain)


def encode_position(query: dict[str, Any], position: tuple[int, dict[str, Any] | None] | None) -> str | None:
    """A cursor for a listing that reads partition after partition: (partition index, last key), signed
    and bound to `query` (what is listed: an account and its date range, a run)."""
    if position is None:
        return None
    index, key = position
    return cursors.issue(secrets.tenant_key(), query, {"b": index, "k": from_item(key) if key else None})


def decode_position(
    cursor: str | None, query: dict[str, Any], *, partitions: int, partition_key: Callable[[int], str]
) -> tuple[int, dict[str, Any] | None]:
    """The position a cursor of `encode_position` for this same query stands for; anything else is an
    InvalidCursor (and, behind the signature, a partition out of range or a key of another partition)."""
    if cursor is None:
        return 0, None
    plain = cursors.read(secrets.tenant_key(), query, cursor)
    try:
        index, key = plain["b"], plain["k"]
        if not isinstance(index, int) or not 0 <= index < partitions:
            raise ValueError
        if key is not None and (set(key) != {"pk", "sk"} or key["pk"] != partition_key(index)):
            raise ValueError
    except (ValueError, KeyError, TypeError):
        raise InvalidCursor(field="cursor") from None
    return index, to_item(key) if key else None
