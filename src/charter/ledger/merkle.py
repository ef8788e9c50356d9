"""Merkle tree hashing and proofs exactly as RFC 9162 (CT v2), section 2.1.

Everything here works on a plain list of leaf hashes, so an auditor can check
a proof with nothing but this module. Hashes are raw 32-byte ``bytes``;
:func:`hash_to_hex` / :func:`hash_from_hex` convert for display and JSON.

Proof *generation* follows the recursive definitions of the RFC (PATH, PROOF,
SUBPROOF) literally, so that it can serve as the reference the incremental tree
in :mod:`charter.ledger.tree` is tested against. Proof *verification* follows
the bit-shifting algorithms of sections 2.1.3.2 and 2.1.4.2 verbatim and
returns ``False`` on any malformed input instead of raising: an auditor asks
"is this proof good?", and "no" is the answer to garbage too.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from charter.domain.canonical import canonical_bytes
from charter.domain.errors import LedgerError

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "consistency_proof",
    "entry_leaf_hash",
    "hash_from_hex",
    "hash_to_hex",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "root_from_leaf_hashes",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
"""Length in bytes of every hash in the tree (SHA-256)."""

EMPTY_ROOT = hashlib.sha256(b"").digest()
"""MTH({}) — the root of the empty tree is the hash of the empty string."""

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"


def leaf_hash(entry: bytes) -> bytes:
    """Hash one leaf: ``SHA-256(0x00 || entry)``.

    The 0x00/0x01 domain separation stops a second-preimage attack in which an
    interior node is passed off as a leaf.

    Args:
        entry: the leaf's bytes (for Charter, the canonical JSON of an entry).

    Returns:
        The 32-byte leaf hash.
    """
    return hashlib.sha256(_LEAF_PREFIX + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Hash an interior node: ``SHA-256(0x01 || left || right)``.

    Args:
        left: hash of the left subtree.
        right: hash of the right subtree.

    Returns:
        The 32-byte node hash.
    """
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def entry_leaf_hash(entry: Any) -> bytes:
    """Return the leaf hash of a JSON-able ledger entry: ``leaf_hash(canonical_bytes(entry))``.

    Args:
        entry: the entry as a JSON-compatible value (usually a ``dict``).

    Returns:
        The 32-byte leaf hash.

    Raises:
        ValueError: if ``entry`` cannot be canonicalised (NaN, bytes, sets…).
    """
    return leaf_hash(canonical_bytes(entry))


def hash_to_hex(value: bytes) -> str:
    """Return the lowercase hex form of a hash.

    Args:
        value: raw hash bytes.

    Returns:
        Lowercase hexadecimal string.
    """
    return value.hex()


def hash_from_hex(text: str) -> bytes:
    """Parse a hex SHA-256 hash.

    Args:
        text: 64 hexadecimal characters (either case).

    Returns:
        The 32 raw bytes.

    Raises:
        LedgerError: if ``text`` is not hex or not 32 bytes long.
    """
    try:
        value = bytes.fromhex(text)
    except (ValueError, TypeError) as exc:
        raise LedgerError(f"not a hex hash: {text!r}", value=text) from exc
    if len(value) != HASH_SIZE:
        raise LedgerError(
            f"a hash is {HASH_SIZE} bytes ({2 * HASH_SIZE} hex digits), got {len(value)}",
            value=text,
        )
    return value


def _largest_power_of_two_below(n: int) -> int:
    """Return the largest power of two strictly less than ``n`` (``n >= 2``)."""
    return 1 << ((n - 1).bit_length() - 1)


def _mth(leaf_hashes: Sequence[bytes], lo: int, hi: int) -> bytes:
    """MTH(D[lo:hi]) computed bottom-up, level by level, in O(hi - lo).

    Pairing neighbours and carrying an odd last node up unchanged yields exactly
    the RFC tree, whose right-hand side is the only incomplete part: splitting
    at the largest power of two below n is the same as carrying the remainder.
    """
    if hi <= lo:
        return EMPTY_ROOT
    level = list(leaf_hashes[lo:hi])
    while len(level) > 1:
        paired = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def root_from_leaf_hashes(leaf_hashes: Sequence[bytes]) -> bytes:
    """Compute the Merkle Tree Hash (RFC 9162 2.1.1) of a list of leaf hashes.

    Args:
        leaf_hashes: the leaf hashes in log order (already ``leaf_hash``-ed).

    Returns:
        The 32-byte root; :data:`EMPTY_ROOT` for an empty list.
    """
    return _mth(leaf_hashes, 0, len(leaf_hashes))


def inclusion_proof(leaf_hashes: Sequence[bytes], index: int) -> list[bytes]:
    """Build the audit path PATH(index, D[n]) of RFC 9162 2.1.3.1.

    Args:
        leaf_hashes: all leaf hashes of the tree the proof is for (n = its length).
        index: 0-based position of the leaf to prove.

    Returns:
        The proof, deepest sibling first.

    Raises:
        LedgerError: if ``index`` is not in ``[0, n)``.
    """
    size = len(leaf_hashes)
    if not 0 <= index < size:
        raise LedgerError(
            f"leaf index {index} is outside a tree of size {size}", index=index, tree_size=size
        )
    return _path(leaf_hashes, index, 0, size)


def _path(leaf_hashes: Sequence[bytes], m: int, lo: int, hi: int) -> list[bytes]:
    """PATH(m, D[lo:hi]) — literal transcription of the RFC recursion."""
    n = hi - lo
    if n == 1:
        return []
    k = _largest_power_of_two_below(n)
    if m < k:
        return [*_path(leaf_hashes, m, lo, lo + k), _mth(leaf_hashes, lo + k, hi)]
    return [*_path(leaf_hashes, m - k, lo + k, hi), _mth(leaf_hashes, lo, lo + k)]


