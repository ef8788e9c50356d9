"""``audit verify``, ledger part: the head, entries, subtree hashes and checkpoints.

Entries stream from the database cursor: each is hashed, parsed, checked against
its row's columns, handed to the caller's ``apply`` and dropped, so memory holds
one 32-byte leaf hash per entry plus the replayed state, never every parsed body.
Subtree hashes are recomputed level by level as plain lists, and stored ones are
compared as they stream past; checkpoints are folded from those lists.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from charter._audit_report import Problems
from charter.domain.canonical import loads
from charter.domain.errors import LedgerError
from charter.journal import checkpoint_from_row
from charter.ledger import IncrementalTree, NodeStore, leaf_hash, node_hash, verify_checkpoint

__all__ = ["Apply", "check_checkpoints", "check_entries", "check_head", "check_nodes"]

Apply = Callable[[Any, Any, Any, dict[str, Any]], None]
"""Called with ``(seq, type, subject, body)`` for every well-formed entry, in order."""

Levels = list[list[bytes]]
"""``levels[level][index]``: the recomputed hash of node ``(level, index)``."""

_ENTRY_COLUMNS = ("seq", "type", "subject", "actor", "time")
_DECODER = json.JSONDecoder()


def check_head(heads: Sequence[tuple[Any, Any, Any]], problems: Problems) -> tuple[int, str] | None:
    """Check there is exactly one head row (id 1); return its (size, origin).

    Another head row stands in for a missing id 1 (its origin still checks the
    signatures). None when there is no head row at all: the caller reports that
    knowing how many entries exist.
    """
    if heads and [row[0] for row in heads] != [1]:
        found = ", ".join(str(row[0]) for row in heads)
        problems.add("ledger", "head", f"expected one ledger head row with id 1, found: {found}")
    head = next((row for row in heads if row[0] == 1), heads[0] if heads else None)
    if head is None:
        return None
    _, size, origin = head
    return (size if isinstance(size, int) else -1), (origin if isinstance(origin, str) else "")


def check_entries(rows: Iterable[tuple[Any, ...]], problems: Problems, apply: Apply) -> list[bytes]:
    """Check every entry row against its body; return the recomputed leaf hashes.

    Args:
        rows: ``(seq, type, subject, actor, time, body, leaf_hash)`` in ``seq`` order.
        problems: where findings go.
        apply: receives each entry whose body is a JSON object (see :data:`Apply`).
    """
    leaves: list[bytes] = []
    for position, (seq, type_, subject, actor, time, raw, stored) in enumerate(rows):
        if seq != position:
            problems.add(
                "ledger",
                f"entry {seq}",
                f"expected entry {position} here: entries are missing or inserted",
            )
        if type(raw) is not bytes:  # exact check first: this loop runs once per entry
            raw = _body_bytes(raw, seq, problems)
        leaf = leaf_hash(raw)
        leaves.append(leaf)
        if leaf != (stored if type(stored) is bytes else _bytes(stored)):
            problems.add(
                "ledger", f"entry {seq}", "the stored leaf hash does not match the entry body"
            )
        body = _parse(raw)
        if not isinstance(body, dict):
            problems.add("ledger", f"entry {seq}", "the entry body is not a JSON object")
            continue
        if (
            body.get("seq") != seq
            or body.get("type") != type_
            or body.get("subject") != subject
            or body.get("actor") != actor
            or body.get("time") != time
        ):
            columns = (seq, type_, subject, actor, time)
            differing = [
                k for k, v in zip(_ENTRY_COLUMNS, columns, strict=True) if body.get(k) != v
            ]
            problems.add(
                "ledger",
                f"entry {seq}",
                f"row columns disagree with the signed body: {', '.join(differing)}",
            )
        apply(seq, type_, subject, body)
    return leaves


def check_nodes(
    leaves: list[bytes], stored: Iterable[tuple[Any, Any, Any]], problems: Problems
) -> Levels:
    """Recompute every complete subtree from the leaves; compare the stored rows.

    Returns:
        The recomputed hashes, by level.
    """
    levels, row = [leaves], leaves
    while len(row) > 1:
        row = [node_hash(row[i], row[i + 1]) for i in range(0, len(row) - 1, 2)]
        levels.append(row)
    seen = [bytearray(len(level)) for level in levels]
    depth = len(levels)
    for level, index, value in stored:  # 2n rows: the checks are inlined on purpose
        if not (
            type(level) is int
            and type(index) is int
            and 0 <= level < depth
            and 0 <= index < len(levels[level])
        ):
            problems.add(
                "ledger", f"node {(level, index)}", "a stored subtree hash covers no entries"
            )
            continue
        seen[level][index] = 1
        if levels[level][index] != (value if type(value) is bytes else _bytes(value)):
            _node_differs(problems, level, index)
    for level, flags in enumerate(seen):
        index = flags.find(0)
        while index != -1:  # computed, never stored
            _node_differs(problems, level, index)
            index = flags.find(0, index + 1)
    return levels


def check_checkpoints(
    rows: Sequence[Any],
    levels: Levels,
    origin: str | None,
    public_key: Ed25519PublicKey,
    problems: Problems,
) -> int:
    """Verify each checkpoint's signature and root; return the largest sound tree size.

    With ``origin`` None (no ledger head: reported by the caller) signatures
    cannot be checked, since each signs the origin; roots still are.
    """
    size = len(levels[0])
    tree = IncrementalTree(_LevelNodes(levels))
    latest = 0
    for row in rows:
        cp = checkpoint_from_row(row, origin=origin or "")
        where = f"checkpoint {cp.tree_size}"
        if not isinstance(cp.tree_size, int) or cp.tree_size < 0:
            problems.add("checkpoint", where, "the tree size is not a count of entries")
            continue
        if origin is not None and not verify_checkpoint(cp, public_key):
            problems.add(
                "checkpoint", where, "the signature does not verify with this registry's key"
            )
        if cp.tree_size > size:
            problems.add(
                "checkpoint", where, f"signed a tree of {cp.tree_size} entries; only {size} exist"
            )
            continue
        if tree.root(cp.tree_size) != cp.root_hash:
            problems.add(
                "checkpoint",
                where,
                "the signed root differs from the recomputed tree: history was rewritten",
            )
        latest = max(latest, cp.tree_size)
    return latest


class _LevelNodes(NodeStore):
    """The recomputed levels, read in place as a node store (no copy of 200k nodes)."""

    def __init__(self, levels: Levels) -> None:
        self._levels = levels

    def get(self, level: int, index: int) -> bytes:
        if not _computed(self._levels, level, index):
            raise KeyError((level, index))
        return self._levels[level][index]

    def put_many(self, nodes: Sequence[tuple[int, int, bytes]]) -> None:  # pragma: no cover
        raise LedgerError("recomputed nodes are read-only")


def _computed(levels: Levels, level: Any, index: Any) -> bool:
    """Whether ``(level, index)`` is a recomputed node.

    Exact int checks: a tampered row may hold text, and negatives would wrap around.
    """
    return (
        type(level) is int
        and type(index) is int
        and 0 <= level < len(levels)
        and 0 <= index < len(levels[level])
    )


def _node_differs(problems: Problems, level: int, index: int) -> None:
    problems.add(
        "ledger",
        f"node {(level, index)}",
        "a stored subtree hash is missing or differs from the entries",
    )


def _body_bytes(raw: Any, seq: Any, problems: Problems) -> bytes:
    """The body as bytes; anything but a BLOB is a problem (and hashed as its text)."""
    if isinstance(raw, memoryview | bytearray):  # some drivers return these for BLOBs
        return bytes(raw)
    if isinstance(raw, bytes):
        return raw
    problems.add("ledger", f"entry {seq}", "the entry body is not stored as bytes")
    return str(raw).encode()


def _parse(raw: bytes) -> Any:
    """``json.loads(raw)``, faster for the canonical bodies every entry should hold.

    ``raw_decode`` on the decoded text skips ``loads``' encoding sniffing and its
    two whitespace scans; anything else (whitespace, trailing data, bad UTF-8)
    takes ``loads`` itself, so the outcome is the same. None when not JSON.
    """
    try:
        text = raw.decode("utf-8")
        value, end = _DECODER.raw_decode(text)
        if end == len(text):
            return value
    except ValueError:  # includes UnicodeDecodeError and JSONDecodeError
        pass
    try:
        return loads(raw)
    except ValueError:
        return None


def _bytes(value: Any) -> Any:
    return bytes(value) if isinstance(value, memoryview | bytearray) else value
