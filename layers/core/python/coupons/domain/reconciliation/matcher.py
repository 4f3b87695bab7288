"""The matcher: a channel's statement lines against our transfers and the run's party records, every
difference classified exactly once (records.ExceptionClass), every matched line a Confirmation.

Memory stays flat in the file's size: the inputs are streams SORTED BY INSTRUCTION ID, merged
(heapq.merge, lazy) and walked one instruction id at a time, so only one id's lines are held. What
cannot be decided until the end is kept: the transfers that found no line (candidates for
MISSING_AT_CHANNEL, which a line without our id may still claim by amount and date) and the lines
without our id. Both are differences, not the file's bulk: they grow with the number of
exceptions, not with the number of lines. A file that is not in id order is partitioned first
(`bucket_of`: one chunk per hash bucket, each sorted in memory and matched by its own Matcher with
`final=False`; `settle_leftovers` then decides the buckets' leftovers together).

Rules, per instruction id (our id is the channel's merchant order number):
  - lines of type PAYOUT / COLLECTION: the first (in file order) is THE line; every other one is
    DUPLICATE_AT_CHANNEL (all of them, if an earlier file already confirmed the transfer);
  - THE line against the transfer: another currency -> CURRENCY_MISMATCH (amounts not compared);
    another amount or direction -> AMOUNT_MISMATCH; FAILED / RETURNED while we think it sent ->
    STATUS_MISMATCH; another fee -> FEE_MISMATCH; booked on another day than ours -> TIMING
    (unless the transfer was held open from an earlier day: then the line is its late arrival and
    the Confirmation closes that TIMING). A line of our currency, amount and direction with status
    SUCCESS confirms the transfer, whatever its fee and day;
  - a RETURN line -> STATUS_MISMATCH (returned), unless the transfer is already RETURNED;
  - an id we never instructed -> UNKNOWN_AT_CHANNEL, per line;
  - a transfer without any line: dated before the file -> TIMING still open (same id as when it
    opened: days_open grows); dated the file's day and sent within the cut-off window before the
    channel's day ended -> TIMING; dated later -> not expected yet; else MISSING_AT_CHANNEL,
    after the lines without our id had their chance (same currency, direction and amount,
    booked within `drift_days`, nearest day first, then the smallest id);
  - with party records: run and transfer disagree (amount, direction, none of one of them), or the
    party's net is not Σ its postings -> INTERNAL_MISMATCH; with ledger balances:
    `settlement:{channel}` per currency must equal Σ of the unconfirmed transfers (payouts +,
    collections −), else INTERNAL_MISMATCH.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from coupons.domain.payments import Direction
from coupons.domain.reconciliation.internal import internal_differences, ledger_differences, signed
from coupons.domain.reconciliation.lines import LineStatus, LineType, StatementLine
from coupons.domain.reconciliation.records import (
    ExceptionClass as C,
)
from coupons.domain.reconciliation.records import (
    PartyRecord,
    ReconException,
    Transfer,
    TransferStatus,
    exception_id,
    make,
)


@dataclass(frozen=True)
class MatchConfig:
    channel: str
    statement_date: str
    time_zone: str = "Asia/Shanghai"  # the channel's day
    drift_days: int = 1  # a line without our id may match a transfer dated this many days apart
    cutoff_window_s: int = 900  # sent this close to the channel's midnight: may be booked next day


@dataclass(frozen=True, slots=True)
class Confirmation:
    """The channel shows this transfer moved: the run may mark it confirmed and post the journal
    `settlement:{channel} -> bank:{channel}`. `closes`: the TIMING exception it ends, if it came late."""

    instruction_id: str
    channel_reference: str
    currency: str
    amount: int
    fee: int
    value_date: str
    closes: str | None = None


@dataclass
class MatchReport:
    lines: int = 0
    transfers: int = 0
    confirmed: int = 0
    confirmed_amount: dict[str, int] = field(default_factory=dict)
    by_class: Counter = field(default_factory=Counter)
    at_stake: dict[str, dict[str, int]] = field(default_factory=dict)  # class -> currency -> amount


def bucket_of(instruction_id: str | None, buckets: int) -> int:
    """The chunk a line or transfer goes to when the file is not in id order (lines without our id:
    bucket 0; they are decided with the leftovers anyway)."""
    if not instruction_id:
        return 0
    return int.from_bytes(hashlib.sha256(instruction_id.encode()).digest()[:4], "big") % buckets


def _expected_type(transfer: Transfer) -> LineType:
    return LineType.PAYOUT if transfer.direction is Direction.PAYOUT else LineType.COLLECTION


def _days(a: str, b: str) -> int:
    return (date.fromisoformat(a) - date.fromisoformat(b)).days


def _ascending(items: Iterable, what: str, *, strict: bool) -> Iterator:
    last = None
    for item in items:
        key = item.instruction_id
        if last is not None and (key < last or (strict and key == last)):
            raise ValueError(
                f"{what} must be sorted by instruction id{' without repeats' if strict else ''}: {key} after {last}"
            )
        last = key
        yield item


class Matcher:
    def __init__(self, config: MatchConfig, *, final: bool = True):
        self.config = config
        self.final = final
        self.report = MatchReport()
        self.missing: list[Transfer] = []  # held until the lines without our id had their chance
        self.unkeyed: list[StatementLine] = []
        self._unconfirmed: dict[str, int] = {}
        zone = ZoneInfo(config.time_zone)
        day_end = datetime.combine(
            date.fromisoformat(config.statement_date) + timedelta(days=1), datetime.min.time(), zone
        )
        self._cutoff_from = day_end - timedelta(seconds=config.cutoff_window_s)

    # -- entry points --------------------------------------------------------------------------

    def run(
        self,
        lines: Iterable[StatementLine],
        transfers: Iterable[Transfer],
        *,
        party_records: Iterable[PartyRecord] | None = None,
        settlement_balances: dict[str, int] | None = None,
    ) -> Iterator[Confirmation | ReconException]:
        """Every input sorted by instruction id (checked). `settlement_balances` is compared with the
        unconfirmed transfers THIS matcher saw: pass it to a single-stream run, or sum the buckets'."""
        keyed_lines = _ascending(self._set_aside_unkeyed(lines), "lines", strict=False)
        streams = [
            ((line.instruction_id, 0, line.line_no, line) for line in keyed_lines),
            ((t.instruction_id, 1, 0, t) for t in _ascending(transfers, "transfers", strict=True)),
        ]
        if party_records is not None:
            streams.append(
                (r.instruction_id, 2, 0, r) for r in _ascending(party_records, "party records", strict=True)
            )
        merged = heapq.merge(*streams, key=lambda entry: entry[:3])
        for key, group in itertools.groupby(merged, key=lambda entry: entry[0]):
            found: list[StatementLine] = []
            transfer = record = None
            for _, source, _, item in group:
                if source == 0:
                    found.append(item)
                elif source == 1:
                    transfer = item
                else:
                    record = item
            yield from self._key(key, found, transfer, record, party_records is not None)
        if self.final:
            yield from self.leftovers()
        if settlement_balances is not None:
            yield from self._ledger(settlement_balances)

    def leftovers(self) -> Iterator[Confirmation | ReconException]:
        yield from self._emit_all(settle_leftovers(self.missing, self.unkeyed, self.config, self))
        self.missing, self.unkeyed = [], []

    # -- per instruction id --------------------------------------------------------------------

    def _set_aside_unkeyed(self, lines: Iterable[StatementLine]) -> Iterator[StatementLine]:
        for line in lines:
            self.report.lines += 1
            if line.instruction_id:
                yield line
            else:
                self.unkeyed.append(line)

    def _key(self, key, found, transfer, record, with_records) -> Iterator[Confirmation | ReconException]:
        cfg = self.config
        if with_records:
            yield from self._emit_all(
                internal_differences(key, transfer, record, cfg.channel, cfg.statement_date)
            )
        if transfer is None:
            for n, line in enumerate(found, start=1):
                yield self._emit(
                    make(C.UNKNOWN_AT_CHANNEL, date=cfg.statement_date, channel=cfg.channel,
                         key=line.channel_reference + (f"#{n}" if n > 1 else ""), currency=line.currency,
                         amount_at_stake=line.amount, ours=None, theirs=line.evidence(),
                         detail=f"{key} is no instruction of ours")
                )  # fmt: skip
            return
        self.report.transfers += 1
        if transfer.status.unconfirmed:
            self._unconfirmed[transfer.currency] = self._unconfirmed.get(transfer.currency, 0) + signed(
                transfer.direction, transfer.amount
            )
        primaries = [line for line in found if line.type is not LineType.RETURN]
        returns = [line for line in found if line.type is LineType.RETURN]
        if transfer.status is TransferStatus.RETURNED:
            returns = []  # its return was compensated: the FAILED / RETURN line is what we expect now
        duplicates = primaries if transfer.status is TransferStatus.CONFIRMED else primaries[1:]
        confirmed = transfer.status is TransferStatus.CONFIRMED
        failed = False  # THE line itself failed: its STATUS_MISMATCH is the one reversal
        if transfer.status.unconfirmed:
            outcome = list(self.compare(transfer, primaries[0]) if primaries else self._absent(transfer))
            confirmed = any(isinstance(x, Confirmation) for x in outcome)
            failed = any(isinstance(x, ReconException) and x.cls is C.STATUS_MISMATCH for x in outcome)
            yield from self._emit_all(outcome)
        prefix = f"{key}@{cfg.statement_date}" if transfer.status is TransferStatus.CONFIRMED else key
        for n, line in enumerate(duplicates, start=1 if transfer.status is TransferStatus.CONFIRMED else 2):
            yield self._emit(
                make(C.DUPLICATE_AT_CHANNEL, date=cfg.statement_date, channel=cfg.channel, key=f"{prefix}#{n}",
                     currency=line.currency, amount_at_stake=line.amount, ours=transfer.evidence(),
                     theirs=line.evidence(), detail=f"{key} appears again at the channel", party=transfer.party)
            )  # fmt: skip
        for n, line in enumerate(returns, start=1):
            yield self._emit(
                make(C.STATUS_MISMATCH, date=cfg.statement_date, channel=cfg.channel,
                     key=f"{key}/RETURN" + (f"#{n}" if n > 1 else ""), currency=line.currency,
                     amount_at_stake=line.amount, ours=transfer.evidence(), theirs=line.evidence(),
                     detail=f"{key} came back (RETURN)", outcome="RETURNED", party=transfer.party,
                     confirmed=confirmed, also_failed=failed)
            )  # fmt: skip

    def compare(self, transfer: Transfer, line: StatementLine) -> Iterator[Confirmation | ReconException]:
        """THE line of a transfer against it: each differing aspect once; a Confirmation if the money
        moved as instructed."""
        cfg = self.config
        common = {
            "channel": cfg.channel,
            "key": transfer.instruction_id,
            "ours": transfer.evidence(),
            "theirs": line.evidence(),
        }
        ours_date = transfer.date
        if line.currency != transfer.currency:
            yield make(C.CURRENCY_MISMATCH, date=ours_date, currency=line.currency, amount_at_stake=line.amount,
                       detail=f"the channel moved {line.currency}, we instructed {transfer.currency}", **common)  # fmt: skip
            return
        same_money = line.type is _expected_type(transfer) and line.amount == transfer.amount
        if not same_money:
            difference = signed(line.type, line.amount) - signed(transfer.direction, transfer.amount)
            yield make(C.AMOUNT_MISMATCH, date=ours_date, currency=line.currency, amount_at_stake=difference,
                       detail=f"the channel moved {line.type} {line.amount}, we instructed "
                              f"{transfer.direction} {transfer.amount}", difference=difference, **common)  # fmt: skip
        if line.status is not LineStatus.SUCCESS:
            yield make(C.STATUS_MISMATCH, date=ours_date, currency=line.currency, amount_at_stake=transfer.amount,
                       detail=f"the channel says {line.status}", outcome=str(line.status), party=transfer.party,
                       confirmed=False, **common)  # fmt: skip
        if line.fee != transfer.fee:
            yield make(C.FEE_MISMATCH, date=ours_date, currency=line.currency, amount_at_stake=line.fee - transfer.fee,
                       detail=f"the channel charged {line.fee}, we expected {transfer.fee}",
                       difference=line.fee - transfer.fee, **common)  # fmt: skip
        # Held open from an earlier day (it was not in that day's file): this is its late arrival.
        late = _days(cfg.statement_date, transfer.date) > 0
        if line.value_date != transfer.date and not late:
            yield make(C.TIMING, date=ours_date, currency=line.currency, amount_at_stake=line.amount,
                       detail=f"booked on {line.value_date}, ours is dated {transfer.date}", waiting=False,
                       days_off=_days(line.value_date, transfer.date),
                       beyond_drift=abs(_days(line.value_date, transfer.date)) > cfg.drift_days, **common)  # fmt: skip
        if same_money and line.status is LineStatus.SUCCESS:
            closes = (
                exception_id(transfer.date, cfg.channel, C.TIMING, transfer.instruction_id) if late else None
            )
            yield Confirmation(transfer.instruction_id, line.channel_reference, line.currency, line.amount,
                               line.fee, line.value_date, closes)  # fmt: skip

    def _absent(self, transfer: Transfer) -> Iterator[ReconException]:
        cfg = self.config
        days_open = _days(cfg.statement_date, transfer.date)
        if days_open < 0:
            return  # dated after this file: not expected yet
        near_cutoff = (
            bool(transfer.sent_at)
            and datetime.fromisoformat(transfer.sent_at.replace("Z", "+00:00")) >= self._cutoff_from
        )
        if days_open > 0 or near_cutoff:
            yield make(C.TIMING, date=transfer.date, channel=cfg.channel, key=transfer.instruction_id,
                       currency=transfer.currency, amount_at_stake=transfer.amount, ours=transfer.evidence(),
                       theirs=None, detail=f"not on the channel's statement of {cfg.statement_date} yet",
                       waiting=True, days_open=days_open)  # fmt: skip
            return
        self.missing.append(transfer)

    # -- report --------------------------------------------------------------------------------

    def _emit(self, item):
        if isinstance(item, Confirmation):
            self.report.confirmed += 1
            self.report.confirmed_amount[item.currency] = (
                self.report.confirmed_amount.get(item.currency, 0) + item.amount
            )
        else:
            self.report.by_class[str(item.cls)] += 1
            stake = self.report.at_stake.setdefault(str(item.cls), {})
            stake[item.currency] = stake.get(item.currency, 0) + item.amount_at_stake
        return item

    def _emit_all(self, items):
        for item in items:
            yield self._emit(item)

    def _ledger(self, balances: dict[str, int]) -> Iterator[ReconException]:
        cfg = self.config
        yield from self._emit_all(ledger_differences(cfg.channel, cfg.statement_date, balances, self._unconfirmed))


