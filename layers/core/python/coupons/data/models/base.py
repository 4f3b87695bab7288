"""The single-table base model: the shared key and index attributes, the table bound at first use.

Every entity of the main table is a `MainModel` subclass sharing `pk`/`sk` and the two general-purpose
indexes (`gsi1`, `gsi2`, all attributes projected). Key strings are the ones the stores always wrote
(`CAMPAIGN#{id}` / `CAMPAIGN`, ...): the models change how the code speaks to DynamoDB, not what is stored.

A store is made with a botocore client and a table name (the functions pass theirs from the
environment; the benches a counting client and a table per run), so a store binds the models it uses to
both (`bound`): a subclass whose Meta names that table and whose connection talks through that client.
Nothing connects at import: a model's table name is read from the environment (`MAIN_TABLE_NAME`) at its
first request, and PynamoDB's client is the project's (coupons.data.clients: short timeouts, standard
retries, AWS_ENDPOINT_URL for the local stack's moto server; moto in-process in the tests).
"""

from __future__ import annotations

import json
import os
import threading
import weakref
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from pynamodb.attributes import (
    Attribute,
    BooleanAttribute,
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    TTLAttribute,
    UnicodeAttribute,
)
from pynamodb.connection import Connection
from pynamodb.exceptions import PynamoDBException
from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from coupons.data import clients

M = TypeVar("M", bound="Base")


class Integer(NumberAttribute):
    """A DynamoDB number that is always an integer: money in minor units, counts. A float (or a bool)
    is refused before anything is sent."""

    def serialize(self, value: Any) -> str:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(
                f"cannot store {type(value).__name__} {value!r} as an integer (floats are never stored)"
            )
        return str(value)

    def deserialize(self, value: str) -> int:
        return int(value)


