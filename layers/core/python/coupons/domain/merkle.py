"""The audit log's Merkle tree: RFC 6962 / RFC 9162 §2.1 hashing, inclusion and consistency proofs and their
verification, an O(log n) compact range for the writer, and proofs served from stored subtree hashes.

Pure functions over bytes (hashlib only), so any RFC 6962 implementation (Go's transparency-dev, the CT
reference code) computes the same roots and checks the same proofs.

  leaf hash   SHA-256(0x00 ‖ entry)            node hash   SHA-256(0x01 ‖ left ‖ right)
  MTH({})   = SHA-256("")                      MTH(D[n]) = node(MTH(D[0:k]), MTH(D[k:n])), k the largest
                                                           power of two < n

What a store keeps (`SubtreeLevels`, and its `get(level, index)` callback): the hash of every *aligned
perfect subtree* — level 0 the leaf hashes, level L the hash of leaves [i·2^L, (i+1)·2^L) — about 2n
hashes in all, each written once when its last leaf arrives and never changed (append-only, so a store can
write it under attribute_not_exists). Every node of every RFC tree of any size is either one such subtree
or a right-edge node that folds at most log₂ n of them, so any proof needs O(log n) lookups and no leaf
beyond the ones named. A store short of space may keep only levels 0 and every 8th level and recompute
the rest (`range_hash` takes any callback), at 2⁸ hashes of work a lookup.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from hmac import compare_digest

HASH_SIZE = 32
LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
EMPTY_ROOT = hashlib.sha256(b"").digest()

_sha256 = hashlib.sha256

# A lookup of a stored perfect subtree hash: get(level, index) = MTH(D[index·2^level : (index+1)·2^level]).
SubtreeGetter = Callable[[int, int], bytes]


def leaf_hash(entry: bytes) -> bytes:
    return _sha256(LEAF_PREFIX + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return _sha256(NODE_PREFIX + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly below n (n ≥ 2): RFC 6962's k."""
    return 1 << ((n - 1).bit_length() - 1)


