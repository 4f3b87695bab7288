"""One audit entry for the party it concerns, with what proves it is in the log (GET /v1/audit/entries/{id}):
its exact bytes, its inclusion proof in its shard's tree at the latest signed head, the shard head's proof
in the combined head, and the combined head's signature and public key. A client checks it all without
the log and without trusting this API (docs/audit.md, "Proofs for one party")."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from coupons.data.audit import AuditStore
from coupons.data.audit_heads import HeadArchive, head_key
from coupons.domain import audit, merkle
from coupons.domain.audit_heads import parse_head_document, shard_proof
from coupons.domain.errors import AuditEntryNotFound
from coupons.domain.principals import Principal, Role
from coupons.services.audit import entry_id, parse_entry_id


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def may_see(parties: list[str] | None, principal: Principal) -> bool:
    return principal.role is Role.ADMIN or str(principal) in (parties or [])


def _needed(index: int, size: int) -> list[tuple[int, int]]:
    """The (level, index) subtrees an inclusion proof reads: found by running it over a recording getter."""
    asked: list[tuple[int, int]] = []

    def record(level: int, i: int) -> bytes:
        asked.append((level, i))
        return b"\x00" * merkle.HASH_SIZE

    merkle.inclusion_proof(record, index, size)
    return asked


class AuditReader:
    def __init__(self, store: AuditStore, archive: HeadArchive):
        self._store = store
        self._archive = archive

    def entry(self, text_id: str, principal: Principal) -> dict[str, Any]:
        place = parse_entry_id(text_id)
        if place is None:
            raise AuditEntryNotFound(field="entry_id")
        shard, seq = place
        found = self._store.entry(shard, seq)
        # Another party's entry is "not found", as one that does not exist: ids are guessable by design.
        if found is None or not may_see(found.parties, principal):
            raise AuditEntryNotFound(field="entry_id")
        answer: dict[str, Any] = {
            "entry_id": entry_id(shard, seq),
            "log_id": self._store.log_id(shard),
            "shard": shard,
            "seq": seq,
            "entry": audit.decode(found.data),
            "entry_bytes": _b64(found.data),
            "leaf_hash": merkle.leaf_hash(found.data).hex(),
        }
        document = self._archive.latest()
        signed_heads = parse_head_document(document) if document else None
        if signed_heads is None or shard >= len(signed_heads[1]) or signed_heads[1][shard].size <= seq:
            # Appended after the latest signed head: the next one (within the tenant's period) covers it.
            return {**answer, "status": "PENDING_SIGNATURE", "proof": None}
        signed, shard_heads = signed_heads
        head = shard_heads[shard]
        hashes = self._store.subtrees(shard, _needed(seq, head.size))
        inclusion = merkle.inclusion_proof(lambda level, i: hashes[(level, i)], seq, head.size)
        public_key = base64.b64decode(document["public_key"])
        return {
            **answer,
            "status": "SIGNED",
            "proof": {
                "hashing": "RFC 6962: leaf = SHA-256(0x00 || entry_bytes), node = SHA-256(0x01 || left || right)",
                "inclusion": {"leaf_index": seq, "tree_size": head.size, "path": [_b64(h) for h in inclusion]},
                "shard_head": {
                    "log_id": head.log_id, "size": head.size, "timestamp_ms": head.timestamp_ms, "root": _b64(head.root),
                },
                "shard_head_proof": {
                    "leaf_index": shard, "tree_size": len(shard_heads),
                    "path": [_b64(h) for h in shard_proof(shard_heads, shard)],
                },
                "signed_head": {
                    "log_id": signed.head.log_id, "size": signed.head.size, "timestamp_ms": signed.head.timestamp_ms,
                    "root": _b64(signed.head.root), "signed_bytes": document["signed_bytes"],
                    "signature": document["signature"], "algorithm": document["algorithm"],
                    "published_as": head_key(signed.head.timestamp_ms),
                },
                "public_key": {
                    "der": _b64(public_key),
                    "sha256": hashlib.sha256(public_key).hexdigest(),
                    "key_id": document["key_id"],
                    "where": "KMS GetPublicKey of key_id (the tenant's AuditSigningKeyId output), or every "
                    "head in the audit bucket; pin its sha256 once, out of band",
                },
            },
        }  # fmt: skip
