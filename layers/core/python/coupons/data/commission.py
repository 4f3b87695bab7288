"""The commission schedule's versions in the main table (models: coupons.data.models.commission)."""

from __future__ import annotations

from typing import Any

from pynamodb.exceptions import PutError, TransactWriteError

from coupons.data.idempotency import COMPLETION, raise_if_lock_lost
from coupons.data.models.base import Transaction, Write, failed_condition
from coupons.data.models.commission import SCHEDULE_PK, VERSION_PREFIX, CommissionVersion, version_sk

_VERSION = "version"


class CommissionStore:
    def __init__(self, client, table_name: str):
        self._client = client
        self._version = CommissionVersion.bound(client, table_name)

    def versions(self) -> list[dict[str, Any]]:
        """Every version, oldest first (strongly consistent: clearing must see a version once written)."""
        model = self._version
        found = model.query(SCHEDULE_PK, model.sk.startswith(VERSION_PREFIX), consistent_read=True)
        return [v.record() for v in found]

    def put_version(self, version: dict[str, Any], *, completion: Write | None = None) -> bool:
        """Appends version n; False if it exists (another admin got there first). With `completion`
        (the Idempotency-Key's COMPLETED record), in one transaction with it."""
        model = self._version
        item = model.from_record(version, pk=SCHEDULE_PK, sk=version_sk(version["version"]))
        # Versions are numbered by their writer from what it read: of two writers of version n, one wins.
        condition = model.pk.does_not_exist()
        if completion is None:
            try:
                item.save(condition=condition)
            except PutError as error:
                if failed_condition(error):
                    return False
                raise
            return True
        tx = Transaction(self._client)
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
