"""Plain values <-> DynamoDB's attribute-value form, for tests that seed raw items or build stream
records by hand: boto3's own serializer (the product's code speaks through PynamoDB models instead)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

_to, _from = TypeSerializer(), TypeDeserializer()


def to_item(values: dict[str, Any]) -> dict[str, Any]:
    """An item as stored; None values are left out, as the stores leave them out."""
    return {k: _to.serialize(v) for k, v in values.items() if v is not None}


def from_item(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _ints(_from.deserialize(v)) for k, v in item.items()}


def _ints(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else value
    if isinstance(value, list):
        return [_ints(v) for v in value]
    if isinstance(value, dict):
        return {k: _ints(v) for k, v in value.items()}
    if isinstance(value, set):
        return sorted(_ints(v) for v in value)
    return value
