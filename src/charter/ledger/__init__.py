"""Charter's audit ledger: an RFC 9162 Merkle log with Ed25519-signed checkpoints.

Every state change appends one entry; its leaf hash is
``SHA-256(0x00 || canonical_json(entry))`` and interior nodes are
``SHA-256(0x01 || left || right)``, exactly as Certificate Transparency v2.
This package needs nothing from Charter but :mod:`charter.domain.canonical`
and :mod:`charter.domain.errors`, so an auditor can verify offline.

Verifying one entry, given the registry's public key (obtained out of band),
a signed checkpoint, the entry and its index, and an inclusion proof::

    from charter.ledger import (
        Checkpoint, entry_leaf_hash, load_public_key, verify_checkpoint, verify_inclusion,
    )

    public_key = load_public_key(pem_bytes)
    cp = Checkpoint.from_dict(checkpoint_json)
    assert verify_checkpoint(cp, public_key)          # the root is the registry's
    assert verify_inclusion(                          # the entry is under that root
        leaf_hash=entry_leaf_hash(entry),
        index=index,
        tree_size=cp.tree_size,
        proof=[bytes.fromhex(h) for h in proof_hex],
        root=cp.root_hash,
    )

A later checkpoint ``cp2`` extends an earlier ``cp1`` (nothing was edited,
removed or reordered) iff ``verify_consistency(old_size=cp1.tree_size,
new_size=cp2.tree_size, old_root=cp1.root_hash, new_root=cp2.root_hash,
proof=...)`` holds. Keep the last checkpoint you trusted and check each new one
against it.
"""

from __future__ import annotations

from .checkpoint import (
    Checkpoint,
    checkpoint_body,
    generate_private_key,
    key_id,
    load_private_key,
    load_public_key,
    private_key_to_pem,
    public_key_to_pem,
    sign_checkpoint,
    utc_timestamp,
    verify_checkpoint,
)
from .merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
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
from .tree import IncrementalTree, MemoryNodeStore, Node, NodeKey, NodeStore, append_nodes

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "Checkpoint",
    "IncrementalTree",
    "MemoryNodeStore",
    "Node",
    "NodeKey",
    "NodeStore",
    "append_nodes",
    "checkpoint_body",
    "consistency_proof",
    "entry_leaf_hash",
    "generate_private_key",
    "hash_from_hex",
    "hash_to_hex",
    "inclusion_proof",
    "key_id",
    "leaf_hash",
    "load_private_key",
    "load_public_key",
    "node_hash",
    "private_key_to_pem",
    "public_key_to_pem",
    "root_from_leaf_hashes",
    "sign_checkpoint",
    "utc_timestamp",
    "verify_checkpoint",
    "verify_consistency",
    "verify_inclusion",
]
