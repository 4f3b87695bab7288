"""The anomaly detector's items (docs/risk.md "Anomaly detection"): one baseline per key, a marker per
stream record counted, and the holds and records of its flags, all of one record in ONE transaction:
a record redelivered (Lambda restarts a shard from its lowest failed record) finds its marker and
changes nothing, and a flag's hold is never without the baseline that raised it, nor the reverse.

  RISKBASE#{merchant|campaign}:{id} / STATE   Baseline (the tracker as JSON, a version)
  RISKSEEN#{redemption_id} / SEEN             Seen (TTL: the stream keeps records 24 h)
"""

from __future__ import annotations

from typing import Any

from pynamodb.exceptions import TransactWriteError

from coupons.data.models.base import Transaction
from coupons.data.models.risk import Baseline, Seen, baseline_pk, seen_pk
from coupons.data.risk_holds import RiskHoldStore

STATE_SK, SEEN_SK = "STATE", "SEEN"
SEEN_TTL_SECONDS = 2 * 24 * 3600
_SEEN = "seen"


class AlreadySeen(Exception):
    """This stream record was counted before (a redelivery)."""


class BaselineMoved(Exception):
    """Another batch updated one of the keys since it was read: read again."""


class AnomalyStore:
    def __init__(self, client, table_name: str):
        self._client = client
        self._baseline = Baseline.bound(client, table_name)
        self._seen = Seen.bound(client, table_name)
        self._holds = RiskHoldStore(client, table_name)

    def baselines(self, keys: list[str]) -> dict[str, tuple[str | None, int]]:
        """{key: (state JSON or None, version: 0 when none)}, read consistently."""
        found: dict[str, tuple[str | None, int]] = {}
        for key in keys:
            try:
                item = self._baseline.get(baseline_pk(key), STATE_SK, consistent_read=True)
                found[key] = (item.state, item.version)
            except self._baseline.DoesNotExist:
                found[key] = (None, 0)
        return found

    def seen(self, source_id: str) -> bool:
        try:
            self._seen.get(seen_pk(source_id), SEEN_SK, consistent_read=True)
            return True
        except self._seen.DoesNotExist:
            return False

    def commit(
        self,
        source_id: str,
        states: dict[str, tuple[str, int]],
        holds: list[tuple[dict[str, Any], dict[str, Any]]],
        decisions: list[dict[str, Any]],
        *,
        at: int,
    ) -> None:
        """The record's marker, each key's new state (read at `version`), the flags' holds and records."""
        B, S = self._baseline, self._seen
        tx = Transaction(self._client)
        # Counted once: a redelivered record finds its marker and the whole transaction is refused.
        tx.save(
            S(seen_pk(source_id), SEEN_SK, source_id=source_id, expires_at=at + SEEN_TTL_SECONDS),
            S.pk.does_not_exist(),
            tag=_SEEN,
        )
        for key, (state, version) in states.items():
            # The state as read: a batch of another shard that updated the key since makes us read again.
            condition = B.pk.does_not_exist() if version == 0 else (B.version == version)
            tx.save(
                B(baseline_pk(key), STATE_SK, key=key, state=state, version=version + 1),
                condition,
                tag=("base", key),
            )
        for hold, decision in holds:
            self._holds.put_hold(hold, decision, tx=tx)
        for decision in decisions:
            self._holds.add_decision(tx, decision)
        try:
            tx.commit()
        except TransactWriteError as error:
            if tx.failed(error, _SEEN):
                raise AlreadySeen(source_id) from None
            if any(tx.failed(error, ("base", key)) for key in states):
                raise BaselineMoved() from None
            raise


__all__ = ["AlreadySeen", "AnomalyStore", "BaselineMoved"]
