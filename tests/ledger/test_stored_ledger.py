"""The ledger as a registry stores it, on every backend.

Entries read back byte for byte, proofs built from the stored subtree hashes
verify against signed checkpoints with nothing but the public key, and appends
from several threads (each with its own connections) stay one linear log.
"""

from __future__ import annotations

import threading

from charter.journal import TxNodeStore
from charter.ledger import (
    IncrementalTree,
    hash_from_hex,
    leaf_hash,
    load_public_key,
    root_from_leaf_hashes,
    verify_checkpoint,
    verify_consistency,
    verify_inclusion,
)
from charter.sdk import open_registry
from charter.service import Registry
from charter.settings import Settings

THREADS = 4
MODELS_EACH = 8


def test_stored_entries_prove_against_signed_checkpoints(registry: Registry) -> None:
    for i in range(20):
        registry.create_model(name=f"m{i}")
    old = registry.checkpoint()
    for i in range(20, 37):
        registry.create_model(name=f"m{i}")
    new = registry.checkpoint()
    assert old is not None and new is not None
    public_key = load_public_key(registry.public_key_pem())
    assert verify_checkpoint(old, public_key) and verify_checkpoint(new, public_key)

    log = registry.audit_log()
    assert [r.seq for r in log] == list(range(len(log))) and len(log) == new.tree_size
    assert all(isinstance(r.body, bytes) and r.leaf_hash == leaf_hash(r.body) for r in log)
    assert root_from_leaf_hashes([r.leaf_hash for r in log]) == new.root_hash

    for seq in range(new.tree_size):
        proof = registry.proof(seq=seq)
        assert verify_inclusion(
            leaf_hash=hash_from_hex(proof.leaf_hash),
            index=seq,
            tree_size=new.tree_size,
            proof=[hash_from_hex(h) for h in proof.proof],
            root=new.root_hash,
        ), seq

    with registry.store.read() as tx:
        consistency = IncrementalTree(TxNodeStore(tx)).consistency_proof(
            old.tree_size, new.tree_size
        )
    assert verify_consistency(
        old_size=old.tree_size,
        new_size=new.tree_size,
        old_root=old.root_hash,
        new_root=new.root_hash,
        proof=consistency,
    )


def test_appends_from_threads_stay_linear(registry: Registry, settings: Settings) -> None:
    start = threading.Barrier(THREADS)
    errors: list[BaseException] = []

    def append(worker: int) -> None:
        try:
            with open_registry(settings=settings) as reg:
                start.wait()
                for i in range(MODELS_EACH):
                    reg.create_model(name=f"w{worker}-m{i}")
        except BaseException as exc:  # reported below: a thread's error is otherwise lost
            errors.append(exc)

    threads = [threading.Thread(target=append, args=(w,)) for w in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors

    log = registry.audit_log()
    assert [r.seq for r in log] == list(range(len(log)))
    created = [r.subject for r in log if r.type == "model.created"]
    assert sorted(created) == sorted(
        f"model:w{w}-m{i}" for w in range(THREADS) for i in range(MODELS_EACH)
    )
    report = registry.verify()
    assert report.ok, report.problems
    assert report.entries == len(log)
