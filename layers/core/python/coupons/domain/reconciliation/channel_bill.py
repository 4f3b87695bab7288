"""The project's own channel statement format (`coupons-bill/1`): what the simulated bank writes and
what a channel without a format of its own is asked to send. CSV, UTF-8, one file per channel and day:

    #bill,coupons-bill,1
    #channel,simulated
    #statement_date,2026-11-24
    #time_zone,Asia/Shanghai
    channel_time,channel_reference,merchant_order_no,type,status,amount,fee,currency
    2026-11-24T10:00:00+08:00,SIMBANK-1A2B,ins_20261124_ab12,PAYOUT,SUCCESS,123.45,0.74,CNY
    #summary,currency,count,payout_total,collection_total,return_total,fee_total
    #total,CNY,1,123.45,0.00,0.00,0.74
    #end,1

Amounts are major units with exactly the currency's decimals (JPY none); a line's booking day is its
channel time in the file's zone. One `#total` per currency present, in code order; `#end` carries the
line count, so a truncated file is told from a short one.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import TextIO
from zoneinfo import ZoneInfo

from coupons.domain.money import is_currency
from coupons.domain.reconciliation.amounts import AmountFormatError, format_major, parse_major
from coupons.domain.reconciliation.lines import (
    LineStatus,
    LineType,
    StatementFormatError,
    StatementLine,
    Totals,
)

NAME = "coupons-bill"
VERSION = "1"
COLUMNS = (
    "channel_time",
    "channel_reference",
    "merchant_order_no",
    "type",
    "status",
    "amount",
    "fee",
    "currency",
)
SUMMARY = ("#summary", "currency", "count", "payout_total", "collection_total", "return_total", "fee_total")


def write(
    out: TextIO, *, channel: str, statement_date: str, time_zone: str, lines: Iterable[StatementLine]
) -> int:
    """Write a statement, streaming: each line as it comes, the summary from running totals.
    Returns the number of lines."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerows(
        [
            ("#bill", NAME, VERSION),
            ("#channel", channel),
            ("#statement_date", statement_date),
            ("#time_zone", time_zone),
            COLUMNS,
        ]
    )
    totals = Totals()
    for line in lines:
        totals.add(line)
        writer.writerow(
            (
                line.channel_time,
                line.channel_reference,
                line.instruction_id or "",
                str(line.type),
                str(line.status),
                format_major(line.amount, line.currency),
                format_major(line.fee, line.currency),
                line.currency,
            )
        )
    writer.writerow(SUMMARY)
    for currency, sums in sorted(totals.by_currency.items()):
        writer.writerow(
            (
                "#total",
                currency,
                sums["count"],
                *(format_major(sums[k], currency) for k in ("PAYOUT", "COLLECTION", "RETURN", "fee")),
            )
        )
    writer.writerow(("#end", totals.count))
    return totals.count


