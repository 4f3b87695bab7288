"""The audit log's Merkle tree against RFC 6962's reference vectors (the certificate-transparency test data)
and against a naive implementation written here from the RFC's text, plus tamper properties."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coupons.domain import merkle

# The certificate-transparency reference inputs and the roots of their trees of sizes 0..8.
CT_LEAVES = [bytes.fromhex(h) for h in ("", "00", "10", "2021", "3031", "40414243", "5051525354555657",
                                         "606162636465666768696a6b6c6d6e6f")]
CT_ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
# (leaf index, tree size, audit path)
CT_INCLUSION = [
    (0, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (5, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (1, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]
# (old size, new size, consistency proof)
CT_CONSISTENCY = [
    (1, 1, []),
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]


# --- a naive implementation, straight from RFC 9162 §2.1.1, §2.1.3.1, §2.1.4.1 --------------------------


def _k(n):
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def naive_mth(d):
    if not d:
        return hashlib.sha256(b"").digest()
    if len(d) == 1:
        return hashlib.sha256(b"\x00" + d[0]).digest()
    k = _k(len(d))
    return hashlib.sha256(b"\x01" + naive_mth(d[:k]) + naive_mth(d[k:])).digest()


def naive_path(m, d):
    if len(d) == 1:
        return []
    k = _k(len(d))
    if m < k:
        return naive_path(m, d[:k]) + [naive_mth(d[k:])]
    return naive_path(m - k, d[k:]) + [naive_mth(d[:k])]


def naive_subproof(m, d, b):
    if m == len(d):
        return [] if b else [naive_mth(d)]
    k = _k(len(d))
    if m <= k:
        return naive_subproof(m, d[:k], b) + [naive_mth(d[k:])]
    return naive_subproof(m - k, d[k:], False) + [naive_mth(d[:k])]


def _levels(entries):
    return merkle.SubtreeLevels([merkle.leaf_hash(e) for e in entries])


def _flip(b: bytes, bit: int) -> bytes:
    bit %= len(b) * 8
    return b[: bit // 8] + bytes([b[bit // 8] ^ (1 << (bit % 8))]) + b[bit // 8 + 1 :]


# --- the reference vectors -------------------------------------------------------------------------------


def test_the_empty_tree_root_is_sha256_of_nothing():
    assert merkle.EMPTY_ROOT.hex() == CT_ROOTS[0]
    assert merkle.root_of([]).hex() == CT_ROOTS[0]
    assert merkle.CompactRange().root().hex() == CT_ROOTS[0]


@pytest.mark.parametrize("size", range(9))
def test_roots_of_the_reference_leaves_are_rfc_6962s_by_every_method(size):
    hashes = [merkle.leaf_hash(e) for e in CT_LEAVES[:size]]
    compact = merkle.CompactRange()
    for h in hashes:
        compact.append(h)
    assert merkle.root_of(hashes).hex() == CT_ROOTS[size]
    assert compact.root().hex() == CT_ROOTS[size]
    assert _levels(CT_LEAVES).root(size).hex() == CT_ROOTS[size]
    assert naive_mth(CT_LEAVES[:size]).hex() == CT_ROOTS[size]


@pytest.mark.parametrize(("index", "size", "path"), CT_INCLUSION)
def test_inclusion_proofs_of_the_reference_tree_are_the_published_ones_and_verify(index, size, path):
    levels = _levels(CT_LEAVES)
    assert [p.hex() for p in levels.inclusion_proof(index, size)] == path
    leaf = merkle.leaf_hash(CT_LEAVES[index])
    assert merkle.verify_inclusion(index, size, leaf, [bytes.fromhex(p) for p in path], bytes.fromhex(CT_ROOTS[size]))


@pytest.mark.parametrize(("old", "new", "path"), CT_CONSISTENCY)
def test_consistency_proofs_of_the_reference_tree_are_the_published_ones_and_verify(old, new, path):
    levels = _levels(CT_LEAVES)
    assert [p.hex() for p in levels.consistency_proof(old, new)] == path
    roots = [bytes.fromhex(r) for r in CT_ROOTS]
    assert merkle.verify_consistency(old, new, roots[old], roots[new], [bytes.fromhex(p) for p in path])


def test_edge_sizes_of_consistency_follow_the_rfc_verifiers():
    root1, root2 = merkle.leaf_hash(b"a"), merkle.leaf_hash(b"b")
    assert merkle.verify_consistency(0, 0, merkle.EMPTY_ROOT, merkle.EMPTY_ROOT, [])
    assert merkle.verify_consistency(0, 5, merkle.EMPTY_ROOT, root2, [])  # every tree extends the empty one
    assert merkle.verify_consistency(1, 1, root1, root1, [])
    assert not merkle.verify_consistency(1, 1, root1, root2, [])  # same size, another root: a fork
    assert not merkle.verify_consistency(2, 1, root1, root2, [root1])  # going back in size
    assert not merkle.verify_consistency(1, 2, root1, root2, [])  # a proof is needed
    assert not merkle.verify_consistency(0, 1, root1, root2, [])  # a size 0 root must be the empty root
    assert not merkle.verify_consistency(1, 1, root1, root1, [root1])  # nothing may follow an empty proof
    assert not merkle.verify_inclusion(0, 0, root1, [], root1)
    assert not merkle.verify_inclusion(1, 1, root1, [], root1)


# --- properties: every proof verifies, every single-bit change fails -------------------------------------

entries_st = st.lists(st.binary(max_size=12), min_size=1, max_size=70)


@settings(max_examples=60, deadline=None)
@given(entries_st)
def test_every_method_gives_the_naive_root_proofs_and_compact_state(entries):
    levels = _levels(entries)
    for size in range(len(entries) + 1):
        assert levels.root(size) == naive_mth(entries[:size])
    n = len(entries)
    for i in range(n):
        assert levels.inclusion_proof(i) == naive_path(i, entries)
    for m in range(1, n):
        assert levels.consistency_proof(m) == naive_subproof(m, entries, True)
    # A writer's compact range restored from its saved hashes carries on exactly.
    compact = merkle.CompactRange()
    for e in entries[: n // 2]:
        compact.append(merkle.leaf_hash(e))
    restored = merkle.CompactRange(compact.size, list(compact.hashes))
    for e in entries[n // 2 :]:
        restored.append(merkle.leaf_hash(e))
    assert restored.root() == levels.root() and len(restored.hashes) == n.bit_count()


@settings(max_examples=40, deadline=None)
@given(entries_st, st.data())
def test_every_inclusion_proof_verifies_and_any_one_bit_change_fails_it(entries, data):
    levels = _levels(entries)
    n = len(entries)
    size = data.draw(st.integers(1, n), label="size")
    root = levels.root(size)
    for i in range(size):
        leaf, proof = merkle.leaf_hash(entries[i]), levels.inclusion_proof(i, size)
        assert merkle.verify_inclusion(i, size, leaf, proof, root)
    i = data.draw(st.integers(0, size - 1), label="index")
    leaf, proof = merkle.leaf_hash(entries[i]), levels.inclusion_proof(i, size)
    bit = data.draw(st.integers(0, 8 * 32 * (len(proof) + 2) - 1), label="bit")
    changed = _flip(entries[i], bit) if entries[i] else b"\x00"
    assert not merkle.verify_inclusion(i, size, merkle.leaf_hash(changed), proof, root)
    assert not merkle.verify_inclusion(i, size, _flip(leaf, bit), proof, root)
    assert not merkle.verify_inclusion(i, size, leaf, proof, _flip(root, bit))
    if proof:
        k = bit % len(proof)
        assert not merkle.verify_inclusion(i, size, leaf, proof[:k] + [_flip(proof[k], bit)] + proof[k + 1 :], root)
        assert not merkle.verify_inclusion(i, size, leaf, proof[:-1], root)
    assert not merkle.verify_inclusion(i, size, leaf, proof + [root], root)
    # A size of another height cannot take the path (a size of the same shape can: hashes do not carry
    # sizes, which is why a verifier takes every size from a signed head, and the head's signature covers it).
    for other_size in (size * 2, size // 2):
        if other_size > i and other_size != size:
            assert not merkle.verify_inclusion(i, other_size, leaf, proof, root)
    if i ^ 1 < size and entries[i ^ 1] != entries[i]:
        assert not merkle.verify_inclusion(i ^ 1, size, leaf, proof, root)


@settings(max_examples=40, deadline=None)
@given(entries_st, st.data())
def test_every_consistency_proof_verifies_and_any_one_bit_change_fails_it(entries, data):
    levels = _levels(entries)
    n = len(entries)
    for m in range(0, n + 1):
        for size in range(m, n + 1):
            assert merkle.verify_consistency(m, size, levels.root(m), levels.root(size), levels.consistency_proof(m, size))
    m = data.draw(st.integers(1, n), label="old")
    size = data.draw(st.integers(m, n), label="new")
    old_root, new_root, proof = levels.root(m), levels.root(size), levels.consistency_proof(m, size)
    bit = data.draw(st.integers(0, 8 * 32 - 1), label="bit")
    if m < size:
        assert not merkle.verify_consistency(m, size, _flip(old_root, bit), new_root, proof)
        assert not merkle.verify_consistency(m, size, old_root, _flip(new_root, bit), proof)
        k = bit % len(proof)
        assert not merkle.verify_consistency(m, size, old_root, new_root, proof[:k] + [_flip(proof[k], bit)] + proof[k + 1 :])
        assert not merkle.verify_consistency(m, size, old_root, new_root, proof[:-1])
        assert not merkle.verify_consistency(m, size, old_root, new_root, proof + [new_root])
        assert not merkle.verify_consistency(m, size, old_root, new_root, [])
        for other_size in (size * 2, size // 2):  # of another height (see the inclusion property)
            if other_size > m:
                assert not merkle.verify_consistency(m, other_size, old_root, new_root, proof)
    else:
        assert not merkle.verify_consistency(m, size, old_root, _flip(new_root, bit), proof)


def test_a_proof_needs_log_n_hashes_and_log_n_lookups():
    size = 100_000
    calls = []
    leaves = [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(size)]
    levels = merkle.SubtreeLevels(leaves)

    def get(level, index):
        calls.append((level, index))
        return levels.get(level, index)

    proof = merkle.inclusion_proof(get, 12_345, size)
    assert len(proof) <= size.bit_length()
    assert len(calls) <= 2 * size.bit_length()
    assert merkle.verify_inclusion(12_345, size, leaves[12_345], proof, merkle.root_of(leaves))
