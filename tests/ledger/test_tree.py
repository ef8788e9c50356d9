"""The stored-subtree tree agrees with the plain-list RFC 9162 functions."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from charter.domain.errors import LedgerError
from charter.ledger.merkle import (
    EMPTY_ROOT,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)
from charter.ledger.tree import (
    IncrementalTree,
    MemoryNodeStore,
    NodeKey,
    NodeStore,
    append_nodes,
)

MAX_SIZE = 2000
LEAVES = [leaf_hash(b"entry %d" % i) for i in range(MAX_SIZE)]

# Complete-subtree hashes of the reference tree (transparency-dev/merkle testonly).
REFERENCE_LEAVES = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    b"\x50\x51\x52\x53\x54\x55\x56\x57",
    b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
]
REFERENCE_NODES = {
    (1, 0): "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    (1, 1): "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
    (1, 2): "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
    (1, 3): "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
    (2, 0): "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    (2, 1): "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    (3, 0): "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
}


class CountingStore(MemoryNodeStore):
    """Records every batch read, to check operations fetch in one round trip."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[list[NodeKey]] = []

    def get_many(self, keys: Sequence[NodeKey]) -> dict[NodeKey, bytes]:
        self.batches.append(list(keys))
        return super().get_many(keys)


def build(size: int, store: MemoryNodeStore | None = None) -> IncrementalTree:
    tree = IncrementalTree(store if store is not None else MemoryNodeStore())
    for i in range(size):
        tree.append(LEAVES[i], size=i)
    return tree


# One full tree shared by the property tests: historical sizes are read from it.
FULL = build(MAX_SIZE)


def test_reference_tree_nodes_are_stored() -> None:
    store = MemoryNodeStore()
    tree = IncrementalTree(store)
    for i, entry in enumerate(REFERENCE_LEAVES):
        tree.append(leaf_hash(entry), size=i)
    for (level, index), want in REFERENCE_NODES.items():
        assert store.get(level, index).hex() == want
    # 8 leaves + 4 + 2 + 1 complete parents, nothing else.
    assert len(store) == 15


def test_append_nodes_writes_one_node_per_trailing_one_bit() -> None:
    store = MemoryNodeStore()
    for size in range(64):
        nodes = append_nodes(size, LEAVES[size], store.get)
        trailing_ones = (size ^ (size + 1)).bit_length() - 1
        assert len(nodes) == 1 + trailing_ones
        assert nodes[0] == (0, size, LEAVES[size])
        store.put_many(nodes)
    # After 64 leaves the single top node is the root.
    assert store.get(6, 0) == root_from_leaf_hashes(LEAVES[:64])


def test_append_nodes_is_pure_and_validates() -> None:
    with pytest.raises(LedgerError):
        append_nodes(-1, LEAVES[0], MemoryNodeStore().get)
    with pytest.raises(LedgerError):
        append_nodes(0, b"short", MemoryNodeStore().get)
    with pytest.raises(KeyError):
        append_nodes(1, LEAVES[1], MemoryNodeStore().get)


def test_every_historical_root_while_growing() -> None:
    tree = IncrementalTree(MemoryNodeStore())
    assert tree.root(0) == EMPTY_ROOT
    for size in range(1, 300):
        tree.append(LEAVES[size - 1], size=size - 1)
        assert tree.root(size) == root_from_leaf_hashes(LEAVES[:size]), size
    for size in range(300):
        assert tree.root(size) == root_from_leaf_hashes(LEAVES[:size]), size


def test_every_proof_of_small_trees_matches_reference() -> None:
    tree = build(70)
    for size in range(1, 70):
        leaves = LEAVES[:size]
        for index in range(size):
            assert tree.inclusion_proof(index, size) == inclusion_proof(leaves, index)
        for old in range(size + 1):
            assert tree.consistency_proof(old, size) == consistency_proof(leaves, old, size)


@settings(max_examples=100, deadline=None)
@given(st.integers(0, MAX_SIZE))
def test_root_matches_reference_at_any_historical_size(size: int) -> None:
    assert FULL.root(size) == root_from_leaf_hashes(LEAVES[:size])


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_inclusion_proof_matches_reference(data: st.DataObject) -> None:
    size = data.draw(st.integers(1, MAX_SIZE))
    index = data.draw(st.integers(0, size - 1))
    assert FULL.inclusion_proof(index, size) == inclusion_proof(LEAVES[:size], index)


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_consistency_proof_matches_reference(data: st.DataObject) -> None:
    new = data.draw(st.integers(0, MAX_SIZE))
    old = data.draw(st.integers(0, new))
    assert FULL.consistency_proof(old, new) == consistency_proof(LEAVES[:new], old, new)


