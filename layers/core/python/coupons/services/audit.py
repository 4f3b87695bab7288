"""Appending to the audit log (docs/audit.md): table changes from the stream and API calls from the
queue become entries of the shard logs, each source record exactly once, in arrival order per shard.

Shards: an entry goes to shard hash(key) mod N, the key being the changed item's pk (so one item's
changes stay in one log, in stream order) or the calling principal (so one caller's calls do). N is the
tenant's `audit_log_shards`; changing it later starts new logs for the new shards only, never moves an
entry (each entry's shard is stored on its reference and in its id).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from coupons.data.audit import MAX_BYTES, MAX_ROWS, AlreadyAppended, AuditStore, Head, LogMoved, Row
from coupons.data.models.audit import item_key
from coupons.domain import audit, merkle
from coupons.domain.times import iso

# How long a source record's reference is kept: longer than anything can redeliver it (the stream keeps
# records 24 h; the API-call queue 4 days; the dead-letter queues 14 days, replayed by hand).
REF_TTL_SECONDS = 15 * 86_400
# Appends racing another writer of the same shard (or a redelivery of the same records) retry this often.
ATTEMPTS = 10


def shard_of(key: str, shards: int) -> int:
    return int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big") % shards


def entry_id(shard: int, seq: int) -> str:
    """The public id of an entry: its shard and seq (no lookup needed to find it)."""
    return f"ae_{shard}_{seq}"


def parse_entry_id(text: str) -> tuple[int, int] | None:
    parts = text.split("_")
    if len(parts) != 3 or parts[0] != "ae" or not all(p.isdigit() and len(p) < 16 for p in parts[1:]):
        return None
    return int(parts[1]), int(parts[2])


@dataclass(frozen=True)
class Pending:
    """A source record to append: `source_id` identifies it across redeliveries."""

    source_id: str
    shard: int
    time: str
    kind: str
    fields: dict[str, Any]
    item_key: str | None = None
    parties: tuple[str, ...] = ()


def parties_of(image: dict[str, Any]) -> tuple[str, ...]:
    """The parties an item concerns, as principals: its merchant and its brand (domain/principals)."""
    found = []
    if isinstance(image.get("merchant_id"), str):
        found.append(f"merchant:{image['merchant_id']}")
    if isinstance(image.get("brand_id"), str):
        found.append(f"issuer:{image['brand_id']}")
    return tuple(found)


def change(
    *, event_id: str, event_name: str, old: dict | None, new: dict | None, at: datetime, shards: int,
    by_service: bool = False,
) -> Pending:  # fmt: skip
    """A stream record (images already decoded) as a `change` entry, redacted (audit.changes)."""
    image = new or old or {}
    kind = audit.item_kind(image)
    fields = {"event": event_name, **audit.changes(kind, old, new)}
    if by_service:  # a TTL deletion: DynamoDB itself removed the item
        fields["by"] = "dynamodb"
    pk, sk = str(image.get("pk", "")), str(image.get("sk", ""))
    parties = tuple(dict.fromkeys(parties_of(new or {}) + parties_of(old or {})))
    key = item_key(pk, sk) if pk else None
    return Pending(f"stream:{event_id}", shard_of(pk, shards), iso(at), "change", fields, key, parties)


API_CALL_FIELDS = ("principal", "key_id", "method", "route", "path", "status", "request_id", "source_ip")


def api_call(message: dict[str, Any], *, shards: int) -> Pending:
    """A message of the API's audit queue (coupons/api/audit_calls.py) as an `api_call` entry."""
    fields = audit.redact({k: message.get(k) for k in API_CALL_FIELDS})
    request_id = message["request_id"]
    if not isinstance(request_id, str) or not request_id:
        raise audit.InvalidEntry("an API call without its request id")
    principal = fields["principal"]
    return Pending(
        f"api:{request_id}", shard_of(str(principal), shards), message["time"], "api_call", fields, None,
        (principal,) if isinstance(principal, str) else (),
    )  # fmt: skip


class Auditor:
    def __init__(self, store: AuditStore, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC)):
        self._store = store
        self._clock = clock

    def append(self, pending: Sequence[Pending]) -> tuple[int, int]:
        """Appends every record of one shard in order; (appended, duplicates). Raises on the first chunk
        that cannot be written: the caller fails that record and every later one of the shard."""
        appended = duplicates = 0
        rest = list(pending)
        attempts = 0
        while rest:
            shard = rest[0].shard
            window = rest[:MAX_ROWS]
            done = self._store.appended([p.source_id for p in window])
            head = self._store.head(shard)
            compact = merkle.CompactRange(head.size, head.compact)
            rows: list[Row] = []
            consumed = size = 0
            for p in window:
                if p.shard != shard:
                    raise ValueError("one shard per append")
                if p.source_id in done:
                    consumed += 1
                    continue
                data = audit.entry_bytes(compact.size, p.time, p.kind, p.fields)
                if rows and size + len(data) > MAX_BYTES:
                    break
                seq = compact.size
                subtrees = tuple(h for _, _, h in compact.append(merkle.leaf_hash(data)))
                rows.append(Row(seq, p.time, p.kind, p.source_id, p.item_key, data, subtrees, p.parties))
                size += len(data)
                consumed += 1
            if rows:
                after = Head(compact.size, tuple(compact.hashes), iso(self._clock()))
                try:
                    self._store.commit(
                        shard,
                        head,
                        after,
                        rows,
                        ref_expires_at=int(self._clock().timestamp()) + REF_TTL_SECONDS,
                    )
                except (LogMoved, AlreadyAppended):
                    attempts += 1
                    if attempts >= ATTEMPTS:
                        raise
                    continue  # read the head and the references again; nothing of this chunk was written
            appended += len(rows)
            duplicates += consumed - len(rows)
            rest = rest[consumed:]
        return appended, duplicates
