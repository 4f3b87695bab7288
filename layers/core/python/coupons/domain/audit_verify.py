"""The audit log's verifier: from the entries as stored (seq, bytes) and the published signed heads, in
order, recompute the tree and name the first thing that is not what the signer signed.

What it can tell, and how precisely (the heads are the only trusted input):
- an entry missing, duplicated, out of place, or whose bytes say another seq or are not a canonical
  entry: the exact seq, from the numbering alone (stored seq = position = the seq inside the bytes);
- an entry's content changed (seq kept): the tree no longer gives the signed root. Only the signed roots
  can say so, so the edit is placed between the last head that still matches and the first that does not:
  `seq` is the first entry after the last good head, `through` the last one the failing head covers.
  With a head per writer batch this is the batch; with a head per entry, the entry itself;
- a head whose signature fails, of another log, or that goes back in size or time, or gives another root
  for a size already signed: that head (its index);
- a head whose root the entries do not give while a LATER signed head does: that head is inconsistent
  with the log (the later head vouches for the entries), not the entries.

Fast path: one pass, hashlib directly, the compact range inlined (no per-entry method call); checking that
each entry's bytes are canonical (`strict`) is optional and costs a JSON decode and encode an entry.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from coupons.domain import audit, merkle
from coupons.domain.audit_heads import SignedHead, Verify, verify_head


@dataclass(frozen=True)
class Problem:
    """One finding: `what` is a stable code; `seq` the first bad entry (and `through` the last one the
    finding covers, when it is a range); `head` the index of the head concerned."""

    what: str
    detail: str
    seq: int | None = None
    through: int | None = None
    head: int | None = None


@dataclass
class Report:
    entries: int = 0  # entries read
    verified_size: int = 0  # the size of the last head that the entries and every head before it match
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first_bad_seq(self) -> int | None:
        seqs = [p.seq for p in self.problems if p.seq is not None]
        return min(seqs) if seqs else None

    @property
    def first_bad_head(self) -> int | None:
        heads = [p.head for p in self.problems if p.head is not None]
        return min(heads) if heads else None


def _trusted_heads(heads: Sequence[SignedHead], log_id: str, verify: Verify, report: Report) -> list[int]:
    """The indexes of heads that are signed, of this log, and consistent with the trusted ones before."""
    trusted: list[int] = []
    for i, signed in enumerate(heads):
        head = signed.head
        if not verify_head(signed, verify):
            report.problems.append(Problem("bad_signature", f"head {i}'s signature does not verify", head=i))
            continue
        if head.log_id != log_id:
            report.problems.append(Problem("wrong_log", f"head {i} is of log {head.log_id!r}", head=i))
            continue
        if trusted:
            prev = heads[trusted[-1]].head
            if head.size < prev.size or head.timestamp_ms < prev.timestamp_ms:
                report.problems.append(
                    Problem("inconsistent_head", f"head {i} goes back from head {trusted[-1]}", head=i)
                )
                continue
            if head.size == prev.size and head.root != prev.root:
                report.problems.append(
                    Problem("inconsistent_head", f"head {i} signs another root for size {head.size}", head=i)
                )
                continue
        if head.size == 0 and head.root != merkle.EMPTY_ROOT:
            report.problems.append(Problem("inconsistent_head", f"head {i}: an empty tree's root", head=i))
            continue
        trusted.append(i)
    return trusted


def verify_log(
    entries: Iterable[tuple[int, bytes]],
    heads: Sequence[SignedHead],
    *,
    log_id: str,
    verify: Verify,
    strict: bool = True,
) -> Report:
    """Checks every entry against every head (module docstring); `entries` in stored order."""
    report = Report()
    trusted = _trusted_heads(heads, log_id, verify, report)
    targets = [(heads[i].head.size, i) for i in trusted]
    target_at = 0
    while target_at < len(targets) and targets[target_at][0] == 0:
        target_at += 1  # empty-tree heads were checked above
    matched: list[int] = []  # sizes of the heads the entries gave
    mismatches: list[int] = []  # indexes of the heads they did not

    sha256, leaf_prefix, node_prefix = hashlib.sha256, merkle.LEAF_PREFIX, merkle.NODE_PREFIX
    loads = json.loads
    stack: list[bytes] = []  # the compact range, largest subtree first
    size = 0
    broken = None  # the first structural problem: hashing stops there

    for seq, data in entries:
        if seq != size:
            if seq > size:
                broken = Problem("missing", f"entries {size}..{seq - 1} are missing", seq=size, through=seq - 1)
            else:
                broken = Problem("out_of_order", f"entry {seq} comes again after entry {size - 1}", seq=seq)
            break
        try:
            inner = audit.decode(data)["seq"] if strict else loads(data)["seq"]
        except (audit.InvalidEntry, ValueError, TypeError, KeyError) as err:
            broken = Problem("malformed", f"entry {seq}: {err}", seq=seq)
            break
        if inner != seq:
            broken = Problem("seq_mismatch", f"the entry stored as {seq} says it is {inner}", seq=seq)
            break
        h = sha256(leaf_prefix + data).digest()
        n = size
        while n & 1:  # merge equal-sized subtrees: a binary counter's carry
            h = sha256(node_prefix + stack.pop() + h).digest()
            n >>= 1
        stack.append(h)
        size += 1
        while target_at < len(targets) and targets[target_at][0] == size:
            root = stack[-1]
            for piece in reversed(stack[:-1]):
                root = sha256(node_prefix + piece + root).digest()
            index = targets[target_at][1]
            if root == heads[index].head.root:
                matched.append(size)
            else:
                mismatches.append(index)
            target_at += 1
    report.entries = size + (1 if broken else 0)

    if broken:
        report.problems.append(broken)
    elif target_at < len(targets):
        index = targets[target_at][1]
        want = heads[index].head.size
        report.problems.append(
            Problem("missing", f"head {index} signs {want} entries, the log has {size}", seq=size, through=want - 1)
        )
    last_match = max(matched, default=0)
    differ = None
    for index in mismatches:
        head_size = heads[index].head.size
        if head_size < last_match:  # a later signed head vouches for these entries: this head is the odd one
            report.problems.append(
                Problem("inconsistent_head", f"head {index}'s root is not the log's, a later head's is", head=index)
            )
        elif differ is None:
            good = max((m for m in matched if m < head_size), default=0)
            differ = Problem(
                "entries_differ",
                f"an entry in {good}..{head_size - 1} is not what head {index} signed",
                seq=good,
                through=head_size - 1,
                head=index,
            )
            report.problems.append(differ)
    report.verified_size = differ.seq if differ else last_match
    return report


def verify_entry(
    seq: int, data: bytes, proof: Sequence[bytes], signed: SignedHead, *, log_id: str, verify: Verify
) -> Problem | None:
    """One entry against one signed head and its inclusion proof (what a client of a proof route checks)."""
    if not verify_head(signed, verify):
        return Problem("bad_signature", "the head's signature does not verify", head=0)
    if signed.head.log_id != log_id:
        return Problem("wrong_log", f"the head is of log {signed.head.log_id!r}", head=0)
    try:
        inner = audit.decode(data)["seq"]
    except audit.InvalidEntry as err:
        return Problem("malformed", f"entry {seq}: {err}", seq=seq)
    if inner != seq:
        return Problem("seq_mismatch", f"the entry given as {seq} says it is {inner}", seq=seq)
    if not merkle.verify_inclusion(seq, signed.head.size, merkle.leaf_hash(data), proof, signed.head.root):
        return Problem("bad_proof", f"entry {seq} is not in the signed tree of {signed.head.size}", seq=seq)
    return None
