"""The hash-bucket path of a file not in id order (coupons.domain.reconciliation.buckets): the order
found in one pass, the chunks' rows, and the buckets' reports added up as one stream's."""

from __future__ import annotations

import io

from coupons.domain.reconciliation import buckets
from coupons.domain.reconciliation.matcher import Matcher, bucket_of, match
from coupons.domain.reconciliation.records import PartyRecord, ReconException
from tests.unit._reconciliation import CONFIG, day


def test_one_pass_counts_the_lines_and_tells_a_file_out_of_id_order_ignoring_lines_without_our_id():
    _, lines = day(5)
    assert buckets.scan(lines) == (5, True)
    assert buckets.scan([*lines[:2], lines[3].with_(instruction_id=None), *lines[2:]]) == (6, True)
    assert buckets.scan(list(reversed(lines))) == (5, False)


def test_a_buckets_rows_give_back_its_lines_transfers_and_records_sorted_as_the_matcher_reads_them():
    transfers, lines = day(6)
    record = PartyRecord(transfers[0].instruction_id, transfers[0].party, "CNY", "PAYOUT", 1, 1, 1)
    out = io.StringIO()
    buckets.write_rows([*reversed(lines), *reversed(transfers), record], [out], 1)

    got_lines, got_transfers, got_records = buckets.chunk(io.StringIO(out.getvalue()))

    assert got_lines == lines and got_transfers == transfers and got_records == [record]
    assert [x.extra for x in got_lines] == [x.extra for x in lines]  # compare=False: checked apart


def test_the_buckets_reports_add_up_to_the_one_streams_report():
    transfers, lines = day(30)
    lines = [x for i, x in enumerate(lines) if i % 5] + [lines[2].with_(fee=lines[2].fee + 1)]
    _, whole = match(lines, transfers, CONFIG)
    reports, missing, unkeyed = [], [], []
    for b in range(3):
        mine, theirs, _ = buckets.chunk(
            io.StringIO(
                "".join(
                    buckets.encode(x) + "\n"
                    for x in [*lines, *transfers]
                    if bucket_of(x.instruction_id, 3) == b
                )
            )
        )
        matcher = Matcher(CONFIG, final=False)
        list(matcher.run(mine, theirs))
        reports.append(buckets.report_of(matcher.report))
        missing += matcher.missing
        unkeyed += matcher.unkeyed
    settle = Matcher(CONFIG, final=False)
    settle.missing, settle.unkeyed = missing, unkeyed
    assert any(isinstance(x, ReconException) for x in list(settle.leftovers()))
    total = buckets.merged([*reports, buckets.report_of(settle.report)])
    assert buckets.report_of(total) == buckets.report_of(whole)
