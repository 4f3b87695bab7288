"""Reconciliation's items (models: coupons.data.models.reconciliation): runs, exceptions (OPEN →
RESOLVED, never deleted), compensations, and the state a statement proved for a transfer."""

from __future__ import annotations

from typing import Any

from pynamodb.exceptions import PutError, UpdateError

from coupons.data import paging
from coupons.data.models.base import failed_condition
from coupons.data.models.reconciliation import (
    COMPENSATION_SK,
    EXCEPTION_SK,
    EXCEPTIONS_INDEX_PK,
    RESOLUTIONS_PENDING_PK,
    RUN_SK,
    RUNS_INDEX_PK,
    TRANSFER_SK,
    ClaimedItem,
    CompensationItem,
    ReconExceptionItem,
    ReconRun,
    TransferState,
    compensation_pk,
    exception_pk,
    recon_run_pk,
    transfer_state_pk,
)

OPEN, RESOLVED = "OPEN", "RESOLVED"
# A finance RESEND's `resolution.resend.state`: waiting for the reconciliation function to send it; the
# channel accepted it; the channel refused it (the exception is OPEN again).
RESEND_PENDING, RESEND_SENT, RESEND_REFUSED = "PENDING", "SENT", "REFUSED"


class ExceptionChanged(Exception):
    """The exception is not in the state the caller read (resolved meanwhile, another proposal)."""


def _clean(value: Any) -> Any:
    # None is never stored (a raw map would write NULL attributes, items would grow for nothing).
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