class EpochTTL(TTLAttribute):
    """The table's TTL attribute, as the stores always handled it: epoch seconds (an int) in, an int out.
    (PynamoDB's TTLAttribute speaks datetimes; the records, the services and the domain speak epochs.)"""

    def _normalize(self, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        return super()._normalize(value)

    def serialize(self, value: Any) -> str | None:
        if value is None:
            return None
        return str(value) if isinstance(value, int) else super().serialize(value)

    def deserialize(self, value: str) -> int:
        return int(json.loads(value))


Text = UnicodeAttribute
Flag = BooleanAttribute
Map = MapAttribute  # raw: a plain dict, its values typed as stored (str S, int N, bool BOOL, ...)
List = ListAttribute  # raw: a plain list


class Gsi1(GlobalSecondaryIndex):
    class Meta:
        index_name = "gsi1"
        projection = AllProjection()

    gsi1pk = UnicodeAttribute(hash_key=True)
    gsi1sk = UnicodeAttribute(range_key=True)


class Gsi2(GlobalSecondaryIndex):
    class Meta:
        index_name = "gsi2"
        projection = AllProjection()

    gsi2pk = UnicodeAttribute(hash_key=True)
    gsi2sk = UnicodeAttribute(range_key=True)


_bind_lock = threading.Lock()


class Base(Model):
    """What every table's models share: the table found at first use, the project's client, plain
    records in and out."""

    class Meta:
        table_name: str | None = None
        env_var: ClassVar[str] = ""

    # The key attributes a store never hands back in a record.
    KEYS: ClassVar[tuple[str, ...]] = ("pk", "sk")
    _client: ClassVar[Any] = None  # set on a bound subclass
    # Weak: a bound subclass lives as long as the stores using it, and with it its client. A strong
    # cache kept every client ever bound (the tests make thousands) and each subclass's connection.
    _bound: ClassVar[weakref.WeakValueDictionary] = weakref.WeakValueDictionary()

    @classmethod
    def _get_connection(cls):
        if cls.Meta.table_name is None:
            # First use: the environment names the table (never read at import: the tests and the local
            # stack set it after the code is loaded).
            cls.Meta.table_name = os.environ[cls.Meta.env_var]
        connection = super()._get_connection()
        client = cls._client if cls._client is not None else clients.dynamodb()
        # PynamoDB would make its own botocore client; ours is the one every store shares (and the one
        # the benches count requests on).
        if connection.connection._client is not client:
            connection.connection._client = client
        return connection

    @classmethod
    def bound(cls: type[M], client: Any, table_name: str) -> type[M]:
        """This model on `table_name` through `client` (a subclass made once per client and table)."""
        key = (cls, id(client), table_name)
        with _bind_lock:
            found = Base._bound.get(key)
            if found is None or found._client is not client:
                meta = type("Meta", (cls.Meta,), {"table_name": table_name})
                found = type(
                    cls.__name__, (cls,), {"Meta": meta, "_client": client, "__module__": cls.__module__}
                )
                Base._bound[key] = found
            return found

    @classmethod
    def from_record(cls: type[M], record: dict[str, Any], **keys: Any) -> M:
        """A model instance of a store's record (None values are not stored, as before) and its keys."""
        names = cls.get_attributes()
        values = {**record, **keys}
        unknown = set(values) - set(names)
        if unknown:
            raise TypeError(f"{cls.__name__} has no attribute {sorted(unknown)}")
        return cls(**{k: v for k, v in values.items() if v is not None})

    def record(self, *, keep_keys: bool = False) -> dict[str, Any]:
        """The plain record a store returns: attribute names to plain values, absent ones left out."""
        out: dict[str, Any] = {}
        for name in self.get_attributes():
            if not keep_keys and name in self.KEYS:
                continue
            value = getattr(self, name)
            if value is None:
                continue
            out[name] = _plain(value)
        return out


def _plain(value: Any) -> Any:
    if isinstance(value, MapAttribute):
        return {k: _plain(v) for k, v in value.as_dict().items()}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


class MainModel(Base):
    """An entity of the main table (coupons.data.schema.MAIN)."""

    class Meta:
        table_name: str | None = None
        env_var = "MAIN_TABLE_NAME"

    KEYS = ("pk", "sk", "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk")

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    gsi1pk = UnicodeAttribute(null=True)
    gsi1sk = UnicodeAttribute(null=True)
    gsi2pk = UnicodeAttribute(null=True)
    gsi2sk = UnicodeAttribute(null=True)
    gsi1 = Gsi1()
    gsi2 = Gsi2()
    # The table's TTL: idempotency records and whatever else expires carry it (epoch seconds).
    expires_at = EpochTTL(null=True)


class BankModel(Base):
    """A record of the simulated bank's own table (coupons.data.schema.BANK; coupons.channels.simulated)."""

    class Meta:
        table_name: str | None = None
        env_var = "BANK_TABLE_NAME"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)


@dataclass(frozen=True)
class Write:
    """One action of a transaction, built by one store and committed by another's `Transaction` (the
    Idempotency-Key's COMPLETED record, a coupon's history event): `kind` is put / update / delete /
    check; `actions` the update actions; `return_values` ReturnValuesOnConditionCheckFailure."""

    kind: str
    model: Any  # an instance (put, update, delete) or a model class (check)
    condition: Condition | None = None
    actions: tuple[Action, ...] = ()
    return_values: str | None = None
    key: tuple[Any, Any] | None = None  # check: (hash_key, range_key)


def connection(client: Any) -> Connection:
    """A PynamoDB connection through `client`, for TransactWrite / TransactGet."""
    made = Connection()
    made._client = client
    return made


