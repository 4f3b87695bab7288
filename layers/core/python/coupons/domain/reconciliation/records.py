"""What the matcher compares (our transfers, the run's party records) and what it produces: one
exception per difference, its class, both sides' evidence, the amount at stake, a suggested action,
and an id derived from what it is about, so matching the same file again yields the same ids."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from zoneinfo import ZoneInfo

from coupons.domain.payments import Direction


class ExceptionClass(StrEnum):
    MISSING_AT_CHANNEL = "MISSING_AT_CHANNEL"  # 短款: we instructed it, the channel shows nothing
    UNKNOWN_AT_CHANNEL = "UNKNOWN_AT_CHANNEL"  # 长款: a line we never instructed
    AMOUNT_MISMATCH = "AMOUNT_MISMATCH"
    FEE_MISMATCH = "FEE_MISMATCH"
    STATUS_MISMATCH = "STATUS_MISMATCH"  # failed or returned while we think it sent
    DUPLICATE_AT_CHANNEL = "DUPLICATE_AT_CHANNEL"
    CURRENCY_MISMATCH = "CURRENCY_MISMATCH"
    TIMING = "TIMING"  # a cut-off (日切) difference: booked on another day, or not yet
    INTERNAL_MISMATCH = "INTERNAL_MISMATCH"  # transfer, run and postings disagree
    # Orders against coupons (coupons.domain.orders): not from a channel's file, from merchants' orders.
    ORDER_AMOUNT_MISMATCH = "ORDER_AMOUNT_MISMATCH"  # the order's amount is not the redemption's
    ORDER_OUTCOME_MISSING = "ORDER_OUTCOME_MISSING"  # no outcome reported within the grace period


SUGGESTED = {
    ExceptionClass.MISSING_AT_CHANNEL: "ask the channel by our instruction id; resend the same id if it never had it",
    ExceptionClass.UNKNOWN_AT_CHANNEL: "review: book to suspense, find whose money it is",
    ExceptionClass.AMOUNT_MISMATCH: "review: book the difference to suspense",
    ExceptionClass.FEE_MISMATCH: "adjust fees:{channel} within the tenant's tolerance, else review",
    ExceptionClass.STATUS_MISMATCH: "mark the transfer RETURNED, reverse its settlement journal, owe it again",
    ExceptionClass.DUPLICATE_AT_CHANNEL: "collect the duplicate back from the party (or review, per tenant)",
    ExceptionClass.CURRENCY_MISMATCH: "review: book the channel's amount to suspense in its currency",
    ExceptionClass.TIMING: "hold open; match against the next days' files; review after T+2",
    ExceptionClass.INTERNAL_MISMATCH: "review: transfer, run and postings disagree",
    ExceptionClass.ORDER_AMOUNT_MISMATCH: "review: ask the merchant; reverse the redemption if the order was changed",
    ExceptionClass.ORDER_OUTCOME_MISSING: "review: ask the merchant what became of the order",
}


class TransferStatus(StrEnum):
    """Our side of a transfer as reconciliation sees it (the settlement run's SENT and INSTRUCTED,
    and RETURNED once a return was compensated)."""

    INSTRUCTED = "INSTRUCTED"  # the channel may have it
    SENT = "SENT"  # the channel accepted it; no statement has shown it yet
    CONFIRMED = "CONFIRMED"  # an earlier statement showed it: only a return or a duplicate may follow
    RETURNED = "RETURNED"  # a return was compensated: a FAILED / RETURN line is now expected

    @property
    def unconfirmed(self) -> bool:
        return self in (TransferStatus.INSTRUCTED, TransferStatus.SENT)


@dataclass(frozen=True, slots=True)
class Transfer:
    instruction_id: str
    party: str
    direction: Direction
    amount: int  # minor units > 0
    fee: int  # what we expect the channel to charge (the tenant's fee schedule)
    currency: str
    status: TransferStatus
    date: str  # the day we expect the channel to book it (the run's settlement date)
    sent_at: str = ""  # ISO 8601 UTC, when the channel accepted it (for the cut-off window)
    run_id: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "direction", Direction(self.direction))
        object.__setattr__(self, "status", TransferStatus(self.status))

    def evidence(self) -> dict:
        return {
            "instruction_id": self.instruction_id,
            "run_id": self.run_id,
            "party": self.party,
            "direction": str(self.direction),
            "amount": self.amount,
            "fee": self.fee,
            "currency": self.currency,
            "status": str(self.status),
            "date": self.date,
            "sent_at": self.sent_at,
        }


@dataclass(frozen=True, slots=True)
class PartyRecord:
    """What the run decided for one party and currency, and what its claimed postings add up to."""

    instruction_id: str
    party: str
    currency: str
    decision: str  # PAYOUT / COLLECTION (the ones with a transfer)
    transfer: int  # the amount the run decided to move
    net: int  # the net the run recorded
    postings_sum: int  # Σ of the party's claimed lines in this run
    # What the transfer's own journal (posted when it was SENT) settled of the party's balance, signed
    # like net; checked only where one must exist (`journal_expected`: the transfer was SENT).
    journal_settled: int | None = None
    journal_expected: bool = False
    # What the channel moves for it: the transfer less a fee the party bears on a payout (more on a
    # collection); None where no fee was charged (the transfer itself).
    moved: int | None = None

    @property
    def channel_amount(self) -> int:
        return self.transfer if self.moved is None else self.moved


@dataclass(frozen=True)
class ReconException:
    exception_id: str
    date: str  # the day of the difference: the transfer's date (ours), the file's date (theirs)
    channel: str
    cls: ExceptionClass
    key: str  # the instruction id, or the channel reference when there is none
    currency: str
    amount_at_stake: int  # minor units, >= 0
    ours: dict | None
    theirs: dict | None
    detail: str
    suggested_action: str
    facts: dict = field(default_factory=dict)  # class-specific: the difference, days open, …

    def __post_init__(self) -> None:
        # Read back from a store the class is a plain string: `exc.cls is C.X` must still hold.
        object.__setattr__(self, "cls", ExceptionClass(self.cls))

    @property
    def instruction_id(self) -> str | None:
        return (self.ours or {}).get("instruction_id") or (self.theirs or {}).get("instruction_id")


def exception_id(date: str, channel: str, cls: ExceptionClass, key: str) -> str:
    """Derived from what the difference is about: a replay of the same file (or the same transfer
    still missing tomorrow) names the same exception, which is then updated, never duplicated."""
    digest = hashlib.sha256(f"{date}|{channel}|{cls}|{key}".encode()).hexdigest()[:24]
    return f"rex_{date.replace('-', '')}_{digest}"


# The classes whose exception about a transfer is keyed by its instruction id and dated by its own date
# (not the file's): what a transfer's trace can name without an index. A RETURN line's STATUS_MISMATCH
# and a duplicate are dated by the file; the transfer's RECONTRANSFER state shows a return.
OUR_SIDE = (ExceptionClass.MISSING_AT_CHANNEL, ExceptionClass.AMOUNT_MISMATCH, ExceptionClass.FEE_MISMATCH,
            ExceptionClass.STATUS_MISMATCH, ExceptionClass.CURRENCY_MISMATCH, ExceptionClass.TIMING,
            ExceptionClass.INTERNAL_MISMATCH)  # fmt: skip


def transfer_day(moment: str, time_zone: str) -> str:
    """The day a transfer is dated (the channel books it): when it was sent, in the tenant's zone."""
    return datetime.fromisoformat(moment.replace("Z", "+00:00")).astimezone(ZoneInfo(time_zone)).date().isoformat()


def transfer_exception_ids(instruction_id: str, date: str, channel: str) -> list[str]:
    """The ids every exception reconciliation can open on this transfer of `date` would have."""
    return [exception_id(date, channel, cls, instruction_id) for cls in OUR_SIDE]


def make(
    cls: ExceptionClass,
    *,
    date: str,
    channel: str,
    key: str,
    currency: str,
    amount_at_stake: int,
    ours: dict | None,
    theirs: dict | None,
    detail: str,
    **facts,
) -> ReconException:
    return ReconException(
        exception_id=exception_id(date, channel, cls, key),
        date=date,
        channel=channel,
        cls=cls,
        key=key,
        currency=currency,
        amount_at_stake=abs(amount_at_stake),
        ours=ours,
        theirs=theirs,
        detail=detail,
        suggested_action=SUGGESTED[cls],
        facts=facts,
    )