class ReconciliationStore:
    def __init__(self, client, table_name: str):
        self._run = ReconRun.bound(client, table_name)
        self._exception = ReconExceptionItem.bound(client, table_name)
        self._compensation = CompensationItem.bound(client, table_name)
        self._transfer = TransferState.bound(client, table_name)
        self._claimed = ClaimedItem.bound(client, table_name)

    # -- runs --------------------------------------------------------------------------------

    def start_run(self, record: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """(the run, True) if this call created it; (the stored run, False) when it exists: one file
        version delivered twice is one run."""
        R = self._run
        item = R.from_record(
            {"kind": "RECON_RUN", **record},
            pk=recon_run_pk(record["run_id"]),
            sk=RUN_SK,
            gsi1pk=RUNS_INDEX_PK,
            gsi1sk=f"{record['statement_date']}#{record['run_id']}",
        )
        try:
            # One run per file version: the run id is derived from the key and its version id.
            item.save(condition=R.pk.does_not_exist())
            return item.record(), True
        except PutError as error:
            if not failed_condition(error):
                raise
        return self.run(record["run_id"]), False

    def run(self, run_id: str) -> dict[str, Any] | None:
        try:
            return self._run.get(recon_run_pk(run_id), RUN_SK, consistent_read=True).record()
        except self._run.DoesNotExist:
            return None

    def update_run(self, run_id: str, changes: dict[str, Any]) -> None:
        R = self._run
        item = R(recon_run_pk(run_id), RUN_SK)
        actions = [getattr(R, k).set(_clean(v)) for k, v in changes.items() if v is not None]
        # The run exists (start_run made it): never a stub run from a late step.
        item.update(actions=actions, condition=R.pk.exists())

    def add_run_exception(self, run_id: str, exception_id: str) -> None:
        """An exception found after the match (the ledger check of Complete) joins the run's list once."""
        R = self._run
        try:
            R(recon_run_pk(run_id), RUN_SK).update(
                actions=[R.exception_ids.set((R.exception_ids | []).append([exception_id]))],
                # The run exists, and a retried step does not list the exception twice.
                condition=R.pk.exists() & ~R.exception_ids.contains(exception_id),
            )
        except UpdateError as error:
            if not failed_condition(error):
                raise

    def runs(self, *, limit: int, cursor: str | None, date: str | None = None):
        R = self._run
        return paging.page_of(
            R,
            RUNS_INDEX_PK,
            index_name="gsi1",
            query={"list": "recon-runs", "date": date},
            limit=limit,
            cursor=cursor,
            range_key_condition=R.gsi1sk.startswith(f"{date}#") if date else None,
            scan_index_forward=False,
        )

    # -- exceptions --------------------------------------------------------------------------

    def record_exception(self, record: dict[str, Any], *, run_id: str, at: str) -> bool:
        """True if the exception is new. An existing one (a replay, or a TIMING still open the next
        day) is updated in place: its facts and when it was last seen, never its status."""
        E = self._exception
        item = E.from_record(
            _clean(
                {
                    "kind": "RECON_EXCEPTION",
                    **record,
                    "status": OPEN,
                    "opened_at": at,
                    "opened_by_run": run_id,
                    "last_seen_run": run_id,
                    "last_seen_at": at,
                }
            ),
            pk=exception_pk(record["exception_id"]),
            sk=EXCEPTION_SK,
            gsi1pk=EXCEPTIONS_INDEX_PK,
            gsi1sk=f"{record['date']}#{record['exception_id']}",
        )
        try:
            # The id is derived from what the difference is about: the first run to see it creates it.
            item.save(condition=E.pk.does_not_exist())
            return True
        except PutError as error:
            if not failed_condition(error):
                raise
        E(exception_pk(record["exception_id"]), EXCEPTION_SK).update(
            actions=[
                E.last_seen_run.set(run_id),
                E.last_seen_at.set(at),
                E.facts.set(_clean(record.get("facts") or {})),
            ],
            condition=E.pk.exists(),  # never deleted: it is there
        )
        return False

    def exception(self, exception_id: str) -> dict[str, Any] | None:
        try:
            return self._exception.get(exception_pk(exception_id), EXCEPTION_SK, consistent_read=True).record()
        except self._exception.DoesNotExist:
            return None

    def exceptions_by_id(self, exception_ids: list[str]) -> list[dict[str, Any]]:
        """Those of these ids that exist (a trace names the ids a transfer's exceptions would have)."""
        keys = [(exception_pk(i), EXCEPTION_SK) for i in exception_ids]
        found = [e.record() for e in self._exception.batch_get(keys, consistent_read=True)]
        return sorted(found, key=lambda e: (e["opened_at"], e["exception_id"]))

    def set_compensated(self, exception_id: str, *, action: str, compensation_id: str, review: bool,
                        resolution: dict[str, Any] | None) -> None:  # fmt: skip
        E = self._exception
        actions = [E.action.set(action), E.compensation_id.set(compensation_id), E.review.set(int(review))]
        condition = E.pk.exists()
        if resolution is not None:
            actions += [E.status.set(RESOLVED), E.resolution.set(_clean(resolution)),
                        E.resolved_at.set(resolution["at"])]  # fmt: skip
            # Resolved automatically only while OPEN: a person's resolution is never overwritten.
            condition = condition & (E.status == OPEN)
        try:
            E(exception_pk(exception_id), EXCEPTION_SK).update(actions=actions, condition=condition)
        except UpdateError as error:
            if not failed_condition(error):
                raise

    def propose(self, exception_id: str, proposal: dict[str, Any]) -> None:
        E = self._exception
        try:
            E(exception_pk(exception_id), EXCEPTION_SK).update(
                actions=[E.proposal.set(_clean(proposal)), self._logged({"proposed": True, **proposal})],
                # Four-eyes: one proposal at a time, on an OPEN exception.
                condition=E.pk.exists() & (E.status == OPEN) & E.proposal.does_not_exist(),
            )
        except UpdateError as error:
            if failed_condition(error):
                raise ExceptionChanged(exception_id) from None
            raise

    def resolve(self, exception_id: str, resolution: dict[str, Any], *, status: str = RESOLVED) -> None:
        """`resolution["journal"]` (id, currency, legs) or `resolution["resend"]` (an instruction): the
        exception joins the pending-resolutions index, from which the reconciliation function posts
        the journal or sends the instruction (services/reconciliation_resolutions.py)."""
        E = self._exception
        pending = []
        if resolution.get("journal") or resolution.get("resend"):
            pending = [E.gsi2pk.set(RESOLUTIONS_PENDING_PK), E.gsi2sk.set(f"{resolution['at']}#{exception_id}")]
        try:
            E(exception_pk(exception_id), EXCEPTION_SK).update(
                actions=[
                    E.status.set(status),
                    E.resolution.set(_clean(resolution)),
                    E.resolved_at.set(resolution["at"]),
                    E.proposal.remove(),
                    self._logged(resolution),
                    *pending,
                ],
                # Resolved once: two finance users resolving at once, one wins, the other is told.
                condition=E.pk.exists() & (E.status == OPEN),
            )
        except UpdateError as error:
            if failed_condition(error):
                raise ExceptionChanged(exception_id) from None
            raise

    def pending_resolutions(self, *, limit: int = 100) -> list[dict[str, Any]]:
        """Resolved exceptions whose resolution's journal is not posted yet, oldest first."""
        E = self._exception
        return [e.record(keep_keys=True) for e in E.query(RESOLUTIONS_PENDING_PK, index_name="gsi2", limit=limit)]

    def resolution_posted(self, exception_id: str) -> None:
        """Out of the pending index (its journal was found posted already)."""
        E = self._exception
        E(exception_pk(exception_id), EXCEPTION_SK).update(
            actions=[E.gsi2pk.remove(), E.gsi2sk.remove()], condition=E.pk.exists()  # never a stub
        )

    def resend_sent(self, exception_id: str, resend: dict[str, Any]) -> None:
        """The channel accepted finance's RESEND: its answer on the resolution, out of the pending index."""
        E = self._exception
        E(exception_pk(exception_id), EXCEPTION_SK).update(
            actions=[E.resolution["resend"].set(_clean(resend)), E.gsi2pk.remove(), E.gsi2sk.remove()],
            # No pending condition: a step run twice records the same answer (the channel's, for one id).
            condition=E.pk.exists(),  # never a stub
        )

    def resend_waiting(self, exception_id: str, resend: dict[str, Any]) -> None:
        """The channel could not answer (unavailable, timed out): the last error shown, still pending."""
        E = self._exception
        try:
            E(exception_pk(exception_id), EXCEPTION_SK).update(
                actions=[E.resolution["resend"].set(_clean(resend))],
                # Only while still pending: a concurrent step's SENT is never overwritten by this error.
                condition=E.pk.exists() & E.gsi2pk.exists(),
            )
        except UpdateError as error:
            if not failed_condition(error):
                raise

    def resend_refused(self, exception_id: str, resend: dict[str, Any], reopening: dict[str, Any]) -> None:
        """The channel refused finance's RESEND: the exception is OPEN again (back with finance, the
        refusal in its history and on the resolution it keeps), out of the pending index."""
        E = self._exception
        try:
            E(exception_pk(exception_id), EXCEPTION_SK).update(
                actions=[E.status.set(OPEN), E.resolved_at.remove(), E.resolution["resend"].set(_clean(resend)),
                         self._logged(reopening), E.gsi2pk.remove(), E.gsi2sk.remove()],  # fmt: skip
                # Only while still pending: a step run twice reopens it once (one history entry).
                condition=E.pk.exists() & E.gsi2pk.exists(),
            )
        except UpdateError as error:
            if not failed_condition(error):
                raise

    def _logged(self, entry: dict[str, Any]):
        E = self._exception
        return E.history.set((E.history | []).append([_clean(entry)]))

    def reopen(self, exception_id: str, reopening: dict[str, Any]) -> None:
        E = self._exception
        try:
            E(exception_pk(exception_id), EXCEPTION_SK).update(
                actions=[E.status.set(OPEN), E.resolved_at.remove(), self._logged(reopening)],
                # Only a RESOLVED one is reopened (its resolution stays on it, for the record).
                condition=E.pk.exists() & (E.status == RESOLVED),
            )
        except UpdateError as error:
            if failed_condition(error):
                raise ExceptionChanged(exception_id) from None
            raise

    def exceptions(self, *, limit: int, cursor: str | None, status: str | None = None,
                   cls: str | None = None, date: str | None = None):  # fmt: skip
        E = self._exception
        condition = None
        for attribute, value in ((E.status, status), (E.cls, cls)):
            if value is not None:
                condition = (attribute == value) if condition is None else condition & (attribute == value)
        return paging.page_of(
            E,
            EXCEPTIONS_INDEX_PK,
            index_name="gsi1",
            query={"list": "recon-exceptions", "status": status, "class": cls, "date": date},
            limit=limit,
            cursor=cursor,
            range_key_condition=E.gsi1sk.startswith(f"{date}#") if date else None,
            filter_condition=condition,
            scan_index_forward=False,
        )

    # -- compensations and transfer states ---------------------------------------------------

    def record_compensation(self, record: dict[str, Any]) -> bool:
        C = self._compensation
        item = C.from_record(
            _clean({"kind": "RECON_COMPENSATION", **record}),
            pk=compensation_pk(record["compensation_id"]),
            sk=COMPENSATION_SK,
        )
        try:
            # Derived from the exception and the action: a replay finds it and does nothing again.
            item.save(condition=C.pk.does_not_exist())
            return True
        except PutError as error:
            if failed_condition(error):
                return False
            raise

    def compensation(self, compensation_id: str) -> dict[str, Any] | None:
        try:
            return self._compensation.get(compensation_pk(compensation_id), COMPENSATION_SK,
                                          consistent_read=True).record()  # fmt: skip
        except self._compensation.DoesNotExist:
            return None

    def set_transfer_state(self, instruction_id: str, status: str, *, run_id: str, statement_date: str,
                           at: str) -> None:  # fmt: skip
        self._transfer.from_record(
            {"kind": "RECON_TRANSFER", "instruction_id": instruction_id, "status": status,
             "run_id": run_id, "statement_date": statement_date, "at": at},
            pk=transfer_state_pk(instruction_id), sk=TRANSFER_SK,
        ).save()  # fmt: skip  (last writer wins: CONFIRMED then RETURNED, in run order)

    def transfer_state(self, instruction_id: str) -> dict[str, Any] | None:
        """What the latest statement proved of a transfer (CONFIRMED / RETURNED), or None."""
        try:
            return self._transfer.get(transfer_state_pk(instruction_id), TRANSFER_SK, consistent_read=True).record()
        except self._transfer.DoesNotExist:
            return None

    def claimed_sum(self, lines: list[dict[str, Any]], *, run_id: str, currency: str) -> int:
        """Σ of the items the run's settlement lines point at (the ledger postings and carried amounts
        themselves, not the lines' copies) that this run claimed, in `currency`: what the party's net
        must be. A posting changed or claimed by another run since shows as a difference."""
        keys = sorted({(line["posting_pk"], line["posting_sk"]) for line in lines if line["currency"] == currency})
        return sum(item.amount for item in self._claimed.batch_get(keys, consistent_read=True)
                   if item.run_id == run_id and item.currency == currency)  # fmt: skip

    def transfer_states(self, instruction_ids: list[str], *, before: str) -> dict[str, str]:
        """What files dated before `before` proved: a replay or a re-upload of a day's file must see
        the transfers as that day's first run saw them (else its own confirmations look like duplicates)."""
        keys = [(transfer_state_pk(i), TRANSFER_SK) for i in instruction_ids]
        return {s.instruction_id: s.status for s in self._transfer.batch_get(keys, consistent_read=True)
                if s.statement_date < before}  # fmt: skip