def root_of(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH over leaf hashes, level by level: an odd node at a level's end is carried up unchanged, which
    builds exactly the RFC's tree (its left subtrees are the perfect ones)."""
    level = list(leaf_hashes)
    if not level:
        return EMPTY_ROOT
    while len(level) > 1:
        nxt = [_sha256(NODE_PREFIX + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)]
        if len(level) & 1:
            nxt.append(level[-1])
        level = nxt
    return level[0]


# --- proofs as lists of leaf ranges, then hashed by whatever holds the tree ------------------------------


def _inclusion_ranges(m: int, start: int, end: int) -> list[tuple[int, int]]:
    """RFC 9162 §2.1.3.1 PATH(m, D[start:end]) as the ranges whose MTH are the proof's nodes, leaf first."""
    path: list[tuple[int, int]] = []
    while end - start > 1:
        k = _split(end - start)
        if m < k:
            path.append((start + k, end))
            end = start + k
        else:
            path.append((start, start + k))
            m -= k
            start += k
    path.reverse()  # built root-down; the proof lists the leaf's sibling first
    return path


def _consistency_ranges(m: int, start: int, end: int) -> list[tuple[int, int]]:
    """RFC 9162 §2.1.4.1 SUBPROOF(m, D[start:end], true), for 0 < m < end - start."""
    path: list[tuple[int, int]] = []
    complete = True  # b in the RFC: whether the subtree is (still) a subtree of the old tree's root
    while True:
        n = end - start
        if m == n:
            if not complete:
                path.append((start, end))
            break
        k = _split(n)
        if m <= k:
            path.append((start + k, end))
            end = start + k
        else:
            path.append((start, start + k))
            m -= k
            start += k
            complete = False
    path.reverse()
    return path


def range_hash(get: SubtreeGetter, start: int, end: int) -> bytes:
    """MTH(D[start:end]) for a node of an RFC tree (start aligned to the range's largest power of two) from
    stored perfect subtrees: [start, end) splits into perfect pieces of decreasing size (the set bits of
    end - start) and the RFC tree over them is node(P1, node(P2, … node(Pk-1, Pk)))."""
    pieces = []
    pos, rest = start, end - start
    while rest:
        level = rest.bit_length() - 1
        pieces.append(get(level, pos >> level))
        pos += 1 << level
        rest -= 1 << level
    h = pieces[-1]
    for piece in reversed(pieces[:-1]):
        h = _sha256(NODE_PREFIX + piece + h).digest()
    return h


def inclusion_proof(get: SubtreeGetter, index: int, size: int) -> list[bytes]:
    """The audit path of leaf `index` in the tree of the first `size` leaves."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of {size}")
    return [range_hash(get, a, b) for a, b in _inclusion_ranges(index, 0, size)]


def consistency_proof(get: SubtreeGetter, old_size: int, new_size: int) -> list[bytes]:
    """The proof that the tree of `new_size` leaves extends the tree of `old_size` (empty when old_size is 0
    or equal to new_size: those need none)."""
    if not 0 <= old_size <= new_size:
        raise ValueError(f"no consistency proof from {old_size} to {new_size}")
    if old_size in (0, new_size):
        return []
    return [range_hash(get, a, b) for a, b in _consistency_ranges(old_size, 0, new_size)]


# --- verification: RFC 9162 §2.1.3.2 and §2.1.4.2, any sizes --------------------------------------------


def root_from_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes | None:
    """The root an audit path leads to, or None when the path cannot be one for (index, size)."""
    if not 0 <= index < size or len(leaf) != HASH_SIZE:
        return None
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0 or len(p) != HASH_SIZE:
            return None
        if fn & 1 or fn == sn:
            r = _sha256(NODE_PREFIX + p + r).digest()
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = _sha256(NODE_PREFIX + r + p).digest()
        fn >>= 1
        sn >>= 1
    return r if sn == 0 else None


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes) -> bool:
    got = root_from_inclusion(index, size, leaf, proof)
    return got is not None and compare_digest(got, root)


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """Whether `proof` shows the tree (new_size, new_root) extends (old_size, old_root). Sizes 0 and equal
    sizes need an empty proof (equal sizes: equal roots; from 0: the old root must be the empty root)."""
    if not 0 <= old_size <= new_size:
        return False
    if old_size == new_size:
        return not proof and compare_digest(old_root, new_root)
    if old_size == 0:
        return not proof and compare_digest(old_root, EMPTY_ROOT)
    if not proof or any(len(p) != HASH_SIZE for p in proof):
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # an exact power of two: the old root is itself a node of the new tree
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = _sha256(NODE_PREFIX + c + fr).digest()
            sr = _sha256(NODE_PREFIX + c + sr).digest()
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = _sha256(NODE_PREFIX + sr + c).digest()
        fn >>= 1
        sn >>= 1
    return sn == 0 and compare_digest(fr, old_root) and compare_digest(sr, new_root)


# --- the writer's compact range and the store's levels ---------------------------------------------------


class CompactRange:
    """The O(log n) state a writer needs to append and to know the root: the hashes of the perfect subtrees
    that [0, size) splits into (one per set bit of size, largest first). Appending merges equal-sized
    neighbours like a binary counter's carry; each merge is one new stored subtree (see `appended`)."""

    __slots__ = ("size", "hashes")

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()):
        if len(hashes) != size.bit_count():
            raise ValueError(f"a compact range of {size} leaves holds {size.bit_count()} hashes, not {len(hashes)}")
        self.size = size
        self.hashes = list(hashes)

    def append(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        """Adds a leaf hash; returns the perfect subtrees completed by it as (level, index, hash), the leaf
        itself first: exactly what a store of `SubtreeLevels` writes for this leaf."""
        index = self.size
        done = [(0, index, leaf)]
        h, level = leaf, 0
        while (self.size >> level) & 1:  # a carry: the last perfect subtree has this one's size
            h = _sha256(NODE_PREFIX + self.hashes.pop() + h).digest()
            level += 1
            done.append((level, index >> level, h))
        self.hashes.append(h)
        self.size += 1
        return done

    def root(self) -> bytes:
        if not self.hashes:
            return EMPTY_ROOT
        h = self.hashes[-1]
        for piece in reversed(self.hashes[:-1]):
            h = _sha256(NODE_PREFIX + piece + h).digest()
        return h


class SubtreeLevels:
    """Every aligned perfect subtree's hash, in memory: the layout a store keeps (module docstring), with
    `get` as the lookup the proof functions take."""

    def __init__(self, leaf_hashes: Sequence[bytes] = ()):
        self.levels: list[list[bytes]] = [[]]
        self._range = CompactRange()
        for leaf in leaf_hashes:
            self.append(leaf)

    @property
    def size(self) -> int:
        return self._range.size

    def append(self, leaf: bytes) -> None:
        for level, index, h in self._range.append(leaf):
            if level == len(self.levels):
                self.levels.append([])
            assert len(self.levels[level]) == index
            self.levels[level].append(h)

    def get(self, level: int, index: int) -> bytes:
        return self.levels[level][index]

    def root(self, size: int | None = None) -> bytes:
        size = self.size if size is None else size
        if not 0 <= size <= self.size:
            raise ValueError(f"no tree of {size} leaves in a log of {self.size}")
        return EMPTY_ROOT if size == 0 else range_hash(self.get, 0, size)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        return inclusion_proof(self.get, index, self.size if size is None else size)

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        new_size = self.size if new_size is None else new_size
        if new_size > self.size:
            raise ValueError(f"no tree of {new_size} leaves in a log of {self.size}")
        return consistency_proof(self.get, old_size, new_size)
