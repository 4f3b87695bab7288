"""Audit log verification speed and proof sizes: entries verified per second by coupons.domain.audit_verify
at 10k / 100k (and 1M) entries, and inclusion / consistency proof size (hashes) and time against log size.

Pure CPU, no AWS. Entries are canonical change entries of ~200 bytes (coupons.domain.audit.entry_bytes);
a signed head every 1,000 entries (a stream batch's worth); signatures are not what is measured (a
no-op verify callback: an ECDSA P-256 verify costs ~0.1 ms a head, so ~0.1 s for 1M entries at this
head rate). "strict" also checks every entry is canonical (a JSON decode and encode each); "hash only"
decodes just the seq. Proofs come from coupons.domain.merkle.SubtreeLevels (what a store keeps).

  python bench/audit.py                   (10k and 100k entries)
  BENCH_AUDIT_1M=1 python bench/audit.py  (also 1M: ~1 min to build the entries, then the timed pass)
"""

from __future__ import annotations

import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for path in (str(ROOT), str(ROOT / "layers" / "core" / "python")):
    if path not in sys.path:
        sys.path.insert(0, path)

from coupons.domain import audit, merkle  # noqa: E402
from coupons.domain.audit_heads import SignedHead, TreeHead  # noqa: E402
from coupons.domain.audit_verify import verify_log  # noqa: E402

LOG = "bench/audit/0"
TIME = "2025-03-01T10:00:00.000000Z"
HEAD_EVERY = 1000
SIZES = [10_000, 100_000] + ([1_000_000] if os.environ.get("BENCH_AUDIT_1M") == "1" else [])


def entries(n: int) -> list[tuple[int, bytes]]:
    return [
        (
            i,
            audit.entry_bytes(
                i,
                TIME,
                "change",
                {
                    "item": "COUPON",
                    "key": {"pk": f"COUPON#C{i:010d}", "sk": "COUPON"},
                    "changes": {"state": {"old": "ISSUED", "new": "REDEEMED"}, "version": {"old": 1, "new": 2}},
                },
            ),
        )
        for i in range(n)
    ]


def heads(log: list[tuple[int, bytes]]) -> tuple[list[SignedHead], merkle.SubtreeLevels]:
    levels = merkle.SubtreeLevels([merkle.leaf_hash(data) for _, data in log])
    sizes = list(range(HEAD_EVERY, len(log) + 1, HEAD_EVERY))
    return [SignedHead(TreeHead(LOG, s, s, levels.root(s)), b"") for s in sizes], levels


def accept(message: bytes, signature: bytes) -> bool:
    return True


def main() -> None:
    print(f"verification (a head every {HEAD_EVERY} entries, signatures not timed)")
    print(f"{'entries':>10} {'bytes/entry':>12} {'strict /s':>12} {'hash only /s':>13} {'1M would take (strict)':>24}")
    largest = None
    for n in SIZES:
        log = entries(n)
        signed, levels = heads(log)
        rates = []
        for strict in (True, False):
            started = time.perf_counter()
            report = verify_log(log, signed, log_id=LOG, verify=accept, strict=strict)
            elapsed = time.perf_counter() - started
            assert report.ok and report.verified_size == n, report.problems
            rates.append(n / elapsed)
        size = sum(len(d) for _, d in log) // n
        print(f"{n:>10,} {size:>12} {rates[0]:>12,.0f} {rates[1]:>13,.0f} {1_000_000 / rates[0]:>22.1f} s")
        largest = levels

    print("\nproofs against log size (from stored perfect-subtree hashes; mean of 200 random leaves)")
    print(f"{'log size':>10} {'inclusion hashes':>17} {'µs to make+check':>17} {'consistency hashes':>19} {'µs to make+check':>17}")
    rng = random.Random(1)
    size = 1
    while size <= largest.size:
        root = largest.root(size)
        picks = [rng.randrange(size) for _ in range(200)]
        started = time.perf_counter()
        lengths = []
        for i in picks:
            proof = largest.inclusion_proof(i, size)
            assert merkle.verify_inclusion(i, size, largest.get(0, i), proof, root)
            lengths.append(len(proof))
        inclusion_us = (time.perf_counter() - started) / len(picks) * 1e6
        inclusion_len = sum(lengths) / len(lengths)
        olds = [rng.randrange(1, size) for _ in range(200)] if size > 1 else []
        started = time.perf_counter()
        lengths = []
        for m in olds:
            proof = largest.consistency_proof(m, size)
            assert merkle.verify_consistency(m, size, largest.root(m), root, proof)
            lengths.append(len(proof))
        consistency_us = (time.perf_counter() - started) / max(1, len(olds)) * 1e6
        consistency_len = sum(lengths) / max(1, len(lengths))
        print(f"{size:>10,} {inclusion_len:>17.1f} {inclusion_us:>17.1f} {consistency_len:>19.1f} {consistency_us:>17.1f}")
        size *= 10
    print(f"(at most ⌈log2 n⌉ hashes: {largest.size.bit_length()} at {largest.size:,}; the consistency "
          "column's time includes computing the old root from the store)")
    cost()


# -- cost per state change: the audit function's real handler against moto ----------------------------

