"""Store queries for the audit ledger, mixed into the read and write transactions.

Rows only: entries, subtree hashes, the head and signed checkpoints, stored as
the journal hands them over; no Merkle arithmetic happens here.

Speed: every statement is built once, at import, with named ``bindparam``
placeholders (SQLAlchemy spends several times longer building a statement than
running it), and the same SQL runs on SQLite and PostgreSQL. Bulk reads for
verification go through :func:`raw_rows`: a parameterless statement, compiled
once per dialect, fetched from the driver cursor in batches.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from functools import lru_cache
from typing import Any, NamedTuple

from sqlalchemy import Connection, and_, bindparam, insert, or_, select, update

from charter.domain.entities import LedgerRecord
from charter.domain.errors import StorageError
from charter.store import schema as t

__all__ = ["CheckpointRow", "LedgerHead", "LedgerReads", "LedgerWrites", "raw_rows"]

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
_HEAD = select(H.c.size, H.c.origin, H.c.checkpoint_every).where(H.c.id == 1)
_HEAD_ROWS = select(H.c.id, H.c.size, H.c.origin)
_LAST_LEAF = select(E.c.leaf_hash).where(E.c.seq == H.c.size - 1).scalar_subquery()
_LOCK_HEAD = (
    select(H.c.size, H.c.checkpoint_every, H.c.origin, _LAST_LEAF)
    .where(H.c.id == 1)
    .with_for_update()
)
_ENTRY_COLUMNS = (E.c.seq, E.c.type, E.c.subject, E.c.actor, E.c.time, E.c.body, E.c.leaf_hash)
_ENTRIES_FROM = select(*_ENTRY_COLUMNS).where(E.c.seq >= bindparam("start")).order_by(E.c.seq)
_ENTRIES_RANGE = _ENTRIES_FROM.where(E.c.seq < bindparam("stop"))
_ENTRIES_FOR = select(*_ENTRY_COLUMNS).where(E.c.subject == bindparam("subject")).order_by(E.c.seq)
_ALL_ENTRIES = select(*_ENTRY_COLUMNS).order_by(E.c.seq)
_ALL_NODES = select(N.c.level, N.c.idx, N.c.hash)
_CHECKPOINTS = select(C).order_by(C.c.tree_size)
_LATEST_CHECKPOINT = select(C).order_by(C.c.tree_size.desc()).limit(1)
_INSERT_ENTRY, _INSERT_NODES, _INSERT_CHECKPOINT = insert(E), insert(N), insert(C)
_GROW_HEAD = update(H).where(H.c.id == 1).values(size=bindparam("new_size"))


@lru_cache(maxsize=256)
def _nodes_query(count: int) -> Any:
    """``(level, idx)`` lookups for ``count`` keys, as an OR of primary-key matches.

    Not ``(level, idx) IN (VALUES …)``: SQLite answers that with a full scan of
    the table, while it answers the OR with one index search per key.
    """
    keys = [
        and_(N.c.level == bindparam(f"l{i}"), N.c.idx == bindparam(f"i{i}")) for i in range(count)
    ]
    return select(N.c.level, N.c.idx, N.c.hash).where(or_(*keys))


_RAW_SQL: dict[tuple[int, str], str] = {}


def raw_rows(conn: Connection, stmt: Any) -> Iterator[tuple[Any, ...]]:
    """Rows of a parameterless module-level statement, straight from the driver cursor.

    Skips SQLAlchemy's per-row work, which costs more than the driver's own on
    100k-row reads. Runs inside the connection's transaction (begun here if
    nothing ran yet, so every bulk read of one verification sees one snapshot).

    Args:
        conn: the transaction's connection.
        stmt: a statement without bind parameters, kept alive by the caller
            (compiled SQL is cached by its identity and dialect).
    """
    key = (id(stmt), conn.dialect.name)
    sql = _RAW_SQL.get(key)
    if sql is None:
        compiled = stmt.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True})
        sql = _RAW_SQL[key] = str(compiled)
    if not conn.in_transaction():
        conn.begin()
    cursor = conn.connection.cursor()
    try:
        cursor.execute(sql)
        while batch := cursor.fetchmany(2000):
            yield from batch
    finally:
        cursor.close()


class LedgerReads:
    """Ledger queries; ``conn`` is the transaction's connection."""

    conn: Connection

    def ledger_size(self) -> int:
        """Number of entries in the ledger."""
        row = self.conn.execute(_HEAD).first()
        return int(row.size) if row else 0

    def ledger_origin(self) -> str | None:
        """The log identity written at initialisation, or None before it."""
        row = self.conn.execute(_HEAD).first()
        return row.origin if row else None

    def checkpoint_every(self) -> int | None:
        """How often this home signs checkpoints (fixed at ``charter init``)."""
        row = self.conn.execute(_HEAD).first()
        return row.checkpoint_every if row else None

    def ledger_heads(self) -> list[tuple[Any, Any, Any]]:
        """Every raw ``(id, size, origin)`` row of the head table (one is expected)."""
        return [(r[0], r[1], r[2]) for r in raw_rows(self.conn, _HEAD_ROWS)]

    def entries(self, start: int = 0, stop: int | None = None) -> list[LedgerRecord]:
        """Return ledger entries with ``start <= seq < stop``, in order."""
        if stop is None:
            rows = self.conn.execute(_ENTRIES_FROM, {"start": start})
        else:
            rows = self.conn.execute(_ENTRIES_RANGE, {"start": start, "stop": stop})
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
        return [LedgerRecord(*r) for r in self.conn.execute(_ENTRIES_FOR, {"subject": subject})]

    def get_nodes(self, keys: Sequence[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        """Return stored subtree hashes for the (level, idx) keys that exist, in one query."""
        unique = list(dict.fromkeys(keys))
        if not unique:
            return {}
        params: dict[str, int] = {}
        for i, (level, idx) in enumerate(unique):
            params[f"l{i}"], params[f"i{i}"] = level, idx
        rows = self.conn.execute(_nodes_query(len(unique)), params)
        return {(level, idx): value for level, idx, value in rows}

    def iter_nodes(self) -> Iterator[tuple[Any, ...]]:
        """Yield every stored subtree hash as a raw ``(level, idx, hash)`` row.

        For verification: rows stream in batches, unchecked (see :meth:`iter_entries`).
        """
        return raw_rows(self.conn, _ALL_NODES)

    def all_nodes(self) -> dict[tuple[int, int], bytes]:
        """Return every stored subtree hash (for verification)."""
        return {(level, idx): value for level, idx, value in raw_rows(self.conn, _ALL_NODES)}

    def checkpoints(self) -> list[CheckpointRow]:
        """Return every signed checkpoint, oldest first."""
        return [_checkpoint(r) for r in self.conn.execute(_CHECKPOINTS)]

    def latest_checkpoint(self) -> CheckpointRow | None:
        """Return the checkpoint with the largest tree size, or None."""
        r = self.conn.execute(_LATEST_CHECKPOINT).first()
        return _checkpoint(r) if r else None


class LedgerWrites(LedgerReads):
    """Ledger changes, inside the caller's write transaction."""

    def init_ledger(self, origin: str, *, checkpoint_every: int) -> None:
        """Create the ledger head once (idempotent)."""
        if self.ledger_origin() is None:
            self.conn.execute(
                insert(H).values(id=1, size=0, origin=origin, checkpoint_every=checkpoint_every)
            )

    def lock_ledger(self) -> int:
        """Lock the ledger head for this transaction and return the current size.

        Raises:
            StorageError: when the ledger was never initialised.
        """
        return self.lock_ledger_state().size

    def lock_ledger_head(self) -> tuple[int, int]:
        """Lock the ledger head; return (size, checkpoint interval).

        Raises:
            StorageError: when the ledger was never initialised.
        """
        head = self.lock_ledger_state()
        return head.size, head.checkpoint_every

    def lock_ledger_state(self) -> LedgerHead:
        """Lock the ledger head; return it with the newest leaf hash, in one statement.

        Raises:
            StorageError: when the ledger was never initialised.
        """
        row = self.conn.execute(_LOCK_HEAD).first()
        if row is None:
            raise StorageError("the ledger is not initialised: run `charter init`")
        return LedgerHead(int(row[0]), int(row[1]), row[2], row[3])

    def append_entry(self, record: LedgerRecord, nodes: Sequence[tuple[int, int, bytes]]) -> None:
        """Store one entry with the subtree hashes it completes, and grow the head."""
        self.conn.execute(
            _INSERT_ENTRY,
            {
                "seq": record.seq,
                "type": record.type,
                "subject": record.subject,
                "actor": record.actor,
                "time": record.time,
                "body": record.body,
                "leaf_hash": record.leaf_hash,
            },
        )
        rows = [{"level": level, "idx": idx, "hash": value} for level, idx, value in nodes]
        self.conn.execute(_INSERT_NODES, rows)
        self.conn.execute(_GROW_HEAD, {"new_size": record.seq + 1})

    def add_checkpoint(self, row: CheckpointRow) -> None:
        """Store a signed checkpoint."""
        size, root, ts, key_id, sig = row
        params = {"tree_size": size, "root_hash": root, "timestamp": ts}
        self.conn.execute(_INSERT_CHECKPOINT, {**params, "key_id": key_id, "signature": sig})


def _checkpoint(r: Any) -> CheckpointRow:
    return (r.tree_size, r.root_hash, r.timestamp, r.key_id, r.signature)
