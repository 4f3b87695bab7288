"""Settlement's journals: each transfer of a run moves the party's balance to the channel, then to the bank.

- A payout of X to party P through channel C: `P −X`, `settlement:C +(X − f)`, `fees:C +f` when P
  bears the fee f (P receives X − f), or `P −X`, `settlement:C +X`, `fees:C +f`, `platform −f` when
  the platform bears it. Once C confirms it reached the bank: `settlement:C −T`, `bank:C +T` (T what
  was sent).
- A collection of Y from P: the mirror. P bears the fee: C takes Y + f from P (`P +Y`,
  `settlement:C −(Y + f)`, `fees:C +f`); the platform bears it: `P +Y`, `settlement:C −Y`,
  `fees:C +f`, `platform −f`. Confirmed: `settlement:C +T`, `bank:C −T`.
- A carried amount moves nothing, so it posts nothing.

So after a run P's balance is what later runs will settle, `settlement:C` holds what is on its way
(what reconciliation matches against C's file) and `fees:C` what C has charged. Ids derive from the
transfer (the instruction id): a retried step computes the same journal, posted once.
"""

from __future__ import annotations

from coupons.domain.channel_fees import Bearer, Fee
from coupons.domain.ledger import Journal, Leg, merge_legs
from coupons.domain.payments import Direction


def settlement_account(channel: str) -> str:
    return f"settlement:{channel}"


def bank_account(channel: str) -> str:
    return f"bank:{channel}"


def transfer_journal_id(instruction_id: str) -> str:
    return f"jnl_{instruction_id}"


def confirmation_journal_id(instruction_id: str) -> str:
    return f"jnl_{instruction_id}_confirmed"


def transferred(direction: Direction, net: int, fee: Fee) -> int:
    """What the channel moves for a transfer settling `net` (> 0): a fee the party bears comes off a
    payout and on top of a collection."""
    if type(net) is not int or net <= 0:
        raise ValueError("a transfer settles a positive integer of minor units")
    if fee.borne_by is not Bearer.PARTY:
        return net
    moved = net - fee.amount if direction is Direction.PAYOUT else net + fee.amount
    if moved <= 0:  # the tenant file's check (a fee below the minimum transfer) keeps this away
        raise ValueError(f"a fee of {fee.amount} the party bears leaves nothing of a payout of {net}")
    return moved


def transfer_journal(
    instruction_id: str, *, party: str, direction: Direction, net: int, currency: str, channel: str, fee: Fee
) -> Journal:
    """The journal of a payout or a collection settling `net` of `party`'s balance."""
    if fee.channel != channel or fee.currency != currency:
        raise ValueError("the fee is of another channel or currency")
    sign = 1 if direction is Direction.PAYOUT else -1
    moved = transferred(direction, net, fee)
    legs = [
        Leg(party, -sign * net),  # the party's balance settled: it is owed (or owes) that much less
        Leg(settlement_account(channel), sign * moved),
        *fee.legs(),
    ]
    return Journal(
        journal_id=transfer_journal_id(instruction_id),
        source_id=instruction_id,
        kind=direction.value,
        currency=currency,
        legs=merge_legs(legs, keep=party),
        party_shares={},
        charges={"fee": {"amount": fee.amount, "borne_by": str(fee.borne_by), "transferred": moved}}
        if fee.amount
        else {},
    )


def confirmation_journal(
    instruction_id: str, *, direction: Direction, transferred_amount: int, currency: str, channel: str
) -> Journal:
    """The channel confirmed the transfer reached the bank: out of settlement, into bank."""
    if type(transferred_amount) is not int or transferred_amount <= 0:
        raise ValueError("a confirmed transfer is a positive integer of minor units")
    sign = 1 if direction is Direction.PAYOUT else -1
    return Journal(
        journal_id=confirmation_journal_id(instruction_id),
        source_id=instruction_id,
        kind=f"{direction.value}_CONFIRMED",
        currency=currency,
        legs=(
            Leg(settlement_account(channel), -sign * transferred_amount),
            Leg(bank_account(channel), sign * transferred_amount),
        ),
        party_shares={},
    )
