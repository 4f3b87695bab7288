"""Finance's review of reconciliation (对账复核): runs and exceptions to read, and the resolution of an
exception with an action its class allows, recorded with who and why, four-eyes where the tenant says
so (the approver is not the proposer). An exception is never deleted: it ends RESOLVED (reopen: OPEN
again, with the resolution it had kept in its history of proposals)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from coupons.data.reconciliation import OPEN, RESEND_PENDING, ExceptionChanged, ReconciliationStore
from coupons.domain.coupons import iso
from coupons.domain.errors import Conflict, InvalidField, NotFound
from coupons.domain.principals import Principal
from coupons.domain.reconciliation.compensation import resend_transfer
from coupons.domain.reconciliation.records import ExceptionClass as C
from coupons.domain.reconciliation.resolution import (
    ACCEPT,
    REOPEN,
    RESEND,
    REVERSE,
    WRITE_OFF,
    resolution_journal,
)

# What finance may do per class (issue #16 point 9): accept the channel's side, send again, write off
# to a named account, reverse. REOPEN is for a RESOLVED exception of any class.
ALLOWED = {
    C.MISSING_AT_CHANNEL: (RESEND, WRITE_OFF, ACCEPT),
    C.UNKNOWN_AT_CHANNEL: (ACCEPT, WRITE_OFF, REVERSE),
    C.AMOUNT_MISMATCH: (ACCEPT, WRITE_OFF, REVERSE),
    C.FEE_MISMATCH: (ACCEPT, WRITE_OFF),
    # No RESEND: its compensation already owes the party the returned amount, which the next run pays.
    C.STATUS_MISMATCH: (ACCEPT, REVERSE),
    C.DUPLICATE_AT_CHANNEL: (ACCEPT, WRITE_OFF, REVERSE),
    C.CURRENCY_MISMATCH: (ACCEPT, WRITE_OFF, REVERSE),
    C.TIMING: (ACCEPT, RESEND, WRITE_OFF),
    C.INTERNAL_MISMATCH: (ACCEPT, WRITE_OFF),
    # The order and the redemption stand as they are; a reversal, if one is due, is the reversal route's.
    C.ORDER_AMOUNT_MISMATCH: (ACCEPT,),
    C.ORDER_OUTCOME_MISSING: (ACCEPT,),
}


class ReconciliationExceptionNotFound(NotFound):
    code = "reconciliation_exception_not_found"
    title = "No such reconciliation exception"


class ReconciliationRunNotFound(NotFound):
    code = "reconciliation_run_not_found"
    title = "No such reconciliation run"


class ActionNotAllowed(Conflict):
    code = "action_not_allowed"
    title = "This action is not allowed for this exception's class or status"


class SecondApproverRequired(Conflict):
    code = "second_approver_required"
    title = "Four-eyes: another finance principal must approve this resolution"


class Review:
    def __init__(self, store: ReconciliationStore, *, four_eyes: bool, ledger=None, fee_bearer: str = "platform",
                 clock=lambda: datetime.now(UTC)):  # fmt: skip
        self.store, self.four_eyes, self._clock = store, four_eyes, clock
        self.ledger, self.fee_bearer = ledger, fee_bearer  # the ledger is read here, never written

    def run(self, run_id: str) -> dict[str, Any]:
        run = self.store.run(run_id)
        if run is None:
            raise ReconciliationRunNotFound(field="run_id")
        return _public(run)

    def runs(self, *, limit: int, cursor: str | None, date: str | None):
        items, next_cursor = self.store.runs(limit=limit, cursor=cursor, date=date)
        return [_public(r) for r in items], next_cursor

    def exceptions(self, **kwargs):
        items, next_cursor = self.store.exceptions(**kwargs)
        return [exception_view(e) for e in items], next_cursor

    def exception(self, exception_id: str) -> dict[str, Any]:
        found = self.store.exception(exception_id)
        if found is None:
            raise ReconciliationExceptionNotFound(field="exception_id")
        return exception_view(found)

    def resolve(self, exception_id: str, action: str, note: str, principal: Principal, *,
                account: str | None = None, api_key_id: str | None = None) -> tuple[int, dict[str, Any]]:  # fmt: skip
        """(200, the exception RESOLVED), or (202, the exception with its proposal) when four-eyes
        waits for a second finance principal."""
        found = self.store.exception(exception_id)
        if found is None:
            raise ReconciliationExceptionNotFound(field="exception_id")
        if action == WRITE_OFF and not account:
            raise InvalidField("WRITE_OFF names the account written off to", field="account")
        if action == WRITE_OFF and account == f"suspense:{found['channel']}":
            raise InvalidField("a write-off empties suspense into another account", field="account")
        who = {"by": str(principal), "api_key_id": api_key_id, "at": iso(self._clock())}
        try:
            if action == REOPEN:
                if found["status"] == OPEN:
                    raise ActionNotAllowed(f"{exception_id} is OPEN", field="action")
                self.store.reopen(exception_id, {"action": REOPEN, "note": note, **who})
                return 200, self.exception(exception_id)
            if found["status"] != OPEN:
                raise ActionNotAllowed(f"{exception_id} is {found['status']}", field="action")
            if action not in ALLOWED[C(found["cls"])]:
                allowed = ", ".join(ALLOWED[C(found["cls"])])
                raise ActionNotAllowed(f"{found['cls']} allows {allowed}", field="action")
            resolution = {"action": action, "note": note, "account": account, **who}
            proposal = found.get("proposal")
            if self.four_eyes:
                if proposal is None:
                    self.store.propose(exception_id, resolution)
                    return 202, self.exception(exception_id)
                if proposal["by"] == str(principal) or (api_key_id and proposal.get("api_key_id") == api_key_id):
                    raise SecondApproverRequired(f"proposed by {proposal['by']}", field="principal")
                if (proposal["action"], proposal.get("account")) != (action, account):
                    raise ActionNotAllowed(
                        f"the proposal is {proposal['action']}: approve it as proposed", field="action"
                    )
                resolution = {**proposal, "approved_by": str(principal), "approved_at": who["at"],
                              "approval_note": note}  # fmt: skip
            journal = self._journal(found, resolution["action"], resolution.get("account"))
            if journal is not None:  # posted by the reconciliation function (the API writes no ledger item)
                resolution = {**resolution, "journal": {
                    "journal_id": journal.journal_id, "kind": journal.kind, "currency": journal.currency,
                    "legs": [{"account": leg.account, "amount": leg.amount} for leg in journal.legs]}}  # fmt: skip
            if resolution["action"] == RESEND:
                # Sent by the reconciliation function (it holds the channel; the API does not): the
                # transfer's own instruction, its own id, PENDING until the channel answered.
                resolution = {**resolution, "resend": {**resend_transfer(found["ours"]), "state": RESEND_PENDING}}
            self.store.resolve(exception_id, resolution)
        except ExceptionChanged:
            raise Conflict(f"{exception_id} changed meanwhile; read it again", field="exception_id") from None
        return 200, self.exception(exception_id)


    def _journal(self, found: dict[str, Any], action: str, account: str | None):
        legs = None
        compensation = self.store.compensation(found["compensation_id"]) if found.get("compensation_id") else None
        if compensation and compensation.get("journal_id") and self.ledger is not None:
            legs = (self.ledger.journal(compensation["journal_id"]) or {}).get("legs")
        # The n-th resolution of this exception (a reopened one resolved again books anew).
        sequence = sum(1 for h in found.get("history") or [] if not h.get("proposed") and h["action"] != REOPEN)
        return resolution_journal(found, legs, action, account=account, fee_bearer=self.fee_bearer,
                                  sequence=sequence)  # fmt: skip


def exception_view(record: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in record.items() if k not in ("kind", "cls")}
    out["class"] = record["cls"]
    out["allowed_actions"] = list(ALLOWED[C(record["cls"])]) if record["status"] == OPEN else [REOPEN]
    return out


def _public(run: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in run.items() if k not in ("kind",)}
