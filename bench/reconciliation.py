"""Reconciliation throughput: statement lines per second through parsing AND matching (the pure
core: coupons.domain.reconciliation), and peak memory, at 10,000 and 100,000 lines (1,000,000 with
BENCH_RECON_1M=1). Pure CPU, no AWS.

How it works
  - Per size N: N transfers of one day (ids in order, amounts and fees varying) and the simulated
    bank's file of them in the project's own format (coupons-bill/1), gzipped to a temporary file
    before timing. One line in 1,000 differs: missing, twice, or another fee (so the matcher's
    held-back set is exercised; it grows with the differences, ~0.3 % of N, not with the file).
  - Timed: open the .csv.gz, `read_statement` (gunzip, CSV, exact amounts, summary check) into
    `Matcher.run` with our transfers as a lazy generator in id order; confirmations and exceptions
    are counted, not kept (a real run streams them to their stores). One pass without tracing for
    the rate, one under tracemalloc for the peak (tracing slows Python down, so its time is not used).
  - Flat memory: the peak at 100,000 (and 1,000,000) lines is compared with the one at 10,000
    (target <= 1.2x; the file is 10x and 100x larger), for the file with differences and for a
    clean one of the same size: what grows with the differences is the held-back set, not the file.
  - Shuffled: the same lines in another order (a real channel's time order, a permutation of our ids),
    so the run's bucket path: pass 1 (parse, count, order found broken), the split into hash-bucket
    chunks of LINES_PER_BUCKET (gzipped local files, as the Match step writes them before S3), then
    each bucket read, sorted and matched by a Matcher(final=False), then the leftovers settled. Its
    peak is one bucket's lines in memory: flat in the file's size once the file spans several buckets.
  - Cost per million lines is MODELLED from the measured rate (see COST below), not measured.

  python bench/reconciliation.py
  BENCH_RECON_1M=1 python bench/reconciliation.py
"""

from __future__ import annotations

import contextlib
import gzip
import itertools
import os
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for path in (str(ROOT), str(ROOT / "layers" / "core" / "python")):
    if path not in sys.path:
        sys.path.insert(0, path)

from coupons.domain.reconciliation import buckets, channel_bill, formats  # noqa: E402
from coupons.domain.reconciliation.lines import LineStatus, LineType, StatementLine  # noqa: E402
from coupons.domain.reconciliation.matcher import MatchConfig, Matcher  # noqa: E402
from coupons.domain.reconciliation.records import ReconException, Transfer, TransferStatus  # noqa: E402

DAY = "2026-11-24"
CHANNEL = "simulated"
LINES_PER_BUCKET = 10_000  # the bench's bucket (the service's default is 50,000: 1 GB Lambda)
SIZES = [10_000, 100_000] + ([1_000_000] if os.environ.get("BENCH_RECON_1M") == "1" else [])

# Modelled AWS figures per million lines (eu-west-1 list prices; the assumptions are printed).
COST = {
    "lambda_gb_s_price": 0.0000166667,
    "lambda_memory_gb": 1.0,
    "transition_price": 0.000025,
    "s3_get_price": 0.0000004,
    "s3_put_price": 0.000005,
    "ddb_read_unit_price": 0.00000025,  # on-demand, per RRU
    "ddb_write_unit_price": 0.00000125,  # on-demand, per WRU
}


def transfer(i: int) -> Transfer:
    return Transfer(
        instruction_id=f"ins_20261124_{i:020d}", party=f"merchant:m{i}", direction="PAYOUT",
        amount=10_000 + i % 97_531, fee=60 + i % 7, currency="CNY", status=TransferStatus.SENT, date=DAY,
        sent_at="2026-11-24T02:00:00.000000Z", run_id="stl_20261124",
    )  # fmt: skip


def transfers(n: int):
    return (transfer(i) for i in range(n))


