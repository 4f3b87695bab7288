"""The Match of a file not in instruction-id order, in bounded steps (docs/reconciliation.md):

  split   (in the Match step, after pass 1 found the order broken) one more streaming pass writes every
          line, and our transfers and party records, to the gzipped chunk of its hash bucket: local
          files (Lambda's /tmp), then one S3 object each, reconciliation-runs/{run}/buckets/{b}.jsonl.gz;
  bucket  (one MatchBucket invocation each) the chunk read and sorted in memory, matched by a
          Matcher(final=False), its confirmations and exceptions written as matched; what it could not
          decide (transfers without a line, lines without our id) and its counts → {b}.result.json.gz;
  settle  the buckets' leftovers decided together (settle_leftovers), the run's counts written once.

Every object is named by the run and the bucket and its bytes are derived from the file (gzip
mtime 0), every DynamoDB write is the single-stream path's (derived ids, conditional): a retried step
writes the same objects and changes nothing."""

from __future__ import annotations

import contextlib
import gzip
import io
import itertools
import json
import tempfile
from dataclasses import asdict
from typing import TYPE_CHECKING

from coupons.domain.coupons import iso
from coupons.domain.reconciliation import buckets
from coupons.domain.reconciliation.lines import StatementLine
from coupons.domain.reconciliation.matcher import Confirmation, MatchConfig, Matcher
from coupons.domain.reconciliation.records import Transfer

if TYPE_CHECKING:
    from coupons.services.reconciliation import Reconciliation


def cursor(run_id: str, n: int, following: int) -> dict:
    """What the state machine's MoreBuckets? loop reads."""
    return {"run_id": run_id, "buckets": n, "next_bucket": following, "more_buckets": following < n,
            "settle": True, "start": 0, "exceptions": 0}  # fmt: skip


def split(service: Reconciliation, run: dict, n: int, transfers, records) -> None:
    run_id = run["run_id"]
    with contextlib.ExitStack() as stack:
        files = [stack.enter_context(tempfile.TemporaryFile()) for _ in range(n)]
        outs = [
            stack.enter_context(
                io.TextIOWrapper(gzip.GzipFile(fileobj=f, mode="wb", mtime=0), encoding="utf-8")
            )
            for f in files
        ]
        buckets.write_rows(itertools.chain(service._lines(run), transfers, records), outs, n)
        for bucket, (out, f) in enumerate(zip(outs, files, strict=True)):
            out.close()  # the gzip trailer; the file stays open (GzipFile does not close a given fileobj)
            f.seek(0)
            service.files.put_bucket(run_id, bucket, f)


def match_bucket(service: Reconciliation, run_id: str, bucket: int) -> dict:
    run = service.store.run(run_id)
    channel, day, n = run["channel"], run["statement_date"], int(run["buckets"])
    rows = io.TextIOWrapper(gzip.GzipFile(fileobj=service.files.open_bucket(run_id, bucket), mode="rb"),
                            encoding="utf-8")  # fmt: skip
    lines, transfers, records = buckets.chunk(rows)
    matcher = Matcher(
        MatchConfig(channel=channel, statement_date=day, time_zone=service.time_zone), final=False
    )
    at, exception_ids = iso(service._clock()), []
    by_id = {t.instruction_id: t for t in transfers}
    for item in matcher.run(lines, transfers, party_records=records):
        exception_ids.extend(service._write(item, channel, by_id, run_id, at, day))
    result = {"report": buckets.report_of(matcher.report), "exception_ids": exception_ids,
              "missing": [asdict(t) for t in matcher.missing], "unkeyed": [asdict(x) for x in matcher.unkeyed]}  # fmt: skip
    body = json.dumps(result, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    service.files.put_bucket(run_id, bucket, gzip.compress(body, mtime=0), what="result.json")
    return cursor(run_id, n, bucket + 1)


def settle(service: Reconciliation, run_id: str) -> dict:
    run = service.store.run(run_id)
    channel, day, n = run["channel"], run["statement_date"], int(run["buckets"])
    results = [json.loads(gzip.decompress(service.files.open_bucket(run_id, b, what="result.json").read()))
               for b in range(n)]  # fmt: skip
    matcher = Matcher(
        MatchConfig(channel=channel, statement_date=day, time_zone=service.time_zone), final=False
    )
    matcher.missing = [Transfer(**t) for r in results for t in r["missing"]]
    matcher.unkeyed = [StatementLine(**x) for r in results for x in r["unkeyed"]]
    by_id = {t.instruction_id: t for t in matcher.missing}
    at = iso(service._clock())
    exception_ids = [i for r in results for i in r["exception_ids"]]
    for item in matcher.leftovers():
        exception_ids.extend(service._write(item, channel, by_id, run_id, at, day))
    report = buckets.merged([*(r["report"] for r in results), buckets.report_of(matcher.report)])
    service.store.update_run(run_id, {
        "confirmed": report.confirmed, "confirmed_amount": dict(report.confirmed_amount),
        "by_class": dict(report.by_class), "at_stake": report.at_stake, "exception_ids": exception_ids,
    })  # fmt: skip
    return {"run_id": run_id, "exceptions": len(exception_ids), "start": 0}


__all__ = ["Confirmation", "cursor", "match_bucket", "settle", "split"]
