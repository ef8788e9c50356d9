"""Writing the audit ledger inside a store transaction, and reading proofs out.

This is the glue between ``store`` (rows) and ``ledger`` (Merkle maths): the
store never imports the ledger, so the service hands it ready-made entries and
subtree hashes. Every call here runs inside the caller's transaction, which is
how a state change and its ledger entry commit together (invariant 3).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Sequence
from contextlib import suppress
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
    Node,
    NodeStore,
    append_nodes,
    hash_to_hex,
    leaf_hash,
    node_hash,
    sign_checkpoint,
)
from charter.store import CheckpointRow, LedgerHead, ReadTx, WriteTx

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


@dataclass(frozen=True)
class _Frontier:
    """The complete subtrees of a ledger of ``size`` entries, largest first.

    Appending reads nothing else: the left siblings of the new leaf are the
    smallest of these, and a checkpoint's root is their fold. Valid for a locked
    head only if origin, size and newest leaf hash all match (see
    :func:`_frontier`).
    """

    origin: str
    size: int
    last_leaf: bytes | None
    nodes: tuple[Node, ...]

    def root(self) -> bytes:
        """Root hash of the tree of ``size`` entries (size must be > 0)."""
        value = self.nodes[-1][2]
        for _level, _index, hashed in reversed(self.nodes[:-1]):
            value = node_hash(hashed, value)
        return value

    def after(self, appended: list[Node], leaf: bytes) -> _Frontier:
        """The frontier once ``appended`` (from :func:`append_nodes`) is stored."""
        top = appended[-1]  # the largest subtree the new leaf completed
        kept = tuple(node for node in self.nodes if node[0] > top[0])
        return _Frontier(self.origin, self.size + 1, leaf, (*kept, top))


def _frontier_keys(size: int) -> list[tuple[int, int]]:
    """Keys of the complete subtrees making up a tree of ``size`` leaves, largest first.

    One per set bit of ``size``: node ``(level, index)`` covers leaves
    ``[index * 2**level, (index + 1) * 2**level)`` (see :mod:`charter.ledger.tree`).
    """
    keys, start = [], 0
    for level in range(size.bit_length() - 1, -1, -1):
        if size >> level & 1:
            keys.append((level, start >> level))
            start += 1 << level
    return keys


# Last known frontier per database (engine). Only an optimisation: each append
# checks it against the head it has locked, so a write by another process (or a
# rolled-back transaction of this one) makes it miss, never mislead.
_FRONTIERS: weakref.WeakKeyDictionary[Any, _Frontier] = weakref.WeakKeyDictionary()
_FRONTIERS_LOCK = threading.Lock()


def _frontier(tx: WriteTx, head: LedgerHead) -> _Frontier:
    """The frontier of the ledger under ``head``: from the cache, or in one node query.

    The cache is trusted only when the claimed head has the same origin, the same
    size *and* the same newest leaf hash as the cached frontier: sizes alone
    could match after this process rolled back an append that another process
    then replaced with a different entry.

    Raises:
        LedgerError: when the store lacks a node a tree of that size must have.
    """
    with _FRONTIERS_LOCK:
        cached = _FRONTIERS.get(tx.conn.engine)
    if (
        cached is not None
        and cached.size == head.size
        and cached.origin == head.origin
        and cached.last_leaf == head.last_leaf
    ):
        return cached
    keys = _frontier_keys(head.size)
    found = tx.get_nodes(keys)
    missing = [key for key in keys if key not in found]
    if missing:
        raise LedgerError(
            f"the ledger store has no node {missing[0]} needed for a tree of size {head.size}: "
            "the store is damaged",
            tree_size=head.size,
            node=missing[0],
        )
    nodes = tuple((level, index, found[(level, index)]) for level, index in keys)
    return _Frontier(head.origin, head.size, head.last_leaf, nodes)


def _store(tx: WriteTx, event: Event, frontier: _Frontier) -> tuple[LedgerRecord, _Frontier]:
    """Store ``event`` as entry ``frontier.size``; return it and the grown frontier."""
    size = frontier.size
    body = canonical_bytes(event.entry(size))
    leaf = leaf_hash(body)
    # The left siblings are the frontier's smallest subtrees: nothing else is read.
    siblings = {(level, index): hashed for level, index, hashed in frontier.nodes}
    nodes = append_nodes(size, leaf, lambda level, index: siblings[(level, index)])
    record = LedgerRecord(size, event.type, event.subject, event.actor, event.time, body, leaf)
    tx.store_entry(record, nodes)
    grown = frontier.after(nodes, leaf)
    with _FRONTIERS_LOCK:
        _FRONTIERS[tx.conn.engine] = grown
    return record, grown


def append_event(tx: WriteTx, event: Event, *, key: Ed25519PrivateKey) -> LedgerRecord:
    """Append ``event`` to the ledger within ``tx``; sign a checkpoint when due.

    The checkpoint interval is the home's own (fixed at init), so ``audit verify``
    can tell a deleted checkpoint from a configuration change. Three statements
    when this process appended last (claim the head, insert the entry, insert
    its nodes), plus one batched node query otherwise.

    Returns:
        The stored record (sequence number, canonical body, leaf hash).

    Raises:
        StorageError: when the ledger was never initialised.
        LedgerError: when the stored tree is damaged.
    """
    head = tx.claim_ledger_slot()
    try:
        record, grown = _store(tx, event, _frontier(tx, head))
    except BaseException:
        # Nothing may leave the head counting an entry that was never stored,
        # even if the caller goes on with the transaction after this error.
        with suppress(Exception):
            tx.release_ledger_slot()
        raise
    if grown.size % head.checkpoint_every == 0:
        cp = sign_checkpoint(
            key, origin=grown.origin, tree_size=grown.size, root_hash=grown.root(), timestamp=now()
        )
        tx.add_checkpoint((cp.tree_size, cp.root_hash, cp.timestamp, cp.key_id, cp.signature))
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
