"""Signed tree heads of the audit log as data: the exact bytes a signer signs, and their verification with
a pluggable `verify(message, signature) -> bool` (KMS, or the `cryptography` package, is plugged in later).

The signed bytes of a head (all integers big-endian, unsigned):

  "coupons-audit-tree-head/v1" 0x00   27 bytes, the format and its version (nothing else starts so)
  len(log_id)                          2 bytes, 1..256, then log_id in UTF-8
  tree_size                            8 bytes
  timestamp_ms                         8 bytes, milliseconds since 1970-01-01T00:00:00Z
  root_hash                            32 bytes, RFC 6962 MTH of the log's first tree_size entries

Every field has a fixed width or a length before it, so no two different heads share bytes; the log id is
inside, so one log's head cannot stand for another's. A combined head over shard logs (docs/audit.md) is
an ordinary head whose root is `shards_root` over its shards' unsigned head bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from coupons.domain import merkle

HEAD_PREFIX = b"coupons-audit-tree-head/v1\x00"
MAX_LOG_ID_BYTES = 256
_U64 = 1 << 64

Verify = Callable[[bytes, bytes], bool]  # (message, signature) -> whether the signer signed that message


class InvalidHead(ValueError):
    """Fields that no head can have (a size beyond 64 bits, a root that is not 32 bytes…)."""


@dataclass(frozen=True)
class TreeHead:
    log_id: str
    size: int
    timestamp_ms: int
    root: bytes


@dataclass(frozen=True)
class SignedHead:
    head: TreeHead
    signature: bytes


def head_bytes(head: TreeHead) -> bytes:
    log_id = head.log_id.encode("utf-8")
    if not 1 <= len(log_id) <= MAX_LOG_ID_BYTES:
        raise InvalidHead(f"log id must be 1..{MAX_LOG_ID_BYTES} bytes of UTF-8")
    for name in ("size", "timestamp_ms"):
        value = getattr(head, name)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < _U64:
            raise InvalidHead(f"{name} must be an unsigned 64-bit integer, not {value!r}")
    if not isinstance(head.root, bytes) or len(head.root) != merkle.HASH_SIZE:
        raise InvalidHead("root must be 32 bytes")
    return b"".join(
        (
            HEAD_PREFIX,
            len(log_id).to_bytes(2, "big"),
            log_id,
            head.size.to_bytes(8, "big"),
            head.timestamp_ms.to_bytes(8, "big"),
            head.root,
        )
    )


def parse_head_bytes(data: bytes) -> TreeHead:
    """The head in its signed bytes (the inverse of head_bytes); InvalidHead for anything else."""
    if not data.startswith(HEAD_PREFIX):
        raise InvalidHead("not a v1 tree head")
    pos = len(HEAD_PREFIX)
    n = int.from_bytes(data[pos : pos + 2], "big")
    pos += 2
    if len(data) != pos + n + 8 + 8 + merkle.HASH_SIZE:
        raise InvalidHead("a tree head's length does not match its log id's")
    try:
        log_id = data[pos : pos + n].decode("utf-8")
    except UnicodeDecodeError as err:
        raise InvalidHead("log id is not UTF-8") from err
    pos += n
    size = int.from_bytes(data[pos : pos + 8], "big")
    timestamp_ms = int.from_bytes(data[pos + 8 : pos + 16], "big")
    head = TreeHead(log_id, size, timestamp_ms, data[pos + 16 :])
    head_bytes(head)  # the same checks as on the way in (log id length)
    return head


def sign_head(head: TreeHead, sign: Callable[[bytes], bytes]) -> SignedHead:
    return SignedHead(head, sign(head_bytes(head)))


def verify_head(signed: SignedHead, verify: Verify) -> bool:
    """Whether the signature is the signer's over exactly this head; a head no encoding can carry, or a
    verify callback that raises, is not verified."""
    try:
        message = head_bytes(signed.head)
        return bool(verify(message, signed.signature))
    except Exception:  # noqa: BLE001 - a key library's error on a malformed signature means "not signed"
        return False


def shards_root(shard_heads: Sequence[TreeHead]) -> bytes:
    """The root of a combined head: the RFC 6962 tree over the shards' head bytes, in shard order."""
    return merkle.root_of([merkle.leaf_hash(head_bytes(h)) for h in shard_heads])


def shard_proof(shard_heads: Sequence[TreeHead], shard: int) -> list[bytes]:
    """The inclusion proof of one shard's head in the combined head (with shards_root)."""
    levels = merkle.SubtreeLevels([merkle.leaf_hash(head_bytes(h)) for h in shard_heads])
    return levels.inclusion_proof(shard)


def verify_shard_head(
    shard_head: TreeHead, shard: int, shard_count: int, proof: Sequence[bytes], combined_root: bytes
) -> bool:
    return merkle.verify_inclusion(
        shard, shard_count, merkle.leaf_hash(head_bytes(shard_head)), proof, combined_root
    )


# --- the published document: one combined signed head and the shard heads it covers -------------------

ALGORITHM = "ECDSA_SHA_256"  # KMS SigningAlgorithm over a P-256 key (ECDSA over SHA-256 of the message)


def _b64(data: bytes) -> str:
    import base64

    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    import base64

    return base64.b64decode(text, validate=True)


def head_document(
    signed: SignedHead, shard_heads: Sequence[TreeHead], *, key_id: str, public_key: bytes
) -> dict:
    """What the signer publishes: the combined head's fields, its exact signed bytes and signature, the
    signing key, and every shard head (their bytes are the combined tree's leaves, in shard order)."""
    head = signed.head
    return {
        "version": 1,
        "log_id": head.log_id,
        "size": head.size,
        "timestamp_ms": head.timestamp_ms,
        "root": _b64(head.root),
        "signed_bytes": _b64(head_bytes(head)),
        "signature": _b64(signed.signature),
        "algorithm": ALGORITHM,
        "key_id": key_id,
        # The key's DER SubjectPublicKeyInfo, as KMS GetPublicKey gives it. A checker pins it (or its
        # SHA-256) once, out of band: a key that comes with the heads proves nothing about who signed.
        "public_key": _b64(public_key),
        "shards": [
            {"log_id": h.log_id, "size": h.size, "timestamp_ms": h.timestamp_ms, "root": _b64(h.root)}
            for h in shard_heads
        ],
    }


def parse_head_document(document: dict) -> tuple[SignedHead, list[TreeHead]]:
    """(the combined signed head, its shard heads) of a published document; InvalidHead if malformed.
    The combined head is rebuilt from its signed bytes, so fields that disagree with them are refused."""
    try:
        head = parse_head_bytes(_unb64(document["signed_bytes"]))
        if (head.log_id, head.size, head.timestamp_ms, head.root) != (
            document["log_id"], document["size"], document["timestamp_ms"], _unb64(document["root"])
        ):
            raise InvalidHead("a head document whose fields are not its signed bytes")
        shards = [TreeHead(s["log_id"], s["size"], s["timestamp_ms"], _unb64(s["root"])) for s in document["shards"]]
        for shard in shards:
            head_bytes(shard)
        return SignedHead(head, _unb64(document["signature"])), shards
    except (KeyError, TypeError, ValueError) as err:
        if isinstance(err, InvalidHead):
            raise
        raise InvalidHead(f"not a head document: {err}") from err
