"""The commission schedule's versions in the main table (models: coupons.data.models.commission)."""

from __future__ import annotations

from typing import Any

from coupons.data.models.base import Write
from coupons.data.models.commission import SCHEDULE_PK, VERSION_PREFIX, CommissionVersion, version_sk
from coupons.data.versions import append_version


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
        item = self._version.from_record(version, pk=SCHEDULE_PK, sk=version_sk(version["version"]))
        return append_version(self._client, item, completion=completion)
