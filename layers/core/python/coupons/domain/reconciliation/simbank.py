"""The simulated bank's daily statement: its accepted instructions of one day as statement lines,
ready for `channel_bill.write` (and for `differences.inject` first). Pure: the caller reads the
bank's records (`SimulatedBank.records()`) and writes the file to the tenant's bucket."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from zoneinfo import ZoneInfo

from coupons.domain.reconciliation.lines import LineStatus, LineType, StatementLine


def statement_lines(
    records: Iterable[dict],
    *,
    channel: str,
    statement_date: str,
    time_zone: str,
    fee_of: Callable[[dict], int] = lambda record: 0,
) -> list[StatementLine]:
    """The records accepted on `statement_date` (in the bank's zone), one SUCCESS line each, in
    instruction id order: a file in that order is matched as one stream (docs/reconciliation.md)."""
    zone = ZoneInfo(time_zone)
    out = []
    for record in records:
        moment = datetime.fromisoformat(record["accepted_at"].replace("Z", "+00:00")).astimezone(zone)
        if moment.date().isoformat() != statement_date:
            continue
        out.append(
            StatementLine(
                channel=channel,
                statement_date=statement_date,
                value_date=statement_date,
                channel_time=moment.isoformat(timespec="seconds"),
                channel_reference=record["channel_reference"],
                instruction_id=record["instruction_id"],
                type=LineType(record["direction"]),
                status=LineStatus.SUCCESS,
                amount=int(record["amount"]),
                fee=fee_of(record),
                currency=record["currency"],
            )
        )
    return sorted(out, key=lambda line: line.instruction_id or "")