COST_RECORDS = int(os.environ.get("BENCH_AUDIT_RECORDS", "1000"))
COST_MODEL = """\
Cost model (as bench/clearing.py's): a write in TransactWriteItems costs 2 write units per item per KB of
the item; a global secondary index write 1 unit per KB; strongly consistent reads 1 read unit per 4 KB.
Per appended chunk (up to 40 records of one shard): a BatchGetItem of the records' references, a GetItem
of the shard head, one TransactWriteItems of (per record) the reference Put and the entry Put (which
enters gsi1, the trace index) plus one head Put."""


def cost() -> None:
    import contextlib
    import importlib.util
    import io
    import math
    from collections import Counter

    import boto3
    from moto import mock_aws

    from bench.clearing import item_size
    from coupons.data.schema import MAIN

    table = "coupons-bench-audit"
    os.environ.update({MAIN.env_var: table, "TENANT": "bench", "AUDIT_LOG_SHARDS": "4",
                       "POWERTOOLS_TRACE_DISABLED": "true", "POWERTOOLS_METRICS_NAMESPACE": "bench",
                       "AWS_DEFAULT_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x"})  # fmt: skip
    from infra.local import moto_fixes

    moto_fixes.apply()  # a transaction backs up its own items, not the whole table (as the local stack)
    with mock_aws():
        raw = boto3.client("dynamodb", region_name="eu-west-1")
        raw.create_table(**MAIN.create_table_kwargs(table))
        import coupons.config
        import coupons.data.clients

        coupons.config.settings.cache_clear()
        coupons.data.clients.reset()
        spec = importlib.util.spec_from_file_location("audit_handler", ROOT / "functions" / "audit" / "handler.py")
        handler = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(handler)
        requests: Counter = Counter()
        coupons.data.clients.dynamodb().meta.events.register(
            "before-call.dynamodb", lambda model, **_: requests.update([model.name])
        )
        # A coupon redeemed: the stream's MODIFY of a ~15-attribute item.
        old = {"pk": {"S": ""}, "sk": {"S": "COUPON"}, "kind": {"S": "COUPON"}, "state": {"S": "ISSUED"},
               "campaign_id": {"S": "cmp_01JDEMO0000000000000000000"}, "owner": {"S": "u-000123"},
               "valid_from": {"S": TIME}, "valid_until": {"S": TIME}, "brand_id": {"S": "brand-demo"},
               "version": {"N": "1"}, "face_value": {"N": "1000"}, "currency": {"S": "CNY"}}  # fmt: skip
        records = []
        for i in range(COST_RECORDS):
            before = {**old, "pk": {"S": f"COUPON#C{i:010d}"}}
            after = {**before, "state": {"S": "REDEEMED"}, "version": {"N": "2"}, "redeemed_at": {"S": TIME}}
            records.append({"eventID": f"ev-{i}", "eventName": "MODIFY", "eventSource": "aws:dynamodb",
                            "dynamodb": {"Keys": {"pk": before["pk"], "sk": before["sk"]}, "OldImage": before,
                                         "NewImage": after, "SequenceNumber": f"{i:021d}",
                                         "ApproximateCreationDateTime": 1795568400}})  # fmt: skip
        started = time.perf_counter()
        for i in range(0, len(records), 100):
            with contextlib.redirect_stdout(io.StringIO()):  # the handler's metric lines
                answer = handler.lambda_handler({"Records": records[i : i + 100]}, _Context())
            assert not answer["batchItemFailures"], answer
        elapsed = time.perf_counter() - started
        transactions = requests["TransactWriteItems"]
        items = raw.scan(TableName=table)["Items"]
        def kb(item: dict) -> int:  # binary values: their length (bench/clearing.py sizes the other types)
            size = sum(len(k.encode()) + (len(v["B"]) if "B" in v else item_size({k: v}) - len(k.encode()))
                       for k, v in item.items())  # fmt: skip
            return max(1, math.ceil(size / 1024))

        entry_units = sum(2 * kb(i) + kb(i) for i in items if i["pk"]["S"].startswith("AUDITLOG#") and i["sk"]["S"] != "HEAD")
        ref_units = sum(2 * kb(i) for i in items if i["pk"]["S"].startswith("AUDITREF#"))
        head_units = 2 * transactions * max(kb(i) for i in items if i["sk"]["S"] == "HEAD")
        n = COST_RECORDS
        print(f"\ncost per state change ({n:,} stream records in batches of 100, 4 shard logs, moto in-process)")
        print(COST_MODEL)
        print(f"{'requests/change':>16} {'write units/change':>19} {'(entry+gsi / ref / head)':>26} {'changes/s':>10}")
        print(f"{sum(requests.values()) / n:>16.3f} {(entry_units + ref_units + head_units) / n:>19.2f} "
              f"{f'{entry_units / n:.2f} / {ref_units / n:.2f} / {head_units / n:.2f}':>26} {n / elapsed:>10,.0f}")  # fmt: skip
        print("requests: " + ", ".join(f"{k} {v}" for k, v in sorted(requests.items())))


class _Context:
    function_name = "audit"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:eu-west-1:123456789012:function:audit"
    aws_request_id = "bench"


if __name__ == "__main__":
    main()
