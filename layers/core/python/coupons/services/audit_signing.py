"""Signing the audit log's tree head (docs/audit.md, "Sharding"): every period, the shard logs' heads as
they stand, one combined head over them (audit_heads.shards_root), signed by the tenant's asymmetric KMS
key, published to the write-once bucket."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from coupons.data.audit import AuditStore
from coupons.data.audit_heads import HeadArchive
from coupons.domain import merkle
from coupons.domain.audit_heads import TreeHead, head_document, shards_root, sign_head


def combined_log_id(tenant: str) -> str:
    return f"{tenant}/audit"


class HeadSigner:
    def __init__(
        self,
        store: AuditStore,
        archive: HeadArchive,
        *,
        sign: Callable[[bytes], bytes],
        public_key: Callable[[], bytes],
        key_id: str,
        tenant: str,
        shards: int,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ):
        self._store, self._archive, self._sign, self._public_key = store, archive, sign, public_key
        self._key_id, self._tenant, self._shards, self._clock = key_id, tenant, shards, clock

    def publish(self) -> dict:
        """Signs and publishes the head of now; the published document."""
        now_ms = int(self._clock().timestamp() * 1000)
        previous = self._archive.latest()
        if previous is not None and previous["timestamp_ms"] >= now_ms:
            now_ms = previous["timestamp_ms"] + 1  # heads strictly in time order, whatever the clock did
        shard_heads = []
        for shard in range(self._shards):
            head = self._store.head(shard)
            root = merkle.CompactRange(head.size, head.compact).root()
            shard_heads.append(TreeHead(self._store.log_id(shard), head.size, now_ms, root))
        combined = TreeHead(combined_log_id(self._tenant), self._shards, now_ms, shards_root(shard_heads))
        document = head_document(
            sign_head(combined, self._sign), shard_heads, key_id=self._key_id, public_key=self._public_key()
        )
        self._archive.publish(document)
        return document


def kms_public_key(client, key_id: str) -> Callable[[], bytes]:
    """The key's DER public key, read from KMS once per container."""
    held: list[bytes] = []

    def public_key() -> bytes:
        if not held:
            held.append(client.get_public_key(KeyId=key_id)["PublicKey"])
        return held[0]

    return public_key


def kms_signer(client, key_id: str) -> Callable[[bytes], bytes]:
    """Sign(message) with KMS: ECDSA over SHA-256 of the message, DER signature; the private key stays in KMS."""

    def sign(message: bytes) -> bytes:
        answer = client.sign(
            KeyId=key_id, Message=message, MessageType="RAW", SigningAlgorithm="ECDSA_SHA_256"
        )
        return answer["Signature"]

    return sign