def consistency_proof(leaf_hashes: Sequence[bytes], old_size: int, new_size: int) -> list[bytes]:
    """Build the consistency proof PROOF(old_size, D[new_size]) of RFC 9162 2.1.4.1.

    The RFC defines proofs for ``0 < old_size < new_size``; for ``old_size == 0``
    and ``old_size == new_size`` the proof is empty (the verifier then only
    compares roots).

    Args:
        leaf_hashes: leaf hashes of a tree holding at least ``new_size`` leaves.
        old_size: size of the earlier tree.
        new_size: size of the later tree.

    Returns:
        The proof nodes, in the order the verifier consumes them.

    Raises:
        LedgerError: unless ``0 <= old_size <= new_size <= len(leaf_hashes)``.
    """
    if not 0 <= old_size <= new_size <= len(leaf_hashes):
        raise LedgerError(
            f"cannot prove consistency from size {old_size} to {new_size} "
            f"over {len(leaf_hashes)} leaves",
            old_size=old_size,
            new_size=new_size,
        )
    if old_size in (0, new_size):
        return []
    return _subproof(leaf_hashes, old_size, 0, new_size, complete=True)


def _subproof(
    leaf_hashes: Sequence[bytes], m: int, lo: int, hi: int, *, complete: bool
) -> list[bytes]:
    """SUBPROOF(m, D[lo:hi], b) — literal transcription of the RFC recursion.

    ``complete`` is the RFC's flag b: true while D[0:m] is still the whole left
    part, so its hash is already known to the verifier and is omitted.
    """
    n = hi - lo
    if m == n:
        return [] if complete else [_mth(leaf_hashes, lo, hi)]
    k = _largest_power_of_two_below(n)
    if m <= k:
        sub = _subproof(leaf_hashes, m, lo, lo + k, complete=complete)
        return [*sub, _mth(leaf_hashes, lo + k, hi)]
    sub = _subproof(leaf_hashes, m - k, lo + k, hi, complete=False)
    return [*sub, _mth(leaf_hashes, lo, lo + k)]


def _is_hash(value: object) -> bool:
    return isinstance(value, bytes) and len(value) == HASH_SIZE


def _is_size(value: object) -> bool:
    # bool is an int subclass; True as a tree size is a caller bug, not a size.
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_proof(proof: object) -> bool:
    return isinstance(proof, Sequence) and all(_is_hash(p) for p in proof)


def verify_inclusion(
    *, leaf_hash: bytes, index: int, tree_size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """Check an inclusion proof with the algorithm of RFC 9162 2.1.3.2.

    ``tree_size`` is authenticated by ``root``, not by the proof: paths in trees
    of nearby sizes can have the same shape, so take both from one signed
    checkpoint (or from a verified consistency proof), never separately.

    Args:
        leaf_hash: hash of the leaf claimed to be in the tree.
        index: its claimed 0-based position.
        tree_size: size of the tree the proof and root belong to.
        proof: the audit path, deepest sibling first.
        root: the trusted root of the tree of ``tree_size`` leaves.

    Returns:
        ``True`` only if the proof proves exactly that; ``False`` for a wrong
        index, root or leaf, a size the proof does not fit, a tampered,
        truncated or extended proof, or any malformed argument. Never raises.
    """
    if not (_is_hash(leaf_hash) and _is_hash(root) and _is_proof(proof)):
        return False
    if not (_is_size(index) and _is_size(tree_size)) or index >= tree_size:
        return False
    fn, sn = index, tree_size - 1
    r = leaf_hash
    for p in proof:
        if sn == 0:
            return False  # proof longer than the path to the root
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            # A right-edge node with no right sibling is carried up unchanged;
            # skip the levels where that happens.
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(
    *,
    old_size: int,
    new_size: int,
    old_root: bytes,
    new_root: bytes,
    proof: Sequence[bytes],
) -> bool:
    """Check a consistency proof with the algorithm of RFC 9162 2.1.4.2.

    Edge cases the RFC algorithm leaves to the caller: equal sizes are
    consistent iff the proof is empty and the roots are equal; an empty old
    tree is consistent with any tree iff the proof is empty and ``old_root``
    is :data:`EMPTY_ROOT` (stricter than "always consistent": a size-0
    checkpoint carrying any other root is malformed). As for inclusion,
    ``new_size`` is authenticated by ``new_root``; take them from one checkpoint.

    Args:
        old_size: size of the earlier tree.
        new_size: size of the later tree.
        old_root: trusted root of the earlier tree.
        new_root: trusted root of the later tree.
        proof: the consistency proof.

    Returns:
        ``True`` only if the later tree extends the earlier one; ``False``
        otherwise, including for any malformed argument. Never raises.
    """
    if not (_is_hash(old_root) and _is_hash(new_root) and _is_proof(proof)):
        return False
    if not (_is_size(old_size) and _is_size(new_size)) or old_size > new_size:
        return False
    if old_size == new_size:
        return len(proof) == 0 and old_root == new_root
    if old_size == 0:
        return len(proof) == 0 and old_root == EMPTY_ROOT
    # Step 1: a non-trivial proof is never empty.
    if len(proof) == 0:
        return False
    path = list(proof)
    # Step 2: when the old tree is a complete subtree, its root is the first
    # node of the path and the prover omitted it (SUBPROOF with b = true).
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    # Steps 3-4.
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    # Step 5.
    fr = sr = path[0]
    # Step 6.
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    # Step 7.
    return fr == old_root and sr == new_root and sn == 0
