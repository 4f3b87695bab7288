"""The audit log's store: shard heads, entries and source references in the main table
(coupons/data/models/audit.py), appended in one transaction per chunk, read back for proofs and checks.

An append is exactly once per source record: its reference item is put under attribute_not_exists in
the same transaction as the entry, and the head moves under a condition on the size it was read at.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pynamodb.exceptions import TransactWriteError

from coupons.data.models import audit as m
from coupons.data.models.base import Transaction, cancelled_by_condition
from coupons.domain import merkle

HASH = merkle.HASH_SIZE
# DynamoDB takes 100 actions and 4 MB in one transaction: two actions a row and one head.
MAX_ROWS = 40
MAX_BYTES = 3_000_000


@dataclass(frozen=True)
class Row:
    """One entry as appended: its place, what it is about, its bytes and the subtrees it completed."""

    seq: int
    time: str
    kind: str
    source_id: str
    item_key: str | None  # the item a change entry is about (models.audit.item_key), None for api calls
    data: bytes
    subtrees: tuple[bytes, ...]
    parties: tuple[str, ...] = ()


@dataclass(frozen=True)
class Head:
    size: int
    compact: tuple[bytes, ...]  # CompactRange.hashes
    updated_at: str | None = None


class LogMoved(Exception):
    """Another writer appended to the shard since its head was read: read it again and retry."""


class AlreadyAppended(Exception):
    """A source record of the chunk was appended meanwhile (a redelivery racing this one)."""


class AuditStore:
    def __init__(self, client: Any, table_name: str, *, tenant: str):
        self._client = client
        self._tenant = tenant
        self.Head = m.AuditHead.bound(client, table_name)
        self.Entry = m.AuditEntry.bound(client, table_name)
        self.Ref = m.AuditRef.bound(client, table_name)

    def log_id(self, shard: int) -> str:
        return f"{self._tenant}/audit/{shard}"

    # -- writing ---------------------------------------------------------------------------------------

    def head(self, shard: int) -> Head:
        try:
            # Consistent: the next seq is decided from it (an eventually consistent read could hand out a
            # seq twice; the condition below would refuse it, but only after a wasted transaction).
            item = self.Head.get(m.head_pk(shard), "HEAD", consistent_read=True)
        except self.Head.DoesNotExist:
            return Head(0, ())
        raw = item.compact or b""
        return Head(item.size, tuple(raw[i : i + HASH] for i in range(0, len(raw), HASH)), item.updated_at)

    def appended(self, source_ids: list[str]) -> dict[str, tuple[int, int]]:
        """(shard, seq) of each source record already in the log, by source id."""
        found: dict[str, tuple[int, int]] = {}
        keys = [(m.ref_pk(s), "AUDITREF") for s in dict.fromkeys(source_ids)]
        for i in range(0, len(keys), 100):
            # Consistent: a reference written a moment ago by the failed attempt of this very batch
            # must be seen, or its record would be appended a second time.
            for ref in self.Ref.batch_get(keys[i : i + 100], consistent_read=True):
                found[ref.pk.removeprefix("AUDITREF#")] = (ref.shard, ref.seq)
        return found

    def commit(self, shard: int, before: Head, after: Head, rows: list[Row], *, ref_expires_at: int) -> None:
        """Writes `rows` (seqs before.size ...) and moves the head from `before` to `after`, all or nothing."""
        log_id = self.log_id(shard)
        tx = Transaction(self._client)
        for row in rows:
            ref = self.Ref(
                m.ref_pk(row.source_id), "AUDITREF", audit_log=log_id, shard=shard, seq=row.seq,
                expires_at=ref_expires_at,
            )  # fmt: skip
            # Not there: a source record is appended once, whatever redelivers it. The reference may expire
            # (TTL) once no redelivery can come any more (the stream and the queue keep records ≤ 14 days).
            tx.save(ref, condition=self.Ref.pk.does_not_exist(), tag=("ref", row.source_id))
            entry = self.Entry(
                m.entry_pk(shard, row.seq), m.entry_sk(row.seq), audit_log=log_id, seq=row.seq,
                time=row.time, kind=row.kind, source_id=row.source_id, data=row.data,
                subtrees=b"".join(row.subtrees), parties=list(row.parties) or None,
            )  # fmt: skip
            if row.item_key:
                entry.gsi1pk = m.item_partition(row.item_key)
                entry.gsi1sk = f"{row.time}#{shard}#{m.entry_sk(row.seq)}"
            # Not there: an entry is written once and never changed (the head condition below already
            # guarantees the seq is free; this one keeps it so if a head was ever put back by hand).
            tx.save(entry, condition=self.Entry.pk.does_not_exist())
        head = self.Head(
            m.head_pk(shard), "HEAD", audit_log=log_id, size=after.size, compact=b"".join(after.compact) or None,
            updated_at=after.updated_at or "",
        )  # fmt: skip
        # The size it was read at: another writer that appended meanwhile makes this one read it again.
        condition = self.Head.pk.does_not_exist() if before.size == 0 else self.Head.size == before.size
        tx.save(head, condition=condition, tag="head")
        try:
            tx.commit()
        except TransactWriteError as error:
            if cancelled_by_condition(error, tx.position("head")):
                raise LogMoved(log_id) from error
            if any(cancelled_by_condition(error, tx.position(("ref", r.source_id))) for r in rows):
                raise AlreadyAppended(log_id) from error
            raise

    # -- reading ---------------------------------------------------------------------------------------

    def entry(self, shard: int, seq: int) -> m.AuditEntry | None:
        try:
            return self.Entry.get(m.entry_pk(shard, seq), m.entry_sk(seq))
        except self.Entry.DoesNotExist:
            return None

    def subtrees(self, shard: int, wanted: list[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        """Many subtree hashes in one BatchGetItem per 100 entries (a proof's O(log n) lookups)."""
        seqs = {lv_ix: ((lv_ix[1] + 1) << lv_ix[0]) - 1 for lv_ix in wanted}
        keys = sorted({(m.entry_pk(shard, s), m.entry_sk(s)) for s in seqs.values()})
        found: dict[int, bytes] = {}
        for i in range(0, len(keys), 100):
            for entry in self.Entry.batch_get(keys[i : i + 100], consistent_read=True):
                found[entry.seq] = entry.subtrees
        out = {}
        for (level, index), seq in seqs.items():
            raw = found.get(seq, b"")
            if len(raw) < HASH * (level + 1):
                raise LookupError(f"no subtree ({level}, {index}) in log {self.log_id(shard)}")
            out[(level, index)] = raw[HASH * level : HASH * (level + 1)]
        return out

    def subtree(self, shard: int, level: int, index: int) -> bytes:
        """merkle.SubtreeGetter over the stored entries (the subtree is kept on the leaf that completed it)."""
        seq = ((index + 1) << level) - 1
        found = self.entry(shard, seq)
        if found is None or len(found.subtrees) < HASH * (level + 1):
            raise LookupError(f"no subtree ({level}, {index}) in log {self.log_id(shard)}")
        return found.subtrees[HASH * level : HASH * (level + 1)]

    def entries(self, shard: int, *, upto: int | None = None) -> Iterator[tuple[int, bytes]]:
        """(seq, bytes) as stored, in key order: every block up to `upto`'s (the head's size), and any
        block after it that holds something (an entry inserted beyond the head is still reported)."""
        block = 0
        last = ((upto or 0) - 1) // m.BLOCK
        while True:
            found = False
            for entry in self.Entry.query(f"AUDITLOG#{shard}#{block:06d}", consistent_read=True):
                found = True
                yield entry.seq, entry.data
            if not found and block > last:
                return
            block += 1

    def of_item(self, pk: str, sk: str, *, limit: int = 100) -> list[m.AuditEntry]:
        """The entries about one table item, oldest first (the trace's index)."""
        # Through the bound model with the index's name: the index attribute belongs to the unbound model.
        return list(self.Entry.query(m.item_partition(m.item_key(pk, sk)), index_name="gsi1", limit=limit))
