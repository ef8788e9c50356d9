"""An append-only Merkle tree kept as stored hashes of complete subtrees.

The RFC 9162 tree over n leaves is made of *complete, aligned* subtrees: node
``(level, index)`` covers leaves ``[index * 2**level, (index + 1) * 2**level)``.
Once such a node is complete its hash never changes, so it can be written once
and read forever. Every root, inclusion proof and consistency proof — for the
current size or any earlier one — is a fold over O(log n) of those nodes:

- any range the RFC recursion visits starts at a multiple of the power of two
  at or above its length, so it splits into aligned complete subtrees following
  the binary digits of its length (largest first);
- its MTH is the right fold of those subtree hashes with ``node_hash``.

Appending leaf number ``size`` writes the leaf node and every parent it
completes: one node plus one per trailing 1-bit of ``size`` (amortised two).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence

from charter.domain.errors import LedgerError

from .merkle import EMPTY_ROOT, HASH_SIZE, node_hash

__all__ = [
    "IncrementalTree",
    "MemoryNodeStore",
    "Node",
    "NodeKey",
    "NodeStore",
    "append_nodes",
]

NodeKey = tuple[int, int]
"""``(level, index)`` of a complete aligned subtree."""

Node = tuple[int, int, bytes]
"""``(level, index, hash)`` as written to a :class:`NodeStore`."""

# A range of leaves [lo, hi) whose MTH is one element of a proof.
_Range = tuple[int, int]


class NodeStore(ABC):
    """Storage for hashes of complete, aligned subtrees of the ledger tree.

    Node ``(level, index)`` covers leaves ``[index * 2**level, (index + 1) * 2**level)``;
    level 0 holds the leaf hashes themselves. Nodes are immutable once written,
    so implementations may cache freely and never need updates or deletes.
    The SQL store implements this with one table keyed by ``(level, index)``
    and overrides :meth:`get_many` to fetch a batch in one query.

    Example::

        store = MemoryNodeStore()
        tree = IncrementalTree(store)
        for size, entry in enumerate([b"a", b"b", b"c"]):
            tree.append(leaf_hash(entry), size=size)
        store.get(1, 0)  # node_hash(leaf_hash(b"a"), leaf_hash(b"b"))
        tree.root(3)  # == root_from_leaf_hashes([...three leaf hashes...])
    """

    @abstractmethod
    def get(self, level: int, index: int) -> bytes:
        """Return the hash of node ``(level, index)``.

        Args:
            level: height of the subtree (0 = leaf).
            index: position of the subtree among those of its level.

        Returns:
            The 32-byte hash.

        Raises:
            KeyError: if the node was never stored.
        """

    def get_many(self, keys: Sequence[NodeKey]) -> dict[NodeKey, bytes]:
        """Return the hashes of several nodes at once.

        The default loops over :meth:`get`; stores with a round-trip cost
        should override it with one batched read.

        Args:
            keys: ``(level, index)`` pairs; duplicates are allowed.

        Returns:
            A mapping from every requested key to its hash.

        Raises:
            KeyError: if any node was never stored.
        """
        return {key: self.get(*key) for key in keys}

    @abstractmethod
    def put_many(self, nodes: Sequence[Node]) -> None:
        """Store nodes (usually the output of :func:`append_nodes`).

        Nodes are immutable: rewriting a node with the same hash must be
        harmless, and rewriting it with a different one must fail (a primary
        key in SQL), since it would silently rewrite history.

        Args:
            nodes: ``(level, index, hash)`` triples to write.

        Raises:
            LedgerError: (or the store's own error) if a node exists with another hash.
        """


class MemoryNodeStore(NodeStore):
    """A :class:`NodeStore` held in a ``dict``, for tests and offline auditors."""

    def __init__(self, nodes: Iterable[Node] = ()) -> None:
        self._nodes: dict[NodeKey, bytes] = {}
        self.put_many(list(nodes))

    def get(self, level: int, index: int) -> bytes:
        return self._nodes[(level, index)]

    def put_many(self, nodes: Sequence[Node]) -> None:
        # Check everything before writing anything, like a transaction would.
        for level, index, value in nodes:
            existing = self._nodes.get((level, index), value)
            if existing != value:
                raise LedgerError(
                    f"ledger node ({level}, {index}) exists with another hash; "
                    "stored nodes never change",
                    level=level,
                    index=index,
                )
        for level, index, value in nodes:
            self._nodes[(level, index)] = value

    def __len__(self) -> int:
        return len(self._nodes)


def _left_sibling_keys(size: int) -> list[NodeKey]:
    """Keys of the stored nodes that appending leaf ``size`` combines with.

    Each trailing 1-bit of ``size`` is a complete left sibling waiting for the
    new leaf's subtree to close it off.
    """
    keys = []
    level, index = 0, size
    while index & 1:
        keys.append((level, index - 1))
        level, index = level + 1, index >> 1
    return keys


def append_nodes(size: int, leaf_hash: bytes, get: Callable[[int, int], bytes]) -> list[Node]:
    """Compute the nodes to store when appending leaf number ``size``.

    Pure: reads left siblings through ``get`` and writes nothing.

    Args:
        size: the current number of leaves (the new leaf gets this index).
        leaf_hash: hash of the new leaf (see :func:`~charter.ledger.merkle.leaf_hash`).
        get: returns the stored hash of ``(level, index)``; only called for
            complete subtrees left of the new leaf (at most log2(size) calls).

    Returns:
        ``(level, index, hash)`` triples: the leaf first, then each parent it completes.

    Raises:
        LedgerError: if ``size`` is negative or ``leaf_hash`` is not 32 bytes.
        KeyError: propagated from ``get`` when a sibling is missing.
    """
    if size < 0:
        raise LedgerError(f"tree size cannot be negative: {size}", tree_size=size)
    if len(leaf_hash) != HASH_SIZE:
        raise LedgerError(f"a leaf hash is {HASH_SIZE} bytes, got {len(leaf_hash)}")
    nodes: list[Node] = [(0, size, leaf_hash)]
    level, index, value = 0, size, leaf_hash
    while index & 1:
        value = node_hash(get(level, index - 1), value)
        level, index = level + 1, index >> 1
        nodes.append((level, index, value))
    return nodes


def _subtree_keys(lo: int, hi: int) -> list[NodeKey]:
    """Split leaves ``[lo, hi)`` into aligned complete subtrees, largest first.

    Only valid for ranges the RFC recursion produces (``lo`` a multiple of the
    power of two at or above ``hi - lo``), which is all this module asks for.
    """
    keys = []
    n = hi - lo
    for level in range(n.bit_length() - 1, -1, -1):
        if n >> level & 1:
            keys.append((level, lo >> level))
            lo += 1 << level
    return keys


def _largest_power_of_two_below(n: int) -> int:
    return 1 << ((n - 1).bit_length() - 1)


def _inclusion_ranges(index: int, size: int) -> list[_Range]:
    """Leaf ranges whose MTHs form PATH(index, D[size]), deepest first."""
    ranges: list[_Range] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = _largest_power_of_two_below(hi - lo)
        if index < lo + k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            lo += k
    ranges.reverse()  # the recursion emits the top sibling last
    return ranges


def _consistency_ranges(old_size: int, new_size: int) -> list[_Range]:
    """Leaf ranges whose MTHs form PROOF(old_size, D[new_size]) for 0 < old < new."""
    ranges: list[_Range] = []
    lo, hi, m, complete = 0, new_size, old_size, True
    while True:
        n = hi - lo
        if m == n:
            if not complete:
                ranges.append((lo, hi))
            break
        k = _largest_power_of_two_below(n)
        if m <= k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            lo, m, complete = lo + k, m - k, False
    ranges.reverse()
    return ranges


class IncrementalTree:
    """Appends to and proves from a ledger tree kept in a :class:`NodeStore`.

    The tree does not track its own size: the caller (the SQL store, which holds
    the ledger head under a row lock) passes it in, so several processes can
    share one store. Every read method works for any ``size`` up to the number
    of leaves appended, which is what verifying old checkpoints requires.
    """

    def __init__(self, store: NodeStore) -> None:
        self.store = store

    def append(self, leaf_hash: bytes, *, size: int) -> list[Node]:
        """Append a leaf to a tree currently holding ``size`` leaves.

        Args:
            leaf_hash: hash of the new leaf.
            size: number of leaves before this append (the new leaf's index).

        Returns:
            The nodes written, as from :func:`append_nodes`.

        Raises:
            LedgerError: if the store lacks a node a tree of ``size`` leaves
                must have (``size`` is wrong or the store is damaged).
        """
        siblings = self._fetch(_left_sibling_keys(size), size=size)
        nodes = append_nodes(size, leaf_hash, lambda level, index: siblings[(level, index)])
        self.store.put_many(nodes)
        return nodes

    def root(self, size: int) -> bytes:
        """Return the root of the tree of the first ``size`` leaves.

        Args:
            size: tree size; 0 gives :data:`~charter.ledger.merkle.EMPTY_ROOT`.

        Returns:
            The 32-byte Merkle tree hash.

        Raises:
            LedgerError: if ``size`` is negative or more than the store holds.
        """
        if size < 0:
            raise LedgerError(f"tree size cannot be negative: {size}", tree_size=size)
        return self._hash_ranges([(0, size)], size=size)[0]

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """Return PATH(index, D[size]) (RFC 9162 2.1.3.1).

        Args:
            index: 0-based leaf position.
            size: size of the tree the proof is for.

        Returns:
            The audit path, deepest sibling first.

        Raises:
            LedgerError: if ``index`` is not in ``[0, size)`` or ``size`` exceeds the store.
        """
        if not 0 <= index < size:
            raise LedgerError(
                f"leaf index {index} is outside a tree of size {size}", index=index, tree_size=size
            )
        return self._hash_ranges(_inclusion_ranges(index, size), size=size)

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        """Return PROOF(old_size, D[new_size]) (RFC 9162 2.1.4.1).

        Args:
            old_size: size of the earlier tree.
            new_size: size of the later tree.

        Returns:
            The proof; empty when ``old_size`` is 0 or equals ``new_size``.

        Raises:
            LedgerError: unless ``0 <= old_size <= new_size`` and ``new_size`` is stored.
        """
        if not 0 <= old_size <= new_size:
            raise LedgerError(
                f"cannot prove consistency from size {old_size} to {new_size}",
                old_size=old_size,
                new_size=new_size,
            )
        if old_size in (0, new_size):
            return []
        return self._hash_ranges(_consistency_ranges(old_size, new_size), size=new_size)

    def _hash_ranges(self, ranges: Sequence[_Range], *, size: int) -> list[bytes]:
        """MTH of each range, reading every needed node in one ``get_many``."""
        plans = [_subtree_keys(lo, hi) for lo, hi in ranges]
        nodes = self._fetch([key for plan in plans for key in plan], size=size)
        hashes = []
        for plan in plans:
            if not plan:
                hashes.append(EMPTY_ROOT)
                continue
            # Right fold: the smallest (rightmost) subtree is the deepest.
            value = nodes[plan[-1]]
            for key in reversed(plan[:-1]):
                value = node_hash(nodes[key], value)
            hashes.append(value)
        return hashes

    def _fetch(self, keys: Sequence[NodeKey], *, size: int) -> dict[NodeKey, bytes]:
        """Read ``keys`` in one batch, turning a missing node into a LedgerError."""
        if not keys:
            return {}
        unique = list(dict.fromkeys(keys))
        try:
            found = self.store.get_many(unique)
        except KeyError as exc:
            missing: object = exc.args[0] if exc.args else "?"
        else:
            # A batched store may omit missing rows instead of raising; same error.
            absent = [key for key in unique if key not in found]
            if not absent:
                return found
            missing = absent[0]
        raise LedgerError(
            f"the ledger store has no node {missing} needed for a tree of size {size}: "
            "the size is larger than the stored tree, or the store is damaged",
            tree_size=size,
            node=missing,
        )