def lines(n: int, differences: bool = True, shuffled: bool = False):
    for position in range(n):
        # Shuffled: a permutation of the ids (7919 is prime, coprime with the sizes), as time order is.
        i = (position * 7919) % n if shuffled else position
        t = transfer(i)
        line = StatementLine(
            channel=CHANNEL, statement_date=DAY, value_date=DAY, channel_time="2026-11-24T10:00:00+08:00",
            channel_reference=f"SIMBANK-{i:012d}", instruction_id=t.instruction_id, type=LineType.PAYOUT,
            status=LineStatus.SUCCESS, amount=t.amount, fee=t.fee, currency="CNY",
        )  # fmt: skip
        kind = i % 1000 if differences else -1
        if kind == 17:
            continue  # missing
        if kind == 333:
            line = line.with_(fee=line.fee + 1)
        yield line
        if kind == 666:
            yield line  # twice


def write_file(n: int, folder: str, differences: bool = True, shuffled: bool = False) -> Path:
    path = Path(folder) / f"{n}-{differences}-{shuffled}.csv.gz"
    with gzip.open(path, "wt", encoding="utf-8", newline="") as out:
        channel_bill.write(
            out, channel=CHANNEL, statement_date=DAY, time_zone="Asia/Shanghai",
            lines=lines(n, differences, shuffled),
        )  # fmt: skip
    return path


def peak_of(path: Path, n: int, runner=None) -> int:
    tracemalloc.start()
    (runner or run)(path, n)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def run(path: Path, n: int) -> tuple[float, Counter, int]:
    started = time.perf_counter()
    counts: Counter = Counter()
    with open(path, "rb") as raw:
        parsed = formats.read_statement(raw, channel_bill.NAME, channel=CHANNEL, statement_date=DAY)
        matcher = Matcher(MatchConfig(CHANNEL, DAY))
        for item in matcher.run(parsed, transfers(n)):
            counts[str(item.cls) if isinstance(item, ReconException) else "confirmed"] += 1
    return time.perf_counter() - started, counts, matcher.report.lines


def run_shuffled(path: Path, n: int) -> tuple[float, Counter, int]:
    """The run's path for a file not in id order (services/reconciliation_buckets.py), local files for S3."""
    started = time.perf_counter()
    counts: Counter = Counter()

    def parsed(raw):
        return formats.read_statement(raw, channel_bill.NAME, channel=CHANNEL, statement_date=DAY)

    with open(path, "rb") as raw:
        read, ordered = buckets.scan(parsed(raw))  # pass 1
    assert not ordered
    k = buckets.bucket_count(read, LINES_PER_BUCKET)
    folder = path.parent / f"{path.stem}-buckets"
    folder.mkdir(exist_ok=True)
    chunks = [folder / f"{b:05d}.jsonl.gz" for b in range(k)]
    with contextlib.ExitStack() as stack, open(path, "rb") as raw:
        outs = [stack.enter_context(gzip.open(c, "wt", encoding="utf-8")) for c in chunks]
        buckets.write_rows(itertools.chain(parsed(raw), transfers(n)), outs, k)  # the split
    config, missing, unkeyed, reports = MatchConfig(CHANNEL, DAY), [], [], []
    for chunk in chunks:  # one MatchBucket invocation each
        with gzip.open(chunk, "rt", encoding="utf-8") as rows:
            chunk_lines, chunk_transfers, _ = buckets.chunk(rows)
        matcher = Matcher(config, final=False)
        for item in matcher.run(chunk_lines, chunk_transfers):
            counts[str(item.cls) if isinstance(item, ReconException) else "confirmed"] += 1
        del chunk_lines, chunk_transfers
        missing += matcher.missing
        unkeyed += matcher.unkeyed
        reports.append(buckets.report_of(matcher.report))
    settle = Matcher(config, final=False)  # Settle
    settle.missing, settle.unkeyed = missing, unkeyed
    for item in settle.leftovers():
        counts[str(item.cls) if isinstance(item, ReconException) else "confirmed"] += 1
    total = buckets.merged([*reports, buckets.report_of(settle.report)])
    return time.perf_counter() - started, counts, total.lines


