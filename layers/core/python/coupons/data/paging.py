"""Pages of a query, and their cursors: signed and bound to the query they page (coupons.domain.cursors).

A cursor stands for DynamoDB's LastEvaluatedKey: key attributes only, every one a string (the tables'
key attributes are all S: tests/infra/test_table_models.py). PynamoDB gives and takes that key in
DynamoDB's own form; the model turns it into plain strings and back (`_plain_key`, `_raw_key`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pynamodb.expressions.condition import Condition

from coupons.data import secrets
from coupons.data.models.base import Base
from coupons.domain import cursors
from coupons.domain.errors import InvalidCursor


def _plain_key(model: type[Base], raw: dict[str, Any]) -> dict[str, str]:
    found = model.from_raw_data(raw)
    return {name: getattr(found, name) for name in raw}


def _raw_key(model: type[Base], plain: dict[str, str]) -> dict[str, Any]:
    return model(**plain).serialize(null_check=False)


def page_of(
    model: type[Base],
    hash_key: str,
    *,
    query: dict[str, Any],
    limit: int,
    cursor: str | None,
    index_name: str | None = None,
    range_key_condition: Condition | None = None,
    filter_condition: Condition | None = None,
    scan_index_forward: bool | None = None,
    consistent_read: bool = False,
    record: Callable[[Any], dict[str, Any]] | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    """One page (`limit` records at most) of `model`'s items under `hash_key` (of the table, or of
    `index_name`) and the cursor of the next page, signed and bound to `query` (the listing's name and
    every parameter that shapes its answer; `filter_condition` among them). `record` turns an item into what the listing answers."""
    key_name = model._indexes[index_name]._hash_key_attribute().attr_name if index_name else "pk"
    start = decode_cursor(model, cursor, query=query, expect={key_name: hash_key})
    results = model.query(
        hash_key,
        range_key_condition=range_key_condition,
        filter_condition=filter_condition,
        index_name=index_name,
        scan_index_forward=scan_index_forward,
        consistent_read=consistent_read,
        limit=limit,
        last_evaluated_key=start,
    )
    shape = record or (lambda item: item.record())
    if filter_condition is not None:
        # One request, as before: DynamoDB's Limit counts the items it read, not those the filter kept,
        # and PynamoDB's iterator would read on until `limit` items passed the filter.
        page = next(results.page_iter)
        items = [model.from_raw_data(raw) for raw in page.get("Items", [])]
        return [shape(item) for item in items], encode_cursor(
            model, page.get("LastEvaluatedKey"), query=query
        )
    records = [shape(item) for item in results]
    return records, encode_cursor(model, results.last_evaluated_key, query=query)


def encode_cursor(model: type[Base], last_key: dict[str, Any] | None, *, query: dict[str, Any]) -> str | None:
    """The cursor for a page that ended at `last_key` (DynamoDB's form), signed and bound to `query`."""
    if not last_key:
        return None
    return cursors.issue(secrets.tenant_key(), query, _plain_key(model, last_key))


def decode_cursor(
    model: type[Base], cursor: str | None, *, query: dict[str, Any], expect: dict[str, str]
) -> dict[str, Any] | None:
    """The start key (DynamoDB's form) a cursor of `encode_cursor` for this same query stands for.
    Beyond the signature, `expect` pins attributes (the listing's partition) it must carry: a second
    lock on the same door."""
    if cursor is None:
        return None
    plain = cursors.read(secrets.tenant_key(), query, cursor)
    if (
        not isinstance(plain, dict)
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in plain.items())
        or not set(plain) <= set(model.get_attributes())
        or any(plain.get(k) != v for k, v in expect.items())
    ):
        raise InvalidCursor(field="cursor")
    return _raw_key(model, plain)


def encode_position(
    model: type[Base], query: dict[str, Any], position: tuple[int, dict[str, Any] | None] | None
) -> str | None:
    """A cursor for a listing that reads partition after partition: (partition index, last key in
    DynamoDB's form), signed and bound to `query` (what is listed: an account and its date range, a run)."""
    if position is None:
        return None
    index, key = position
    return cursors.issue(
        secrets.tenant_key(), query, {"b": index, "k": _plain_key(model, key) if key else None}
    )


def decode_position(
    model: type[Base],
    cursor: str | None,
    query: dict[str, Any],
    *,
    partitions: int,
    partition_key: Callable[[int], str],
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
        if key is not None and (
            set(key) != {"pk", "sk"} or key["pk"] != partition_key(index) or not isinstance(key["sk"], str)
        ):
            raise ValueError
    except (ValueError, KeyError, TypeError):
        raise InvalidCursor(field="cursor") from None
    return index, _raw_key(model, key) if key else None
