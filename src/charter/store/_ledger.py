"""Store queries for the audit ledger, mixed into the read and write transactions.

Rows only: entries, subtree hashes, the head and signed checkpoints, stored as
the journal hands them over; no Merkle arithmetic happens here.

Speed: statements are built once, at import, and run through
:class:`~charter.store._sql.Compiled`; bulk reads for verification stream
through :func:`~charter.store._sql.raw_rows`. An append is three statements:
claim the head (lock and grow it at once), insert the entry, insert its nodes.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from functools import lru_cache
from typing import Any, NamedTuple

from sqlalchemy import Connection, and_, bindparam, insert, or_, select, update

from charter.domain.entities import LedgerRecord
from charter.domain.errors import StorageError
from charter.store import schema as t
from charter.store._sql import Compiled, raw_rows

__all__ = ["CheckpointRow", "LedgerHead", "LedgerReads", "LedgerWrites"]

CheckpointRow = tuple[int, bytes, str, str, bytes]
"""(tree_size, root_hash, timestamp, key_id, signature)."""


class LedgerHead(NamedTuple):
    """The locked ledger head: everything an append needs, read in one statement."""

    size: int
    checkpoint_every: int
    origin: str
    last_leaf: bytes | None
    """Leaf hash of entry ``size - 1`` (None when the ledger is empty)."""


H, E, N, C = t.ledger_head, t.ledger_entries, t.ledger_nodes, t.checkpoints
_HEAD = Compiled(select(H.c.size, H.c.origin, H.c.checkpoint_every).where(H.c.id == 1))
_HEAD_ROWS = select(H.c.id, H.c.size, H.c.origin)
_LAST_LEAF = select(E.c.leaf_hash).where(E.c.seq == H.c.size - 1).scalar_subquery()
_LOCK_HEAD = Compiled(
    select(H.c.size, H.c.checkpoint_every, H.c.origin, _LAST_LEAF)
    .where(H.c.id == 1)
    .with_for_update()
)
_ENTRY_KEYS = ["seq", "type", "subject", "actor", "time", "body", "leaf_hash"]
_ENTRY_COLUMNS = [E.c[key] for key in _ENTRY_KEYS]
_ENTRIES_FROM = select(*_ENTRY_COLUMNS).where(E.c.seq >= bindparam("start")).order_by(E.c.seq)
_ENTRIES_RANGE = Compiled(_ENTRIES_FROM.where(E.c.seq < bindparam("stop")))
_ENTRIES_FOR = Compiled(
    select(*_ENTRY_COLUMNS).where(E.c.subject == bindparam("subject")).order_by(E.c.seq)
)
_ALL_ENTRIES = select(*_ENTRY_COLUMNS).order_by(E.c.seq)
_ALL_NODES = select(N.c.level, N.c.idx, N.c.hash)
_CHECKPOINTS = Compiled(select(C).order_by(C.c.tree_size))
_LATEST_CHECKPOINT = Compiled(select(C).order_by(C.c.tree_size.desc()).limit(1))
_INSERT_ENTRY = Compiled(insert(E), _ENTRY_KEYS)
_INSERT_NODES = Compiled(insert(N), ["level", "idx", "hash"])
_INSERT_CHECKPOINT = Compiled(insert(C), [c.name for c in C.c])
_GROW_HEAD = Compiled(update(H).where(H.c.id == 1).values(size=bindparam("new_size")))
# Lock and grow the head in one statement; RETURNING sees the new size, so the
# newest leaf before the claim is entry ``size - 2``.
_CLAIM = Compiled(
    update(H)
    .where(H.c.id == 1)
    .values(size=H.c.size + 1)
    .returning(
        H.c.size,
        H.c.checkpoint_every,
        H.c.origin,
        select(E.c.leaf_hash).where(E.c.seq == H.c.size - 2).scalar_subquery(),
    )
)
_UNCLAIM = Compiled(update(H).where(H.c.id == 1).values(size=H.c.size - 1))
_ENTRIES_FROM_RUN = Compiled(_ENTRIES_FROM)


@lru_cache(maxsize=256)
def _nodes_query(count: int) -> Compiled:
    """``(level, idx)`` lookups for ``count`` keys, as an OR of primary-key matches.

    Not ``(level, idx) IN (VALUES …)``: SQLite answers that with a full scan of
    the table, while it answers the OR with one index search per key.
    """
    keys = [
        and_(N.c.level == bindparam(f"l{i}"), N.c.idx == bindparam(f"i{i}")) for i in range(count)
    ]
    return Compiled(select(N.c.level, N.c.idx, N.c.hash).where(or_(*keys)))


class LedgerReads:
    """Ledger queries; ``conn`` is the transaction's connection."""

    conn: Connection

    def ledger_size(self) -> int:
        """Number of entries in the ledger."""
        row = _HEAD(self.conn).first()
        return int(row.size) if row else 0

    def ledger_origin(self) -> str | None:
        """The log identity written at initialisation, or None before it."""
        row = _HEAD(self.conn).first()
        return row.origin if row else None

    def checkpoint_every(self) -> int | None:
        """How often this home signs checkpoints (fixed at ``charter init``)."""
        row = _HEAD(self.conn).first()
        return row.checkpoint_every if row else None

    def ledger_heads(self) -> list[tuple[Any, Any, Any]]:
        """Every raw ``(id, size, origin)`` row of the head table (one is expected)."""
        return [(r[0], r[1], r[2]) for r in raw_rows(self.conn, _HEAD_ROWS)]

    def entries(self, start: int = 0, stop: int | None = None) -> list[LedgerRecord]:
        """Return ledger entries with ``start <= seq < stop``, in order."""
        if stop is None:
            rows = _ENTRIES_FROM_RUN(self.conn, {"start": start})
        else:
            rows = _ENTRIES_RANGE(self.conn, {"start": start, "stop": stop})
        return [LedgerRecord(*r) for r in rows]

    def iter_entries(self) -> Iterator[tuple[Any, ...]]:
        """Yield every entry as a raw ``(seq, type, subject, actor, time, body, leaf_hash)``.

        Rows stream from the cursor in batches and are not type-checked (a
        tampered row may hold anything), so a verifier can look at each once and
        drop it. Consume the iterator inside the transaction.
        """
        return raw_rows(self.conn, _ALL_ENTRIES)

    def entries_for(self, subject: str) -> list[LedgerRecord]:
        """Return the entries about ``subject``, in order."""
        return [LedgerRecord(*r) for r in _ENTRIES_FOR(self.conn, {"subject": subject})]

    def get_nodes(self, keys: Sequence[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        """Return stored subtree hashes for the (level, idx) keys that exist, in one query."""
        unique = list(dict.fromkeys(keys))
        if not unique:
            return {}
        params: dict[str, int] = {}
        for i, (level, idx) in enumerate(unique):
            params[f"l{i}"], params[f"i{i}"] = level, idx
        rows = _nodes_query(len(unique))(self.conn, params)
        return {(level, idx): value for level, idx, value in rows}

    def iter_nodes(self) -> Iterator[tuple[Any, ...]]:
        """Yield every stored subtree hash as a raw ``(level, idx, hash)`` row.

        For verification: rows stream in batches, unchecked (see :meth:`iter_entries`).
        """
        return raw_rows(self.conn, _ALL_NODES)

    def checkpoints(self) -> list[CheckpointRow]:
        """Return every signed checkpoint, oldest first."""
        return [_checkpoint(r) for r in _CHECKPOINTS(self.conn)]

    def latest_checkpoint(self) -> CheckpointRow | None:
        """Return the checkpoint with the largest tree size, or None."""
        r = _LATEST_CHECKPOINT(self.conn).first()
        return _checkpoint(r) if r else None


class LedgerWrites(LedgerReads):
    """Ledger changes, inside the caller's write transaction."""

    def init_ledger(self, origin: str, *, checkpoint_every: int) -> None:
        """Create the ledger head once (idempotent)."""
        if self.ledger_origin() is None:
            values = {"id": 1, "size": 0, "origin": origin, "checkpoint_every": checkpoint_every}
            self.conn.execute(insert(H).values(**values))

    def lock_ledger(self) -> int:
        """Lock the ledger head for this transaction and return the current size.

        Raises:
            StorageError: when the ledger was never initialised.
        """
        return self.lock_ledger_state().size

    def lock_ledger_state(self) -> LedgerHead:
        """Lock the ledger head; return it with the newest leaf hash, in one statement.

        Raises:
            StorageError: when the ledger was never initialised.
        """
        row = _LOCK_HEAD(self.conn).first()
        if row is None:
            raise StorageError("the ledger is not initialised: run `charter init`")
        return LedgerHead(int(row[0]), int(row[1]), row[2], row[3])

    def claim_ledger_slot(self) -> LedgerHead:
        """Lock the head and grow it by one, in one statement; return the head before.

        The returned ``size`` is the sequence number the caller must now store
        with :meth:`store_entry` in this transaction (or give back with
        :meth:`release_ledger_slot`). One statement instead of a locking read
        plus an update: on PostgreSQL the UPDATE takes the same row lock.

        Raises:
            StorageError: when the ledger was never initialised.
        """
        if not self.conn.dialect.update_returning:  # SQLite before 3.35: two statements
            head = self.lock_ledger_state()
            _GROW_HEAD(self.conn, {"new_size": head.size + 1})
            return head
        row = _CLAIM(self.conn).first()
        if row is None:
            raise StorageError("the ledger is not initialised: run `charter init`")
        return LedgerHead(int(row[0]) - 1, int(row[1]), row[2], row[3])

    def release_ledger_slot(self) -> None:
        """Undo :meth:`claim_ledger_slot` when no entry will be stored after all."""
        _UNCLAIM(self.conn)

    def append_entry(self, record: LedgerRecord, nodes: Sequence[tuple[int, int, bytes]]) -> None:
        """Store one entry with the subtree hashes it completes, and grow the head."""
        self.store_entry(record, nodes)
        _GROW_HEAD(self.conn, {"new_size": record.seq + 1})

    def store_entry(self, record: LedgerRecord, nodes: Sequence[tuple[int, int, bytes]]) -> None:
        """Store one entry and the subtree hashes it completes (the head is not touched)."""
        _INSERT_ENTRY(self.conn, {key: getattr(record, key) for key in _ENTRY_KEYS})
        rows = [{"level": level, "idx": idx, "hash": value} for level, idx, value in nodes]
        _INSERT_NODES(self.conn, rows)

    def add_checkpoint(self, row: CheckpointRow) -> None:
        """Store a signed checkpoint."""
        size, root, ts, key_id, sig = row
        params = {"tree_size": size, "root_hash": root, "timestamp": ts}
        _INSERT_CHECKPOINT(self.conn, {**params, "key_id": key_id, "signature": sig})


def _checkpoint(r: Any) -> CheckpointRow:
    return (r.tree_size, r.root_hash, r.timestamp, r.key_id, r.signature)