def main() -> None:
    print(__doc__.split("\n\n")[0])
    results = []
    with tempfile.TemporaryDirectory() as folder:
        for n in SIZES:
            path = write_file(n, folder)
            seconds, counts, read = run(path, n)
            clean = write_file(n, folder, differences=False)
            shuffled = write_file(n, folder, shuffled=True)
            s_seconds, s_counts, _ = run_shuffled(shuffled, n)
            assert s_counts == counts, (s_counts, counts)  # the bucket path finds what the stream finds
            results.append(
                (n, read, seconds, peak_of(path, n), peak_of(clean, n), path.stat().st_size, counts,
                 s_seconds, peak_of(shuffled, n, run_shuffled))
            )  # fmt: skip
    print()
    print(
        f"{'transfers':>10} {'lines':>10} {'gz KB':>7} {'seconds':>8} {'lines/s':>9} "
        f"{'peak KiB':>9} {'ratio':>6} {'clean KiB':>9} {'ratio':>6} "
        f"{'shuffled lines/s':>16} {'peak KiB':>9} {'ratio':>6}  outcome"
    )
    base, base_clean, base_shuffled = results[0][3], results[0][4], results[0][8]
    for n, read, seconds, peak, clean, size, counts, s_seconds, s_peak in results:
        outcome = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
        print(
            f"{n:>10,} {read:>10,} {size / 1024:>7,.0f} {seconds:>8.2f} {read / seconds:>9,.0f} "
            f"{peak / 1024:>9,.0f} {peak / base:>5.2f}x {clean / 1024:>9,.0f} {clean / base_clean:>5.2f}x "
            f"{read / s_seconds:>16,.0f} {s_peak / 1024:>9,.0f} {s_peak / base_shuffled:>5.2f}x  {outcome}"
        )
    print(
        "peak: 1 line in 1,000 missing / twice / another fee (the held-back MISSING candidates grow with the"
        " differences); clean: a file of the same size without differences; shuffled: the first file's lines"
        f" out of id order, through the bucket path ({LINES_PER_BUCKET:,} lines a bucket: its peak is a bucket's)"
    )
    rate = results[-1][1] / results[-1][2]
    print()
    print(modelled_cost(rate))


def modelled_cost(rate: float) -> str:
    """Per million lines, in chunks of 100,000 lines per Lambda invocation (a Distributed Map child):
    10 children + ~12 parent transitions; Lambda time = lines / the measured rate at 1 GB (a Lambda
    at 1 GB has about one vCPU like this machine's core); S3: 1 GET of the file per child (ranged) +
    10 chunk PUTs and GETs of the sorted chunks; DynamoDB: our transfers read by Query in pages of
    1 MB (~3,000 items of ~300 bytes: 0.5 RRU per 4 KB eventually consistent), one conditional write per
    confirmation (1 WRU) and per exception (2 WRU: the exception and its compensation)."""
    lines = 1_000_000
    children = 10
    seconds = lines / rate
    gb_s = seconds * COST["lambda_memory_gb"]
    transitions = children * 3 + 12
    s3_gets, s3_puts = children * 2, children
    rru = lines * 300 / 4096 * 0.5
    exceptions = lines * 0.003
    wru = (lines - exceptions) * 1 + exceptions * 2
    parts = {
        "Lambda GB-s": gb_s * COST["lambda_gb_s_price"],
        "state transitions": transitions * COST["transition_price"],
        "S3": s3_gets * COST["s3_get_price"] + s3_puts * COST["s3_put_price"],
        "DynamoDB reads": rru * COST["ddb_read_unit_price"],
        "DynamoDB writes": wru * COST["ddb_write_unit_price"],
    }
    rows = [
        "Modelled per 1,000,000 lines (see modelled_cost's docstring for the assumptions):",
        f"  Lambda {seconds:,.0f} s at 1 GB = {gb_s:,.0f} GB-s; {transitions} state transitions; "
        f"S3 {s3_gets} GET + {s3_puts} PUT; DynamoDB {rru:,.0f} RRU + {wru:,.0f} WRU",
        *(f"  {name:<18} ${cost:,.4f}" for name, cost in parts.items()),
        f"  {'total':<18} ${sum(parts.values()):,.4f}  (DynamoDB writes dominate: one per confirmed line)",
    ]
    return "\n".join(rows)


if __name__ == "__main__":
    main()
