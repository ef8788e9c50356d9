"""The public surface of charter.ledger, and the offline auditor's walk-through."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import charter.ledger as ledger
from charter.ledger import (
    Checkpoint,
    IncrementalTree,
    MemoryNodeStore,
    entry_leaf_hash,
    generate_private_key,
    hash_from_hex,
    hash_to_hex,
    load_public_key,
    public_key_to_pem,
    sign_checkpoint,
    verify_checkpoint,
    verify_consistency,
    verify_inclusion,
)

PACKAGE = Path(ledger.__file__).parent


def test_all_is_exactly_the_exported_names() -> None:
    assert sorted(ledger.__all__) == sorted(set(ledger.__all__))
    for name in ledger.__all__:
        assert hasattr(ledger, name), name
    public = {name for name in vars(ledger) if not name.startswith("_")}
    submodules = {"checkpoint", "merkle", "tree", "annotations"}
    assert public - submodules == set(ledger.__all__)


def test_submodule_all_is_reexported() -> None:
    for module in (ledger.merkle, ledger.tree, ledger.checkpoint):
        assert set(module.__all__) <= set(ledger.__all__), module.__name__


def test_imports_nothing_from_charter_but_the_domain_basics() -> None:
    allowed = {"charter.domain.canonical", "charter.domain.errors"}
    for path in PACKAGE.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                if node.module.startswith("charter"):
                    assert node.module in allowed, (path.name, node.module)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    assert not alias.name.startswith("charter"), (path.name, alias.name)


def test_auditor_verifies_an_entry_offline_from_json_only() -> None:
    # Registry side: append entries, sign checkpoints, publish JSON.
    key = generate_private_key()
    tree = IncrementalTree(MemoryNodeStore())
    entries = [{"event": "version.registered", "model": "credit-risk", "n": i} for i in range(21)]
    for size, entry in enumerate(entries):
        tree.append(entry_leaf_hash(entry), size=size)
    old_cp = sign_checkpoint(
        key, origin="reg", tree_size=13, root_hash=tree.root(13), timestamp="2026-11-27T12:00:00Z"
    )
    new_cp = sign_checkpoint(
        key, origin="reg", tree_size=21, root_hash=tree.root(21), timestamp="2026-11-27T13:00:00Z"
    )
    published = json.dumps(
        {
            "public_key": public_key_to_pem(key.public_key()).decode(),
            "old": old_cp.to_dict(),
            "new": new_cp.to_dict(),
            "entry": entries[9],
            "index": 9,
            "inclusion": [hash_to_hex(h) for h in tree.inclusion_proof(9, 21)],
            "consistency": [hash_to_hex(h) for h in tree.consistency_proof(13, 21)],
        }
    )

    # Auditor side: JSON in, booleans out.
    doc = json.loads(published)
    public_key = load_public_key(doc["public_key"].encode())
    old, new = Checkpoint.from_dict(doc["old"]), Checkpoint.from_dict(doc["new"])
    assert verify_checkpoint(old, public_key) and verify_checkpoint(new, public_key)
    assert verify_inclusion(
        leaf_hash=entry_leaf_hash(doc["entry"]),
        index=doc["index"],
        tree_size=new.tree_size,
        proof=[hash_from_hex(h) for h in doc["inclusion"]],
        root=new.root_hash,
    )
    assert verify_consistency(
        old_size=old.tree_size,
        new_size=new.tree_size,
        old_root=old.root_hash,
        new_root=new.root_hash,
        proof=[hash_from_hex(h) for h in doc["consistency"]],
    )
    # An edited entry no longer verifies.
    edited = dict(doc["entry"], model="other")
    assert not verify_inclusion(
        leaf_hash=entry_leaf_hash(edited),
        index=doc["index"],
        tree_size=new.tree_size,
        proof=[hash_from_hex(h) for h in doc["inclusion"]],
        root=new.root_hash,
    )
