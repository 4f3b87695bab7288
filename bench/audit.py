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


if __name__ == "__main__":
    main()
