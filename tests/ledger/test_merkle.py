"""RFC 9162 hashing and proofs: reference vectors, properties, tampering."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from charter.domain.errors import LedgerError
from charter.ledger.merkle import (
    EMPTY_ROOT,
    consistency_proof,
    entry_leaf_hash,
    hash_from_hex,
    hash_to_hex,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)

# The reference tree of the CT reference implementation and transparency-dev/merkle.
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
REFERENCE_HASHES = [leaf_hash(leaf) for leaf in REFERENCE_LEAVES]
REFERENCE_ROOTS = {
    0: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    1: "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    2: "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    3: "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    4: "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    5: "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    6: "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    7: "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    8: "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
}
# (index, size) -> audit path, as published with the reference tree.
REFERENCE_INCLUSION = {
    (0, 1): [],
    (0, 2): ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"],
    (1, 2): ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"],
    (2, 3): ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
    (1, 5): [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    ],
    (0, 8): [
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    (5, 8): [
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ],
}
# (old, new) -> consistency proof, as published with the reference tree.
REFERENCE_CONSISTENCY = {
    (1, 1): [],
    (1, 8): [
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    (2, 5): [
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    ],
    (6, 8): [
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ],
    (6, 7): [
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ],
}

MAX_SIZE = 2000
LEAVES = [leaf_hash(i.to_bytes(4, "big")) for i in range(MAX_SIZE)]
OTHER_HASH = hashlib.sha256(b"not in the tree").digest()


def _flip(proof: list[bytes], i: int, bit: int) -> list[bytes]:
    changed = list(proof)
    element = bytearray(changed[i])
    element[bit // 8] ^= 1 << (bit % 8)
    changed[i] = bytes(element)
    return changed


@st.composite
def size_and_index(draw: st.DrawFn) -> tuple[int, int]:
    size = draw(st.integers(1, MAX_SIZE))
    return size, draw(st.integers(0, size - 1))


@st.composite
def old_and_new(draw: st.DrawFn) -> tuple[int, int]:
    new = draw(st.integers(1, MAX_SIZE))
    return draw(st.integers(1, new)), new


# --- known answers -----------------------------------------------------------------


def test_hash_primitives_use_domain_separation() -> None:
    assert leaf_hash(b"x") == hashlib.sha256(b"\x00x").digest()
    assert node_hash(b"l", b"r") == hashlib.sha256(b"\x01lr").digest()
    assert hashlib.sha256(b"").digest() == EMPTY_ROOT


@pytest.mark.parametrize("size", sorted(REFERENCE_ROOTS))
def test_reference_roots(size: int) -> None:
    assert root_from_leaf_hashes(REFERENCE_HASHES[:size]).hex() == REFERENCE_ROOTS[size]


@pytest.mark.parametrize(("index", "size"), sorted(REFERENCE_INCLUSION))
def test_reference_inclusion_proofs(index: int, size: int) -> None:
    want = REFERENCE_INCLUSION[(index, size)]
    proof = inclusion_proof(REFERENCE_HASHES[:size], index)
    assert [p.hex() for p in proof] == want
    root = bytes.fromhex(REFERENCE_ROOTS[size])
    assert verify_inclusion(
        leaf_hash=REFERENCE_HASHES[index], index=index, tree_size=size, proof=proof, root=root
    )


@pytest.mark.parametrize(("old", "new"), sorted(REFERENCE_CONSISTENCY))
def test_reference_consistency_proofs(old: int, new: int) -> None:
    proof = consistency_proof(REFERENCE_HASHES, old, new)
    assert [p.hex() for p in proof] == REFERENCE_CONSISTENCY[(old, new)]
    assert verify_consistency(
        old_size=old,
        new_size=new,
        old_root=bytes.fromhex(REFERENCE_ROOTS[old]),
        new_root=bytes.fromhex(REFERENCE_ROOTS[new]),
        proof=proof,
    )


# --- exhaustive small trees -------------------------------------------------------


def test_every_proof_of_every_small_tree_verifies() -> None:
    for size in range(1, 65):
        leaves = LEAVES[:size]
        root = root_from_leaf_hashes(leaves)
        for index in range(size):
            proof = inclusion_proof(leaves, index)
            assert verify_inclusion(
                leaf_hash=leaves[index], index=index, tree_size=size, proof=proof, root=root
            ), (index, size)
        for old in range(0, size + 1):
            assert verify_consistency(
                old_size=old,
                new_size=size,
                old_root=root_from_leaf_hashes(leaves[:old]),
                new_root=root,
                proof=consistency_proof(leaves, old, size),
            ), (old, size)


# --- properties ---------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(size_and_index())
def test_inclusion_proof_verifies_and_tampering_fails(case: tuple[int, int]) -> None:
    size, index = case
    leaves = LEAVES[:size]
    root = root_from_leaf_hashes(leaves)
    proof = inclusion_proof(leaves, index)
    leaf = leaves[index]

    def ok(**changes: object) -> bool:
        args: dict[str, object] = {
            "leaf_hash": leaf,
            "index": index,
            "tree_size": size,
            "proof": proof,
            "root": root,
        }
        args.update(changes)
        return verify_inclusion(**args)  # type: ignore[arg-type]

    assert ok()
    # Wrong index (including past the end and negative).
    for wrong in {index - 1, index + 1, index ^ 2, size, -1} - {index}:
        assert not ok(index=wrong), wrong
    # Wrong tree height; the size is otherwise bound by the signed checkpoint.
    for wrong in {size * 2, size // 2, 0} - {size}:
        assert not ok(tree_size=wrong), wrong
    # Wrong leaf or root.
    assert not ok(leaf_hash=OTHER_HASH)
    assert not ok(root=OTHER_HASH)
    assert not ok(root=EMPTY_ROOT)
    assert not ok(root=root[:-1])
    # Every single-bit flip in every element (a few bits each to bound runtime).
    for i in range(len(proof)):
        for bit in (0, 7, 100, 255):
            assert not ok(proof=_flip(proof, i, bit)), (i, bit)
    # Truncated, extended at either end, element inserted, wrong element size.
    if proof:
        assert not ok(proof=proof[:-1])
        assert not ok(proof=proof[1:])
        assert not ok(proof=[*proof[:-1], proof[-1][:-1]])
        assert not ok(proof=[proof[0], OTHER_HASH, *proof[1:]])
    assert not ok(proof=[*proof, root])
    assert not ok(proof=[*proof, OTHER_HASH])
    assert not ok(proof=[root, *proof])
    assert not ok(proof=[*proof, b""])


@settings(max_examples=150, deadline=None)
@given(old_and_new())
def test_consistency_proof_verifies_and_tampering_fails(case: tuple[int, int]) -> None:
    old, new = case
    leaves = LEAVES[:new]
    old_root, new_root = root_from_leaf_hashes(leaves[:old]), root_from_leaf_hashes(leaves)
    proof = consistency_proof(leaves, old, new)

    def ok(**changes: object) -> bool:
        args: dict[str, object] = {
            "old_size": old,
            "new_size": new,
            "old_root": old_root,
            "new_root": new_root,
            "proof": proof,
        }
        args.update(changes)
        return verify_consistency(**args)  # type: ignore[arg-type]

    assert ok()
    if old == new:
        assert proof == []
        assert not ok(new_root=OTHER_HASH)
        assert not ok(proof=[OTHER_HASH])
        return
    for wrong in {old - 1, old + 1, old ^ 2, new + 1} - {old}:
        assert not ok(old_size=wrong), wrong
    # Wrong tree height (see test_tree_size_is_bound_by_the_root for nearby sizes).
    for wrong in {new * 2, new // 2} - {new}:
        assert not ok(new_size=wrong), wrong
    assert not ok(old_root=OTHER_HASH)
    assert not ok(new_root=OTHER_HASH)
    assert not ok(old_root=new_root, new_root=old_root)
    assert not ok(proof=[])
    for i in range(len(proof)):
        for bit in (0, 4, 131, 255):
            assert not ok(proof=_flip(proof, i, bit)), (i, bit)
    assert not ok(proof=proof[:-1])
    assert not ok(proof=[*proof, old_root])
    assert not ok(proof=[*proof, new_root])
    assert not ok(proof=[old_root, *proof])
    assert not ok(proof=[proof[0], *proof])
    assert not ok(proof=[*proof, b""])


def test_root_of_100k_leaves_is_fast_and_matches_recursive_definition() -> None:
    leaves = [leaf_hash(i.to_bytes(4, "big")) for i in range(100_000)]
    root = root_from_leaf_hashes(leaves)

    def mth(lo: int, hi: int) -> bytes:  # RFC 9162 2.1.1, recursively
        if hi - lo == 1:
            return leaves[lo]
        k = 1 << ((hi - lo - 1).bit_length() - 1)
        return node_hash(mth(lo, lo + k), mth(lo + k, hi))

    assert root == mth(0, len(leaves))


def test_tree_size_is_bound_by_the_root_not_by_the_proof() -> None:
    # RFC 9162 paths for nearby sizes can have the same shape: leaf 0 of a 3-leaf
    # tree has the same path as in a 4-leaf tree. The size is authenticated by
    # the root it comes with, which is why checkpoints sign (size, root) together.
    leaves = REFERENCE_HASHES
    proof = inclusion_proof(leaves[:3], 0)
    root3, root4 = root_from_leaf_hashes(leaves[:3]), root_from_leaf_hashes(leaves[:4])
    assert verify_inclusion(leaf_hash=leaves[0], index=0, tree_size=4, proof=proof, root=root3)
    assert not verify_inclusion(leaf_hash=leaves[0], index=0, tree_size=4, proof=proof, root=root4)
    cproof = consistency_proof(leaves, 1, 3)
    assert not verify_consistency(
        old_size=1, new_size=4, old_root=leaves[0], new_root=root4, proof=cproof
    )


# --- edge cases ---------------------------------------------------------------------


def test_consistency_edge_cases() -> None:
    root = bytes.fromhex(REFERENCE_ROOTS[3])
    assert verify_consistency(
        old_size=0, new_size=0, old_root=EMPTY_ROOT, new_root=EMPTY_ROOT, proof=[]
    )
    assert verify_consistency(old_size=0, new_size=3, old_root=EMPTY_ROOT, new_root=root, proof=[])
    # Stricter than "always consistent": a size-0 checkpoint must carry the empty root.
    assert not verify_consistency(old_size=0, new_size=3, old_root=root, new_root=root, proof=[])
    assert not verify_consistency(
        old_size=0, new_size=3, old_root=EMPTY_ROOT, new_root=root, proof=[EMPTY_ROOT]
    )
    assert verify_consistency(old_size=3, new_size=3, old_root=root, new_root=root, proof=[])
    assert not verify_consistency(
        old_size=3, new_size=3, old_root=root, new_root=OTHER_HASH, proof=[]
    )
    assert not verify_consistency(old_size=4, new_size=3, old_root=root, new_root=root, proof=[])
    assert not verify_consistency(old_size=-1, new_size=3, old_root=root, new_root=root, proof=[])


@pytest.mark.parametrize(
    "bad",
    [
        {"index": True},
        {"tree_size": 2.0},
        {"tree_size": 0},
        {"leaf_hash": "not bytes"},
        {"root": None},
        {"proof": None},
        {"proof": [REFERENCE_HASHES[0].hex()]},
        {"proof": REFERENCE_HASHES[0]},
    ],
)
def test_verify_inclusion_rejects_malformed_input_without_raising(bad: dict[str, object]) -> None:
    args: dict[str, object] = {
        "leaf_hash": REFERENCE_HASHES[1],
        "index": 1,
        "tree_size": 2,
        "proof": [REFERENCE_HASHES[0]],
        "root": bytes.fromhex(REFERENCE_ROOTS[2]),
    }
    assert verify_inclusion(**args)  # type: ignore[arg-type]
    args.update(bad)
    assert verify_inclusion(**args) is False  # type: ignore[arg-type]


def test_proof_generation_rejects_bad_requests() -> None:
    with pytest.raises(LedgerError):
        inclusion_proof(REFERENCE_HASHES[:3], 3)
    with pytest.raises(LedgerError):
        inclusion_proof([], 0)
    with pytest.raises(LedgerError):
        consistency_proof(REFERENCE_HASHES, 5, 4)
    with pytest.raises(LedgerError):
        consistency_proof(REFERENCE_HASHES, 1, 9)
    assert consistency_proof(REFERENCE_HASHES, 0, 8) == []
    assert consistency_proof(REFERENCE_HASHES, 8, 8) == []


def test_hex_helpers_and_entry_hash() -> None:
    root = bytes.fromhex(REFERENCE_ROOTS[8])
    assert hash_from_hex(hash_to_hex(root)) == root
    assert hash_from_hex(REFERENCE_ROOTS[8].upper()) == root
    for bad in ["zz", "abcd", REFERENCE_ROOTS[8] + "00"]:
        with pytest.raises(LedgerError):
            hash_from_hex(bad)
    assert entry_leaf_hash({"b": 1, "a": [True, None]}) == leaf_hash(b'{"a":[true,null],"b":1}')
