"""A statement file NOT in instruction-id order (a real channel's, WeChat's among them, is in time
order) matched in hash buckets: each line, transfer and party record goes to the chunk `bucket_of` its
instruction id names, a chunk is small enough to sort in memory and is matched by its own
`Matcher(final=False)`, and what no bucket could decide alone (the transfers that found no line, the
lines without our id) is settled together at the end (`settle_leftovers`): what one sorted stream gives.

Pure: the chunk's rows are JSON text (one item a row, tagged), written and read by the run's service."""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import asdict
from typing import Any

from coupons.domain.reconciliation.lines import StatementLine
from coupons.domain.reconciliation.matcher import MatchReport, bucket_of
from coupons.domain.reconciliation.records import PartyRecord, Transfer

LINE, TRANSFER, RECORD = "l", "t", "r"
_TYPES = {LINE: StatementLine, TRANSFER: Transfer, RECORD: PartyRecord}
_TAGS = {StatementLine: LINE, Transfer: TRANSFER, PartyRecord: RECORD}


def scan(lines: Iterable[StatementLine]) -> tuple[int, bool]:
    """(how many lines, whether those with our id come in id order): one streaming pass, nothing held.
    Lines without our id do not count for the order (the matcher sets them aside)."""
    count, ordered, last = 0, True, None
    for line in lines:
        count += 1
        if line.instruction_id:
            if last is not None and line.instruction_id < last:
                ordered = False
            last = line.instruction_id
    return count, ordered


def bucket_count(lines: int, lines_per_bucket: int) -> int:
    return max(1, math.ceil(lines / lines_per_bucket))


def encode(item: StatementLine | Transfer | PartyRecord) -> str:
    return json.dumps(
        [_TAGS[type(item)], asdict(item)], ensure_ascii=False, separators=(",", ":"), sort_keys=True
    )


def write_rows(items: Iterable[StatementLine | Transfer | PartyRecord], outs: list, n: int) -> None:
    """Each item, as it comes, to the text stream of its bucket (outs[b], b = bucket_of its id)."""
    for item in items:
        outs[bucket_of(item.instruction_id, n)].write(encode(item) + "\n")


def decode(row: str) -> StatementLine | Transfer | PartyRecord:
    tag, fields = json.loads(row)
    return _TYPES[tag](**fields)


def chunk(rows: Iterable[str]) -> tuple[list[StatementLine], list[Transfer], list[PartyRecord]]:
    """One bucket's rows, sorted as the matcher reads them: lines by (id, file position: THE line is
    the first in the file), transfers and party records by id."""
    found: dict[type, list] = {StatementLine: [], Transfer: [], PartyRecord: []}
    for row in rows:
        if row.strip():
            item = decode(row)
            found[type(item)].append(item)
    return (
        sorted(found[StatementLine], key=lambda x: (x.instruction_id or "", x.line_no)),
        sorted(found[Transfer], key=lambda t: t.instruction_id),
        sorted(found[PartyRecord], key=lambda r: r.instruction_id),
    )


def report_of(report: MatchReport) -> dict[str, Any]:
    return {"lines": report.lines, "transfers": report.transfers, "confirmed": report.confirmed,
            "confirmed_amount": dict(report.confirmed_amount), "by_class": dict(report.by_class),
            "at_stake": {k: dict(v) for k, v in report.at_stake.items()}}  # fmt: skip


def merged(reports: Iterator[dict[str, Any]] | list[dict[str, Any]]) -> MatchReport:
    """The buckets' reports (and the leftovers') as one: what one stream's would be."""
    total = MatchReport()
    for r in reports:
        total.lines += r["lines"]
        total.transfers += r["transfers"]
        total.confirmed += r["confirmed"]
        for currency, amount in r["confirmed_amount"].items():
            total.confirmed_amount[currency] = total.confirmed_amount.get(currency, 0) + amount
        total.by_class.update(Counter(r["by_class"]))
        for cls, stakes in r["at_stake"].items():
            mine = total.at_stake.setdefault(cls, {})
            for currency, amount in stakes.items():
                mine[currency] = mine.get(currency, 0) + amount
    return total
