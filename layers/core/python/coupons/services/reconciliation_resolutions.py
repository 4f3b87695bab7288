"""The reconciliation function's side of finance's resolutions (services/reconciliation_review.py
records them; the API writes no ledger item and holds no channel): the `post_resolutions` step, run
every 5 minutes by a schedule and at every Complete. Each pending resolution is done once, whoever retries:

  a journal  posted in one transaction with the exception leaving the pending index (AlreadyPosted:
             it was, the exception only leaves the index);
  RESEND     the transfer's own instruction sent again, under its own id, through the same path as the
             automatic MISSING_AT_CHANNEL compensation: the channel is idempotent per id, so a step
             retried after the channel accepted (the answer not yet recorded) sends nothing twice. The
             channel's answer is recorded on the resolution (`resolution.resend`); a refusal puts the
             exception OPEN again (back with finance); a channel that cannot answer now leaves it
             pending, with the error, for the next step."""

from __future__ import annotations

from typing import TYPE_CHECKING

from coupons.data.ledger import AlreadyPosted
from coupons.data.reconciliation import RESEND_PENDING, RESEND_REFUSED, RESEND_SENT
from coupons.domain.coupons import iso
from coupons.domain.ledger import Journal, Leg
from coupons.domain.payments import (
    ChannelRejected,
    ChannelStatus,
    ChannelTimeout,
    ChannelUnavailable,
    InstructionMismatch,
)
from coupons.domain.reconciliation.records import ExceptionClass as C
from coupons.domain.reconciliation.records import TransferStatus
from coupons.domain.reconciliation.resolution import REOPEN
from coupons.domain.transfer_journals import settlement_account

if TYPE_CHECKING:
    from coupons.services.reconciliation import Reconciliation

SYSTEM = "system:reconciliation"


def post_resolutions(recon: Reconciliation) -> int:
    """How many journals were posted or instructions sent by this call."""
    done = 0
    for record in recon.store.pending_resolutions():
        resend = record["resolution"].get("resend")
        if resend is not None:
            done += _resend(recon, record, resend)
        else:
            done += _post(recon, record)
    return done


def _post(recon: Reconciliation, record: dict) -> int:
    spec, day = record["resolution"]["journal"], record["resolved_at"][:10]
    journal = Journal(journal_id=spec["journal_id"], source_id=record["exception_id"], kind=spec["kind"],
                      currency=spec["currency"], legs=tuple(Leg(x["account"], x["amount"]) for x in spec["legs"]),
                      party_shares={})  # fmt: skip
    posted = 0
    try:
        recon.ledger.post(journal, business_date=day, due_date=day, posted_at=iso(recon._clock()), extra={},
                          source_key={"pk": record["pk"], "sk": record["sk"]})  # fmt: skip
        posted = 1
    except AlreadyPosted:
        recon.store.resolution_posted(record["exception_id"])
    ours = record.get("ours") or {}
    # A write-off of a transfer the channel never showed takes it off its way too.
    if record["cls"] in (C.MISSING_AT_CHANNEL, C.TIMING) and any(
        x["account"] == settlement_account(record["channel"]) for x in spec["legs"]
    ):
        recon.store.set_transfer_state(ours["instruction_id"], TransferStatus.CONFIRMED, run_id="",
                                       statement_date=day, at=record["resolved_at"])  # fmt: skip
    return posted


def _resend(recon: Reconciliation, record: dict, resend: dict) -> int:
    exception_id, at = record["exception_id"], iso(recon._clock())
    instruction = {k: v for k, v in resend.items() if k not in ("state", "error", "attempted_at")}
    try:
        receipt = recon.send(instruction)
    except (ChannelUnavailable, ChannelTimeout) as error:
        # Nothing known to be done (or not known whether): the next step sends the same id again.
        recon.store.resend_waiting(exception_id, {**instruction, "state": RESEND_PENDING, "error": str(error),
                                                  "attempted_at": at})  # fmt: skip
        return 0
    except (ChannelRejected, InstructionMismatch) as error:
        _refused(recon, exception_id, instruction, str(error), at)
        return 0
    if receipt.status is not ChannelStatus.ACCEPTED:
        _refused(recon, exception_id, instruction, f"the channel answered {receipt.status}", at)
        return 0
    recon.store.resend_sent(exception_id, {
        **instruction, "state": RESEND_SENT, "channel_status": str(receipt.status),
        "channel_reference": receipt.channel_reference, "accepted_at": receipt.accepted_at, "sent_at": at,
    })  # fmt: skip
    return 1


def _refused(recon: Reconciliation, exception_id: str, instruction: dict, error: str, at: str) -> None:
    recon.store.resend_refused(
        exception_id, {**instruction, "state": RESEND_REFUSED, "error": error, "refused_at": at},
        {"action": REOPEN, "by": SYSTEM, "at": at, "note": f"the channel refused the resend: {error}"},
    )
