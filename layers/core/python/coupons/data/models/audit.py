"""The audit log's items in the main table (docs/audit.md): each shard log's head, its entries, and one
reference per source record (what makes an append exactly once).

  AUDITLOG#{shard} / HEAD                        size, the compact range (one hash per set bit of size)
  AUDITLOG#{shard}#{block:06d} / {seq:012d}      one entry: its canonical bytes, the subtrees it completed
                                                 gsi1: AUDITITEM#{pk}|{sk} / {time}#{shard}#{seq:012d}
  AUDITREF#{source id} / AUDITREF                the (shard, seq) a source record was appended as; TTL

Every audit item carries `audit_log` (its log id): the audit function's stream filter drops records of
items that have it, so the log never logs its own writes. Entries are grouped BLOCK entries a partition,
so one log's entries spread over partitions and a range of them is read by a few queries.
"""

from __future__ import annotations

from pynamodb.attributes import BinaryAttribute

from coupons.data.models.base import Integer, List, MainModel, Text

BLOCK = 4096  # entries per partition of a log (a power of two: a block is an aligned subtree)
MARKER = "audit_log"  # the attribute every audit item has (infra/constructs/audit.py filters on it)


def head_pk(shard: int) -> str:
    return f"AUDITLOG#{shard}"


def entry_pk(shard: int, seq: int) -> str:
    return f"AUDITLOG#{shard}#{seq // BLOCK:06d}"


def entry_sk(seq: int) -> str:
    return f"{seq:012d}"


def ref_pk(source_id: str) -> str:
    return f"AUDITREF#{source_id}"


def item_key(pk: str, sk: str) -> str:
    """One table item's key as the trace index names it (| appears in no key of the table)."""
    return f"{pk}|{sk}"


def item_partition(key: str) -> str:
    return f"AUDITITEM#{key}"


class AuditHead(MainModel):
    """A shard log's head: how many entries it has and the compact range of their tree. Every append
    moves it under a condition on `size`, so two writers never give one seq twice."""

    audit_log = Text()
    size = Integer()
    compact = BinaryAttribute(legacy_encoding=False, null=True)  # 32 bytes per set bit of size
    updated_at = Text()


class AuditEntry(MainModel):
    audit_log = Text()
    seq = Integer()
    time = Text()
    kind = Text()
    source_id = Text()
    data = BinaryAttribute(legacy_encoding=False)  # the entry's canonical bytes (the leaf's input)
    # The perfect subtrees this leaf completed, leaf hash first (level 0, 1, ...), 32 bytes each:
    # the subtree (level, index) is stored on the entry (index + 1) * 2**level - 1.
    subtrees = BinaryAttribute(legacy_encoding=False)
    # Who the entry concerns ("merchant:m-1", "issuer:b-1"; an API call's caller): who may read its proof.
    # Beside the signed bytes, not in them: it says who may ask, not what happened.
    parties = List(null=True)


class AuditRef(MainModel):
    audit_log = Text()
    shard = Integer()
    seq = Integer()
