"""Our own side's three ways: a transfer, what its run decided for the party, and the party's
claimed postings (Σ lines = net). They must agree before the channel's file is worth comparing."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import asdict

from coupons.domain.reconciliation.records import ExceptionClass as C
from coupons.domain.reconciliation.records import PartyRecord, ReconException, Transfer, make


def signed(direction_or_type: str, amount: int) -> int:
    """A payout +, a collection (or what is not a payout) −: the sign the settlement accounts use."""
    return amount if str(direction_or_type) == "PAYOUT" else -amount


def internal_differences(
    key: str, transfer: Transfer | None, record: PartyRecord | None, channel: str, statement_date: str
) -> Iterator[ReconException]:
    """The three ways of our own side: the transfer, what the run decided for the party, and the
    party's postings. Every disagreement about one instruction id is one exception listing them."""
    problems = []
    if record is None and transfer is not None:
        problems.append("a transfer without a party record in its run")
    if record is not None and transfer is None:
        problems.append(f"the run decided {record.decision} {record.transfer}, no transfer exists")
    if record is not None and transfer is not None:
        if (record.decision, record.channel_amount, record.currency, record.party) != (
            str(transfer.direction),
            transfer.amount,
            transfer.currency,
            transfer.party,
        ):
            problems.append(
                f"the run decided {record.decision} {record.channel_amount} {record.currency} to {record.party}"
            )
        if signed(record.decision, record.transfer) != record.net:
            problems.append(f"the run's net {record.net} is not its {record.decision} {record.transfer}")
    if record is not None and record.postings_sum != record.net:
        problems.append(f"the postings add up to {record.postings_sum}, the run's net is {record.net}")
    if record is not None and record.journal_expected:
        if record.journal_settled is None:
            problems.append("the transfer was sent, its journal is not in the ledger")
        elif record.journal_settled != record.net:
            problems.append(f"the transfer's journal settled {record.journal_settled}, the run's net is {record.net}")
    if not problems:
        return
    stakes = [abs(record.postings_sum - record.net)] if record else []
    if record and record.journal_settled is not None:
        stakes.append(abs(record.journal_settled - record.net))
    if record and transfer:
        stakes.append(
            abs(signed(record.decision, record.channel_amount) - signed(transfer.direction, transfer.amount))
        )
    stake = max(stakes, default=0) or (transfer.amount if transfer else record.transfer)
    yield make(C.INTERNAL_MISMATCH, date=transfer.date if transfer else statement_date, channel=channel,
               key=key, currency=(transfer or record).currency, amount_at_stake=stake,
               ours=transfer.evidence() if transfer else None,
               theirs={"party_record": asdict(record)} if record else None, detail="; ".join(problems),
               problems=problems)  # fmt: skip


def unconfirmed_sums(transfers: Iterable[Transfer]) -> dict[str, int]:
    """Per currency, what `settlement:{channel}` must hold: the transfers the channel has not
    confirmed (payouts +, collections −)."""
    sums: dict[str, int] = {}
    for t in transfers:
        if t.status.unconfirmed:
            sums[t.currency] = sums.get(t.currency, 0) + signed(t.direction, t.amount)
    return sums


def ledger_differences(
    channel: str, statement_date: str, balances: dict[str, int], unconfirmed: dict[str, int]
) -> Iterator[ReconException]:
    """`settlement:{channel}` per currency against Σ of the unconfirmed transfers: one exception per
    currency that differs (its id from the file's date and the account: a replay names the same)."""
    account = f"settlement:{channel}"
    for currency in sorted(set(balances) | set(unconfirmed)):
        held, expected = balances.get(currency, 0), unconfirmed.get(currency, 0)
        if held != expected:
            yield make(C.INTERNAL_MISMATCH, date=statement_date, channel=channel, key=f"{account}:{currency}",
                       currency=currency, amount_at_stake=held - expected, ours={"account": account, "balance": held},
                       theirs=None, detail=f"{account} holds {held}, the unconfirmed transfers add up to {expected}",
                       difference=held - expected, account=account)  # fmt: skip
