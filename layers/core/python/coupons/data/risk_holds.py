"""Settlement holds (docs/risk.md "Review and holds"): party holds, REVIEW releases, and their decision
records, each written with its record in one TransactWriteItems (a hold is never without its record).

  RISKHOLDS / {hold_id}                  a party hold (HELD → RELEASED)
  RISKREVIEW#{redemption_id} / RELEASE   a REVIEW redemption's release
  RISKDECISION#{subject} / {at}#{id}     the record of either, one copy per subject
"""

from __future__ import annotations

from typing import Any

from pynamodb.exceptions import TransactWriteError

from coupons.data.models.base import Transaction
from coupons.data.models.risk import (
    HOLDS_PK,
    RELEASE_SK,
    DecisionRecord,
    Hold,
    ReviewRelease,
    decision_pk,
    decision_sk,
    review_pk,
)

_HOLD, _RELEASE = "hold", "release"


def add_decision(tx: Transaction, model: type[DecisionRecord], record: dict[str, Any]) -> None:
    """The record's copies, one per subject, into `tx` (a new decision id each: no condition needed)."""
    for subject in record["subjects"]:
        tx.save(model.from_record(record, pk=decision_pk(subject), sk=decision_sk(record["at"], record["decision_id"])))


class RiskHoldStore:
    def __init__(self, client, table_name: str):
        self._client = client
        self._hold = Hold.bound(client, table_name)
        self._release = ReviewRelease.bound(client, table_name)
        self._decision = DecisionRecord.bound(client, table_name)

    def add_decision(self, tx: Transaction, decision: dict[str, Any]) -> None:
        """A decision record (not a hold: a campaign's flag) into `tx`."""
        add_decision(tx, self._decision, decision)

    def put_hold(self, hold: dict[str, Any], decision: dict[str, Any], tx: Transaction | None = None) -> bool:
        """Puts a new hold with its record; False when a hold with its id exists (a retry, or a flag's
        deterministic id seen before). With `tx` the actions join it and nothing is committed here."""
        H = self._hold
        own = tx is None
        tx = tx or Transaction(self._client)
        # A hold id is written once: a retried request (or a redelivered flag) never makes a second.
        tx.save(H.from_record(hold, pk=HOLDS_PK, sk=hold["hold_id"]), H.pk.does_not_exist(), tag=_HOLD)
        add_decision(tx, self._decision, decision)
        if not own:
            return True
        try:
            tx.commit()
        except TransactWriteError as error:
            if tx.failed(error, _HOLD):
                return False
            raise
        return True

    def holds(self) -> list[dict[str, Any]]:
        """Every hold, held or released (consistent: a hold placed just before a run is in force for it)."""
        return [h.record() for h in self._hold.query(HOLDS_PK, consistent_read=True)]

    def hold(self, hold_id: str) -> dict[str, Any] | None:
        try:
            return self._hold.get(HOLDS_PK, hold_id, consistent_read=True).record()
        except self._hold.DoesNotExist:
            return None

    def release(self, released: dict[str, Any], decision: dict[str, Any]) -> bool:
        """Records the release; False when the hold was released already (the first release stands)."""
        H = self._hold
        tx = Transaction(self._client)
        tx.update(
            H(HOLDS_PK, released["hold_id"]),
            [
                H.status.set("RELEASED"),
                H.released_by.set(released["released_by"]),
                H.released_at.set(released["released_at"]),
            ],
            # Only a hold still HELD: two releases at once record one, and the first one's time is the
            # one runs compare with.
            H.status == "HELD",
            tag=_HOLD,
        )
        add_decision(tx, self._decision, decision)
        try:
            tx.commit()
        except TransactWriteError as error:
            if tx.failed(error, _HOLD):
                return False
            raise
        return True

    def release_review(self, release: dict[str, Any], decision: dict[str, Any]) -> dict[str, Any] | None:
        """Puts a REVIEW redemption's release with its record; the existing release (the first stands)
        when there is one, else None."""
        R = self._release
        tx = Transaction(self._client)
        # Released once: a second release changes nothing and is answered with the first.
        tx.save(
            R.from_record(release, pk=review_pk(release["redemption_id"]), sk=RELEASE_SK),
            R.pk.does_not_exist(),
            tag=_RELEASE,
        )
        add_decision(tx, self._decision, decision)
        try:
            tx.commit()
        except TransactWriteError as error:
            if tx.failed(error, _RELEASE):
                return self.review_release(release["redemption_id"])
            raise
        return None

    def review_release(self, redemption_id: str) -> dict[str, Any] | None:
        try:
            return self._release.get(review_pk(redemption_id), RELEASE_SK, consistent_read=True).record()
        except self._release.DoesNotExist:
            return None

    def released_reviews(self, review_holds: set[str]) -> set[str]:
        """Which of these review holds (`review:{redemption_id}`) are released: one GetItem each (reviews
        are rare, and GetItem is what settlement's claim role may read; no BatchGetItem)."""
        found = (self.review_release(h.removeprefix("review:")) for h in sorted(review_holds))
        return {r["review_hold"] for r in found if r is not None}


__all__ = ["RiskHoldStore", "add_decision"]
