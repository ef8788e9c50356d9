"""Writing the audit ledger inside a store transaction, and reading proofs out.

This is the glue between ``store`` (rows) and ``ledger`` (Merkle maths): the
store never imports the ledger, so the service hands it ready-made entries and
subtree hashes. Every call here runs inside the caller's transaction, which is
how a state change and its ledger entry commit together (invariant 3).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from charter.domain.canonical import canonical_bytes, loads
from charter.domain.entities import Event, LedgerRecord, format_time
from charter.domain.errors import LedgerError, NotFoundError
from charter.ledger import (
    Checkpoint,
    IncrementalTree,
    NodeStore,
    append_nodes,
    hash_to_hex,
    leaf_hash,
    sign_checkpoint,
)
from charter.store import CheckpointRow, ReadTx, WriteTx

__all__ = [
    "InclusionProof",
    "TxNodeStore",
    "append_event",
    "checkpoint_from_row",
    "inclusion_proof",
    "now",
    "sign_new_checkpoint",
]


class TxNodeStore(NodeStore):
    """The ledger's node storage, read and written through one store transaction."""

    def __init__(self, tx: ReadTx) -> None:
        self.tx = tx

    def get(self, level: int, index: int) -> bytes:
        """Return node ``(level, index)`` or raise KeyError."""
        return self.tx.get_nodes([(level, index)])[(level, index)]

    def get_many(self, keys: Sequence[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        """Fetch many nodes in one query."""
        return self.tx.get_nodes(keys)

    def put_many(self, nodes: Sequence[tuple[int, int, bytes]]) -> None:  # pragma: no cover
        """Nodes are written by :func:`append_event` together with their entry."""
        raise LedgerError("nodes are only written by appending an entry")


def now() -> str:
    """The current time, formatted as Charter records it."""
    return format_time(datetime.now(UTC))


def append_event(
    tx: WriteTx, event: Event, *, key: Ed25519PrivateKey, checkpoint_every: int
) -> LedgerRecord:
    """Append ``event`` to the ledger within ``tx``; sign a checkpoint when due.

    Returns:
        The stored record (sequence number, canonical body, leaf hash).
    """
    size = tx.lock_ledger()
    body = canonical_bytes(event.entry(size))
    leaf = leaf_hash(body)
    nodes = append_nodes(size, leaf, TxNodeStore(tx).get)
    record = LedgerRecord(size, event.type, event.subject, event.actor, event.time, body, leaf)
    tx.append_entry(record, nodes)
    if (size + 1) % checkpoint_every == 0:
        sign_new_checkpoint(tx, key=key, size=size + 1)
    return record


def sign_new_checkpoint(
    tx: WriteTx, *, key: Ed25519PrivateKey, size: int | None = None
) -> Checkpoint:
    """Sign and store a checkpoint at ``size`` (default: the current tree size).

    When a checkpoint at that size exists already it is returned unchanged.
    """
    size = tx.ledger_size() if size is None else size
    latest = tx.latest_checkpoint()
    if latest is not None and latest[0] == size:
        return checkpoint_from_row(latest, origin=tx.ledger_origin() or "")
    root = IncrementalTree(TxNodeStore(tx)).root(size)
    cp = sign_checkpoint(
        key, origin=tx.ledger_origin() or "", tree_size=size, root_hash=root, timestamp=now()
    )
    tx.add_checkpoint((cp.tree_size, cp.root_hash, cp.timestamp, cp.key_id, cp.signature))
    return cp


def checkpoint_from_row(row: CheckpointRow, *, origin: str) -> Checkpoint:
    """Rebuild a :class:`Checkpoint` from its stored row."""
    size, root, ts, key_id, sig = row
    return Checkpoint(
        origin=origin, tree_size=size, root_hash=root, timestamp=ts, key_id=key_id, signature=sig
    )


@dataclass(frozen=True)
class InclusionProof:
    """Everything an auditor needs to check one entry offline."""

    entry: dict[str, Any]
    leaf_index: int
    leaf_hash: str
    tree_size: int
    proof: list[str]
    checkpoint: Checkpoint

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (hashes in hex; the checkpoint as in ``audit checkpoint``)."""
        return {
            "entry": self.entry,
            "leaf_index": self.leaf_index,
            "leaf_hash": self.leaf_hash,
            "tree_size": self.tree_size,
            "inclusion_proof": self.proof,
            "checkpoint": self.checkpoint.to_dict(),
        }


def inclusion_proof(tx: ReadTx, *, seq: int, checkpoint: Checkpoint) -> InclusionProof:
    """Prove that entry ``seq`` is in the tree of ``checkpoint``.

    Raises:
        NotFoundError: when no entry ``seq`` exists or the checkpoint predates it.
    """
    records = tx.entries(seq, seq + 1)
    if not records:
        raise NotFoundError(f"no ledger entry {seq}", seq=seq, size=tx.ledger_size())
    if seq >= checkpoint.tree_size:
        raise NotFoundError(f"entry {seq} is newer than the checkpoint", seq=seq)
    proof = IncrementalTree(TxNodeStore(tx)).inclusion_proof(seq, checkpoint.tree_size)
    record = records[0]
    return InclusionProof(
        entry=loads(record.body),
        leaf_index=seq,
        leaf_hash=hash_to_hex(record.leaf_hash),
        tree_size=checkpoint.tree_size,
        proof=[hash_to_hex(p) for p in proof],
        checkpoint=checkpoint,
    )
