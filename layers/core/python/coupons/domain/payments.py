"""Payment channels: what settlement asks a bank to move (an Instruction), what the bank answers (a
Receipt) and how it can fail. Pure: the adapters live in `coupons.channels`.

A channel is idempotent per instruction id, so the settlement engine can resend after any failure
whose outcome it does not know; the id is chosen by the caller from the run and the party, never
drawn at random, so a retried step sends the same id again.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, runtime_checkable

from coupons.domain.money import is_currency


class Direction(StrEnum):
    PAYOUT = "PAYOUT"  # we pay the party
    COLLECTION = "COLLECTION"  # we collect from the party


class ChannelStatus(StrEnum):
    ACCEPTED = "ACCEPTED"
    REJECTED = "REJECTED"


@dataclass(frozen=True)
class Instruction:
    instruction_id: str  # deterministic, chosen by the caller: the channel's idempotency key
    run_id: str
    party: str  # a ledger account: merchant:m1, brand:b1, platform
    currency: str
    amount: int  # minor units, > 0: the direction says which way it goes
    direction: Direction
    reference: str  # free text shown on the party's bank statement
    # What the channel charges for it under the tenant's agreement (channel_fees), minor units. Not part
    # of the payment (same_payment ignores it): the simulated bank reports it on its statement, as a
    # real channel's bill states the fee it charged.
    fee: int = 0

    def __post_init__(self) -> None:
        for name in ("instruction_id", "run_id", "party"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise ValueError(f"an instruction needs a {name}")
        # bool is an int: True must not pay one cent.
        if type(self.amount) is not int or self.amount <= 0:
            raise ValueError(f"an instruction moves a positive integer of minor units, got {self.amount!r}")
        if type(self.fee) is not int or self.fee < 0:
            raise ValueError(f"a fee is a non-negative integer of minor units, got {self.fee!r}")
        if not is_currency(self.currency):
            raise ValueError(f"unknown ISO 4217 currency {self.currency!r}")
        # Accept the stored string form too (e.g. read back from a table), but nothing else.
        object.__setattr__(self, "direction", Direction(self.direction))

    def same_payment(self, party: str, currency: str, amount: int, direction: str) -> bool:
        """Whether a record held under this id moves the same money: the only fields that must agree
        for a resend to be the same payment (run and reference are descriptive)."""
        return (party, currency, amount, direction) == (
            self.party,
            self.currency,
            self.amount,
            self.direction,
        )


@dataclass(frozen=True)
class Receipt:
    instruction_id: str
    channel_reference: str  # the channel's own id for the transfer, shown in its statements
    status: ChannelStatus
    amount: int
    currency: str
    direction: Direction
    accepted_at: str  # ISO 8601 UTC, when the channel first accepted it (the same on every resend)


class ChannelError(Exception):
    """Anything a channel refuses or fails to answer; the subclass says what the caller may do."""


class ChannelUnavailable(ChannelError):
    """Transient, and nothing was done: retry later with the same instruction."""


class ChannelTimeout(ChannelError):
    """Transient, outcome UNKNOWN: the channel may have accepted it. Ask `status(instruction_id)`
    (or resend the same instruction, which is idempotent) before deciding anything."""


class ChannelRejected(ChannelError):
    """Permanent refusal of this instruction (closed account, limits…): retrying will not help."""


class InstructionMismatch(ChannelError):
    """The id was sent before with a different party, amount, currency or direction. Never paper over
    it: an id stands for one payment, and paying a different amount under it would be a second one."""


@runtime_checkable
class PaymentChannel(Protocol):
    """The one seam between settlement and a bank. Today the only implementation is the simulated
    bank (`coupons.channels.simulated`); a real channel (a later issue) is another adapter in
    `coupons.channels` that maps its API onto these two calls and these errors, chosen by the
    tenant's PAYMENT_CHANNEL in `coupons.channels.channel_from_environment`. Such an adapter must pass
    the instruction id to the bank as its idempotency key (or keep its own id -> reference record
    under a conditional write) so that the guarantees below hold end to end."""

    def send(self, instruction: Instruction) -> Receipt:
        """Ask the channel to move the money. Idempotent per instruction_id: sending the same
        instruction again returns the first receipt and never makes a second payment.

        Raises ChannelUnavailable, ChannelTimeout, ChannelRejected or InstructionMismatch."""
        ...

    def status(self, instruction_id: str) -> Receipt | None:
        """What the channel holds for this id; None: it never received it (safe to send).
        Must read the channel's authoritative record (no stale cache): it decides whether to resend."""
        ...

    def statement(self, statement_date: str, *, time_zone: str, channel: str) -> list:
        """The channel's statement of one day (`coupons.domain.reconciliation.lines.StatementLine`s in
        instruction id order). The simulated bank builds it from its records; a real channel's adapter
        fetches its published file instead (and reconciliation reads that file from S3 as it is)."""
        ...
