"""Checking the whole audit log against its published heads (`make audit-verify`, infra/audit_verify.py).

1. Every published document: its combined head's signature (ECDSA P-256 over the head's bytes, with the
   pinned public key), its log id, its time after the one before, and its root = shards_root of the shard
   heads it lists. A document that fails is reported and vouches for nothing.
2. Every shard log: its stored entries against the shard heads the good documents vouch for, by
   coupons.domain.audit_verify.verify_log (seq numbering, content, consistency between heads).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from coupons.domain import audit_verify
from coupons.domain.audit_heads import (
    InvalidHead,
    SignedHead,
    head_bytes,
    parse_head_document,
    shards_root,
    verify_head,
)

VOUCHED = b"vouched-by-a-signed-combined-head"


@dataclass
class CheckReport:
    heads: int = 0
    head_problems: list[audit_verify.Problem] = field(default_factory=list)
    shards: dict[int, audit_verify.Report] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.head_problems and all(r.ok for r in self.shards.values())

    def first_bad(self) -> tuple[int, audit_verify.Problem] | None:
        """(shard, problem) with the lowest seq of the first shard that has one."""
        for shard, report in sorted(self.shards.items()):
            seqs = [p for p in report.problems if p.seq is not None]
            if seqs:
                return shard, min(seqs, key=lambda p: p.seq)
        return None

    def summary(self) -> dict:
        return {
            "ok": self.ok,
            "heads": self.heads,
            "head_problems": [vars(p) for p in self.head_problems],
            "shards": {
                str(s): {
                    "entries": r.entries,
                    "verified_size": r.verified_size,
                    "problems": [vars(p) for p in r.problems],
                }
                for s, r in sorted(self.shards.items())
            },
        }


def check(
    documents: Iterable[dict],
    entries_of: Callable[[int, int], Iterable[tuple[int, bytes]]],
    *,
    tenant: str,
    shards: int,
    verify: Callable[[bytes, bytes], bool],
    strict: bool = True,
) -> CheckReport:
    """`documents` the published heads in order; `entries_of(shard, upto)` a shard's stored entries;
    `verify(message, signature)` the pinned public key's ECDSA check."""
    report = CheckReport()
    per_shard: dict[int, list[SignedHead]] = {s: [] for s in range(shards)}
    vouched: set[bytes] = set()
    last_time = -1
    combined_id = f"{tenant}/audit"
    for index, document in enumerate(documents):
        report.heads += 1
        try:
            signed, shard_heads = parse_head_document(document)
        except InvalidHead as err:
            report.head_problems.append(
                audit_verify.Problem("malformed_head", f"head {index}: {err}", head=index)
            )
            continue
        problem = None
        if not verify_head(signed, verify):
            problem = "bad_signature"
        elif signed.head.log_id != combined_id:
            problem = "wrong_log"
        elif signed.head.timestamp_ms <= last_time:
            problem = "inconsistent_head"
        elif signed.head.size != len(shard_heads) or shards_root(shard_heads) != signed.head.root:
            problem = "shards_differ"
        elif [h.log_id for h in shard_heads] != [f"{tenant}/audit/{s}" for s in range(len(shard_heads))]:
            problem = "wrong_log"
        if problem:
            report.head_problems.append(
                audit_verify.Problem(problem, f"published head {index}: {problem}", head=index)
            )
            continue
        last_time = signed.head.timestamp_ms
        for shard, head in enumerate(shard_heads[:shards]):
            vouched.add(head_bytes(head))
            per_shard[shard].append(SignedHead(head, VOUCHED))

    def vouched_for(message: bytes, signature: bytes) -> bool:
        return signature == VOUCHED and message in vouched

    for shard in range(shards):
        heads = per_shard[shard]
        upto = max((h.head.size for h in heads), default=0)
        report.shards[shard] = audit_verify.verify_log(
            entries_of(shard, upto),
            heads,
            log_id=f"{tenant}/audit/{shard}",
            verify=vouched_for,
            strict=strict,
        )
    return report