class Transaction(TransactWrite):
    """TransactWrite that remembers where each action went. PynamoDB sends condition checks, then
    deletes, puts and updates, whatever order they were added in; the cancellation reasons follow the
    order sent, so a store asks `position(tag)` for the reason of the action it tagged."""

    def __init__(self, client: Any, *, client_request_token: str | None = None) -> None:
        super().__init__(connection=connection(client), client_request_token=client_request_token)
        self._tags: dict[str, list[Any]] = {"check": [], "delete": [], "put": [], "update": []}

    def condition_check(
        self, model_cls, hash_key, range_key=None, condition=None, *, return_values=None, tag: Any = None
    ):
        self._tags["check"].append(tag)
        super().condition_check(model_cls, hash_key, range_key, condition)
        if return_values is not None:
            # PynamoDB's check takes no ReturnValuesOnConditionCheckFailure; DynamoDB does (a risk list
            # entry's check returns the entry that refused: data/risk.py).
            self._condition_check_items[-1]["ReturnValuesOnConditionCheckFailure"] = return_values

    def delete(self, model, condition=None, *, add_version_condition: bool = True, tag: Any = None):
        self._tags["delete"].append(tag)
        super().delete(model, condition, add_version_condition=add_version_condition)

    def save(self, model, condition=None, return_values=None, *, tag: Any = None):
        self._tags["put"].append(tag)
        super().save(model, condition, return_values)

    def update(
        self, model, actions, condition=None, return_values=None, *, add_version_condition=True, tag=None
    ):
        self._tags["update"].append(tag)
        super().update(model, actions, condition, return_values, add_version_condition=add_version_condition)

    def add(self, write: Write, *, tag: Any = None) -> None:
        """A Write made elsewhere (see Write), tagged like the actions added directly."""
        if write.kind == "put":
            self.save(write.model, write.condition, write.return_values, tag=tag)
        elif write.kind == "update":
            self.update(write.model, list(write.actions), write.condition, write.return_values, tag=tag)
        elif write.kind == "delete":
            self.delete(write.model, write.condition, tag=tag)
        elif write.kind == "check":
            hash_key, range_key = write.key or (None, None)
            self.condition_check(write.model, hash_key, range_key, write.condition, tag=tag)
        else:
            raise ValueError(f"unknown write kind {write.kind!r}")

    def reason(self, error: Exception, tag: Any) -> Any:
        """The cancellation reason (PynamoDB CancellationReason, or None) of the action tagged `tag`."""
        index = self.position(tag)
        reasons = list(getattr(error, "cancellation_reasons", None) or [])
        return reasons[index] if index is not None and index < len(reasons) else None

    def failed(self, error: Exception, tag: Any) -> bool:
        """Whether the action tagged `tag` failed its condition in the cancelled transaction `error`."""
        found = self.reason(error, tag)
        return found is not None and found.code == "ConditionalCheckFailed"

    def position(self, tag: Any) -> int | None:
        order = self._tags["check"] + self._tags["delete"] + self._tags["put"] + self._tags["update"]
        return order.index(tag) if tag in order else None

    def commit(self) -> None:
        self._commit()


def plain_image(image: dict[str, Any]) -> dict[str, Any]:
    """Any item in DynamoDB's form (a stream image of whatever kind) as plain values, decoded by
    PynamoDB's raw map (numbers come back int, never float, for the integers the project stores)."""
    return MapAttribute().deserialize(image)


def failed_condition(error: Exception) -> bool:
    """A PutError / UpdateError / DeleteError whose cause is the request's condition."""
    return (
        isinstance(error, PynamoDBException)
        and error.cause_response_code == "ConditionalCheckFailedException"
    )


def conflicted(error: Exception) -> bool:
    """A TransactWriteError cancelled because another transaction held one of its items at that moment
    (TransactionConflict) and for no condition: nothing was written, trying again is safe."""
    codes = {r.code for r in getattr(error, "cancellation_reasons", None) or [] if r is not None}
    return "TransactionConflict" in codes and "ConditionalCheckFailed" not in codes


def cancelled_by_condition(error: Exception, index: int | None) -> bool:
    """A TransactWriteError whose action at `index` (Transaction.position) failed its condition."""
    if index is None:
        return False
    reasons = getattr(error, "cancellation_reasons", None) or []
    return (
        index < len(reasons)
        and reasons[index] is not None
        and reasons[index].code == "ConditionalCheckFailed"
    )


__all__ = [
    "Attribute", "Base", "MainModel", "BankModel", "Integer", "EpochTTL", "Text", "Flag", "Map", "List", "Gsi1", "Gsi2",
    "Transaction", "Write", "connection", "plain_image", "failed_condition", "cancelled_by_condition",
    "conflicted",
]  # fmt: skip