class ChannelBill:
    name = NAME

    def parse(self, text: Iterable[str], *, channel: str, statement_date: str) -> Iterator[StatementLine]:
        rows = enumerate(csv.reader(text), start=1)
        zone = self._preamble(rows, channel, statement_date)
        totals = Totals()
        for number, row in rows:
            if row and row[0] == "#summary":
                if tuple(row) != SUMMARY:
                    raise StatementFormatError("the summary header is not the format's", line=number)
                self._summary(rows, totals)
                return
            line = self._line(number, row, channel, statement_date, zone)
            totals.add(line)
            yield line
        raise StatementFormatError("the file ends before its summary: truncated")

    # -- sections ------------------------------------------------------------------------------

    @staticmethod
    def _preamble(rows, channel: str, statement_date: str) -> ZoneInfo:
        expected = [("#bill", NAME, VERSION), ("#channel", channel), ("#statement_date", statement_date)]
        for want in expected:
            number, row = next(rows, (None, None))
            if row is None or tuple(row) != want:
                raise StatementFormatError(f"expected {','.join(want)}, found {row!r}", line=number)
        number, row = next(rows, (None, None))
        if row is None or len(row) != 2 or row[0] != "#time_zone":
            raise StatementFormatError("expected #time_zone,<IANA zone>", line=number)
        try:
            zone = ZoneInfo(row[1])
        except (KeyError, ValueError):
            raise StatementFormatError(f"unknown time zone {row[1]!r}", line=number) from None
        number, row = next(rows, (None, None))
        if row is None or tuple(row) != COLUMNS:
            raise StatementFormatError(f"expected the column header {','.join(COLUMNS)}", line=number)
        return zone

    @staticmethod
    def _line(
        number: int, row: list[str], channel: str, statement_date: str, zone: ZoneInfo
    ) -> StatementLine:
        if len(row) != len(COLUMNS):
            raise StatementFormatError(f"{len(row)} columns, the format has {len(COLUMNS)}", line=number)
        when, reference, order_no, kind, status, amount, fee, currency = row
        if not is_currency(currency):
            raise StatementFormatError(f"unknown currency {currency!r}", line=number, column="currency")
        try:
            moment = datetime.fromisoformat(when)
        except ValueError:
            moment = None
        if moment is None or moment.tzinfo is None:
            raise StatementFormatError(
                f"{when!r} is not an ISO 8601 time with an offset", line=number, column="channel_time"
            )
        if not reference:
            raise StatementFormatError(
                "a line needs the channel's reference", line=number, column="channel_reference"
            )
        try:
            kind_, status_ = LineType(kind), LineStatus(status)
        except ValueError as error:
            raise StatementFormatError(str(error), line=number, column="type/status") from None
        values = {}
        for column, text, signed in (("amount", amount, False), ("fee", fee, True)):
            try:
                values[column] = parse_major(text, currency, signed=signed)
            except AmountFormatError as error:
                raise StatementFormatError(str(error), line=number, column=column) from None
        return StatementLine(
            channel=channel,
            statement_date=statement_date,
            value_date=moment.astimezone(zone).date().isoformat(),
            channel_time=when,
            channel_reference=reference,
            instruction_id=order_no or None,
            type=kind_,
            status=status_,
            amount=values["amount"],
            fee=values["fee"],
            currency=currency,
            line_no=number,
        )

    @staticmethod
    def _summary(rows, totals: Totals) -> None:
        seen = []
        for number, row in rows:
            if row and row[0] == "#end":
                if seen != sorted(totals.by_currency):
                    raise StatementFormatError(
                        f"the summary has totals for {seen}, the lines are in {sorted(totals.by_currency)}",
                        line=number,
                    )
                if len(row) != 2 or row[1] != str(totals.count):
                    raise StatementFormatError(
                        f"#end says {row[1:]}, the file has {totals.count} lines", line=number
                    )
                for number, row in rows:
                    if any(cell.strip() for cell in row):
                        raise StatementFormatError("text after #end", line=number)
                return
            if len(row) != len(SUMMARY) or row[0] != "#total":
                raise StatementFormatError(
                    "expected #total,<currency>,<count>,<4 totals> or #end", line=number
                )
            currency = row[1]
            if currency not in totals.by_currency or (seen and currency <= seen[-1]):
                raise StatementFormatError(
                    f"a total for {currency!r} out of place or without lines", line=number
                )
            seen.append(currency)
            sums = totals.by_currency[currency]
            try:
                stated = [int(row[2])] + [
                    parse_major(t, currency, signed=k == "fee")
                    for t, k in zip(row[3:], ("PAYOUT", "COLLECTION", "RETURN", "fee"), strict=True)
                ]
            except (ValueError, AmountFormatError) as error:
                raise StatementFormatError(str(error), line=number) from None
            computed = [sums["count"], sums["PAYOUT"], sums["COLLECTION"], sums["RETURN"], sums["fee"]]
            if stated != computed:
                raise StatementFormatError(
                    f"the {currency} summary says {stated} (count, payout, collection, return, fee), the lines add up to {computed}",
                    line=number,
                )
        raise StatementFormatError("the file ends before #end: truncated")
