"""Merkle trees over a day's record hashes: roots and inclusion proofs (RFC 6962 / RFC 9162).

Pure functions. Leaves are the records' chain hashes (hex) in sequence order; the tree hashes
``0x00 || leaf`` for leaves and ``0x01 || left || right`` for nodes (second-preimage safe),
and splits at the largest power of two below ``n`` exactly as Certificate Transparency does,
so a proof from here verifies with any RFC 9162 implementation.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

EMPTY_ROOT = hashlib.sha256(b"").hexdigest()


def leaf_hash(record_hash_hex: str) -> bytes:
    return hashlib.sha256(b"\x00" + bytes.fromhex(record_hash_hex)).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def _root(leaves: Sequence[bytes]) -> bytes:
    # Iterative bottom-up build; equal to the recursive RFC 6962 definition because pairing
    # left to right and promoting an odd last node reproduces the power-of-two split.
    level = list(leaves)
    while len(level) > 1:
        nxt = [_node(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def merkle_root(record_hashes: Sequence[str]) -> str:
    """The Merkle tree hash (hex) of the records, in order. Empty day: SHA-256 of nothing."""
    if not record_hashes:
        return EMPTY_ROOT
    return _root([leaf_hash(h) for h in record_hashes]).hex()


def inclusion_proof(record_hashes: Sequence[str], index: int) -> list[str]:
    """The audit path (hex node hashes, leaf to root) proving leaf ``index`` is in the tree."""
    if not 0 <= index < len(record_hashes):
        raise IndexError(f"leaf {index} outside a tree of {len(record_hashes)}")
    leaves = [leaf_hash(h) for h in record_hashes]

    def path(m: int, nodes: list[bytes]) -> list[bytes]:
        if len(nodes) == 1:
            return []
        k = _split(len(nodes))
        if m < k:
            return path(m, nodes[:k]) + [_root(nodes[k:])]
        return path(m - k, nodes[k:]) + [_root(nodes[:k])]

    return [node.hex() for node in path(index, leaves)]


def inclusion_verify(*, record_hash: str, index: int, size: int, proof: Sequence[str], root: str) -> bool:
    """Check an inclusion proof (RFC 9162 section 2.1.3.2) without the tree."""
    if not 0 <= index < size:
        return False
    fn, sn = index, size - 1
    r = leaf_hash(record_hash)
    for p_hex in proof:
        p = bytes.fromhex(p_hex)
        if sn == 0:
            return False
        if fn % 2 == 1 or fn == sn:
            r = _node(p, r)
            if fn % 2 == 0:
                while fn % 2 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = _node(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r.hex() == root
