"""An independent checker of the audit proofs the API answers (RFC 6962 hashing written from the RFC's
text, ECDSA P-256 by the `cryptography` package): the tests use it instead of the project's verifier."""

from __future__ import annotations

import base64
import hashlib

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key


def _sha(*parts: bytes) -> bytes:
    return hashlib.sha256(b"".join(parts)).digest()


def rfc6962_root_from_path(index: int, size: int, leaf: bytes, path: list[bytes]) -> bytes:
    """RFC 9162 §2.1.3.2, written from the RFC's text."""
    fn, sn, r = index, size - 1, leaf
    for p in path:
        assert sn != 0
        if fn % 2 == 1 or fn == sn:
            r = _sha(b"\x01", p, r)
            while fn % 2 == 0 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = _sha(b"\x01", r, p)
        fn >>= 1
        sn >>= 1
    assert sn == 0
    return r


def head_message(log_id: str, size: int, timestamp_ms: int, root: bytes) -> bytes:
    """The signed bytes of a head, as docs/audit.md's table gives them."""
    name = log_id.encode()
    return (
        b"coupons-audit-tree-head/v1\x00" + len(name).to_bytes(2, "big") + name + size.to_bytes(8, "big")
        + timestamp_ms.to_bytes(8, "big") + root
    )  # fmt: skip


def check_independently(answer: dict, pinned_public_key: bytes) -> None:
    b = base64.b64decode
    proof = answer["proof"]
    leaf = _sha(b"\x00", b(answer["entry_bytes"]))
    inclusion = proof["inclusion"]
    shard_root = rfc6962_root_from_path(
        inclusion["leaf_index"], inclusion["tree_size"], leaf, [b(h) for h in inclusion["path"]]
    )
    shard = proof["shard_head"]
    assert shard_root == b(shard["root"]) and shard["size"] == inclusion["tree_size"]
    shard_leaf = _sha(
        b"\x00", head_message(shard["log_id"], shard["size"], shard["timestamp_ms"], shard_root)
    )
    sp = proof["shard_head_proof"]
    combined_root = rfc6962_root_from_path(
        sp["leaf_index"], sp["tree_size"], shard_leaf, [b(h) for h in sp["path"]]
    )
    signed = proof["signed_head"]
    message = head_message(signed["log_id"], signed["size"], signed["timestamp_ms"], combined_root)
    assert message == b(signed["signed_bytes"])
    assert b(proof["public_key"]["der"]) == pinned_public_key
    load_der_public_key(pinned_public_key).verify(b(signed["signature"]), message, ec.ECDSA(hashes.SHA256()))