@settings(max_examples=25, deadline=None)
@given(st.integers(1, MAX_SIZE))
def test_every_index_verifies_against_the_stored_root(size: int) -> None:
    root = FULL.root(size)
    for index in range(size):
        assert verify_inclusion(
            leaf_hash=LEAVES[index],
            index=index,
            tree_size=size,
            proof=FULL.inclusion_proof(index, size),
            root=root,
        )


@settings(max_examples=50, deadline=None)
@given(st.data())
def test_consistency_between_stored_roots_verifies(data: st.DataObject) -> None:
    new = data.draw(st.integers(0, MAX_SIZE))
    old = data.draw(st.integers(0, new))
    assert verify_consistency(
        old_size=old,
        new_size=new,
        old_root=FULL.root(old),
        new_root=FULL.root(new),
        proof=FULL.consistency_proof(old, new),
    )


def test_each_operation_reads_the_store_in_one_batch() -> None:
    store = CountingStore()
    tree = build(1000, store)
    store.batches.clear()
    tree.root(777)
    tree.inclusion_proof(500, 999)
    tree.consistency_proof(333, 999)
    assert len(store.batches) == 3
    # O(log n): a handful of nodes per operation, never a scan.
    assert all(len(batch) <= 2 * 10 for batch in store.batches)
    store.batches.clear()
    tree.append(LEAVES[1000], size=1000)  # 1000 = 0b1111101000: even, needs no sibling
    tree.append(LEAVES[1001], size=1001)  # one trailing 1-bit: one sibling
    assert store.batches == [[(0, 1000)]]


def test_reads_beyond_the_stored_tree_raise_ledger_error() -> None:
    tree = build(5)
    with pytest.raises(LedgerError):
        tree.root(6)
    with pytest.raises(LedgerError):
        tree.inclusion_proof(0, 8)
    with pytest.raises(LedgerError):
        tree.consistency_proof(3, 7)
    with pytest.raises(LedgerError):
        tree.append(LEAVES[7], size=7)  # a gap: siblings (0, 6) and (1, 2) are missing


def test_bad_requests_raise_ledger_error() -> None:
    tree = build(8)
    for index, size in [(8, 8), (-1, 8), (0, 0)]:
        with pytest.raises(LedgerError):
            tree.inclusion_proof(index, size)
    with pytest.raises(LedgerError):
        tree.consistency_proof(5, 4)
    with pytest.raises(LedgerError):
        tree.root(-1)
    assert tree.consistency_proof(0, 8) == []
    assert tree.consistency_proof(8, 8) == []


def test_stored_nodes_never_change() -> None:
    store = MemoryNodeStore()
    tree = build(4, store)
    # Re-writing the same node is harmless (a retried transaction).
    store.put_many([(0, 3, LEAVES[3])])
    with pytest.raises(LedgerError):
        tree.append(LEAVES[100], size=2)  # would rewrite leaf 2 and node (1, 1)
    assert tree.root(4) == root_from_leaf_hashes(LEAVES[:4])


def test_a_batched_store_that_omits_rows_is_reported() -> None:
    class OmittingStore(MemoryNodeStore):
        def get_many(self, keys: Sequence[NodeKey]) -> dict[NodeKey, bytes]:
            return {key: self.get(*key) for key in keys if key[0] == 0}

    store = OmittingStore()
    for i in range(4):
        store.put_many(append_nodes(i, LEAVES[i], store.get))
    with pytest.raises(LedgerError):
        IncrementalTree(store).root(4)


def test_node_store_default_get_many_loops_over_get() -> None:
    class DictStore(NodeStore):
        def __init__(self) -> None:
            self.nodes: dict[NodeKey, bytes] = {}

        def get(self, level: int, index: int) -> bytes:
            return self.nodes[(level, index)]

        def put_many(self, nodes: Sequence[tuple[int, int, bytes]]) -> None:
            self.nodes.update({(level, index): value for level, index, value in nodes})

    tree = IncrementalTree(DictStore())
    for i in range(13):
        tree.append(LEAVES[i], size=i)
    assert tree.root(13) == root_from_leaf_hashes(LEAVES[:13])
    assert tree.store.get_many([(0, 1)]) == {(0, 1): LEAVES[1]}