def settle_leftovers(
    missing: list[Transfer], unkeyed: list[StatementLine], config: MatchConfig, matcher: Matcher | None = None
) -> Iterator[Confirmation | ReconException]:
    """Lines without our id against the transfers that found no line (same currency, direction and
    amount, booked within drift_days; nearest day, then the smallest id); then what is left:
    UNKNOWN_AT_CHANNEL per line, MISSING_AT_CHANNEL per transfer."""
    matcher = matcher or Matcher(config, final=False)
    pool: dict[tuple, list[Transfer]] = {}
    for transfer in sorted(missing, key=lambda t: t.instruction_id):
        pool.setdefault((transfer.currency, str(_expected_type(transfer)), transfer.amount), []).append(
            transfer
        )
    seen_refs: Counter = Counter()
    for line in sorted(unkeyed, key=lambda x: (x.statement_date, x.line_no, x.channel_reference)):
        candidates = [
            t for t in pool.get((line.currency, str(line.type), line.amount), [])
            if abs(_days(line.value_date, t.date)) <= config.drift_days
        ]  # fmt: skip
        if candidates and line.type is not LineType.RETURN:
            chosen = min(candidates, key=lambda t: (abs(_days(line.value_date, t.date)), t.instruction_id))
            pool[(line.currency, str(line.type), line.amount)].remove(chosen)
            yield from matcher.compare(chosen, line.with_(instruction_id=chosen.instruction_id))
            continue
        seen_refs[line.channel_reference] += 1
        n = seen_refs[line.channel_reference]
        yield make(C.UNKNOWN_AT_CHANNEL, date=config.statement_date, channel=config.channel,
                   key=line.channel_reference + (f"#{n}" if n > 1 else ""), currency=line.currency,
                   amount_at_stake=line.amount, ours=None, theirs=line.evidence(),
                   detail="a line without an instruction id of ours, and no transfer of its amount and day")  # fmt: skip
    for transfer in sorted((t for group in pool.values() for t in group), key=lambda t: t.instruction_id):
        yield make(C.MISSING_AT_CHANNEL, date=transfer.date, channel=config.channel, key=transfer.instruction_id,
                   currency=transfer.currency, amount_at_stake=transfer.amount, ours=transfer.evidence(), theirs=None,
                   detail=f"instructed, not on the channel's statement of {config.statement_date}",
                   party=transfer.party)  # fmt: skip


def match(
    lines: Iterable[StatementLine],
    transfers: Iterable[Transfer],
    config: MatchConfig,
    **kwargs,
) -> tuple[list[Confirmation | ReconException], MatchReport]:
    """One chunk in memory: sorts both sides, then matches. For a whole file use Matcher.run over
    sorted streams."""
    matcher = Matcher(config)
    ordered_lines = sorted(lines, key=lambda x: (x.instruction_id or "", x.line_no))
    ordered_transfers = sorted(transfers, key=lambda t: t.instruction_id)
    if "party_records" in kwargs and kwargs["party_records"] is not None:
        kwargs["party_records"] = sorted(kwargs["party_records"], key=lambda r: r.instruction_id)
    out = list(matcher.run(ordered_lines, ordered_transfers, **kwargs))
    return out, matcher.report
