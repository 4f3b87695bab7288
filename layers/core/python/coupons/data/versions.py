"""Appending a version to a versioned, never-retroactive schedule (funding rules, the commission
schedule): version n is written once, alone or in one transaction with its Idempotency-Key's completion."""

from __future__ import annotations

from pynamodb.exceptions import PutError, TransactWriteError
from pynamodb.models import Model

from coupons.data.idempotency import COMPLETION, raise_if_lock_lost
from coupons.data.models.base import Transaction, Write, failed_condition

_VERSION = "version"


def append_version(client, item: Model, *, completion: Write | None = None) -> bool:
    """Puts `item` (version n); False if version n exists (another writer got there first)."""
    # Versions are numbered by their writer from what it read: of two writers of version n, one wins.
    condition = type(item).pk.does_not_exist()
    if completion is None:
        try:
            item.save(condition=condition)
        except PutError as error:
            if failed_condition(error):
                return False
            raise
        return True
    tx = Transaction(client)
    tx.save(item, condition, tag=_VERSION)
    tx.add(completion, tag=COMPLETION)
    try:
        tx.commit()
    except TransactWriteError as error:
        raise_if_lock_lost(error, tx)
        if tx.failed(error, _VERSION):
            return False
        raise
    return True
