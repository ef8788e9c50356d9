"""Metadata store: one implementation for SQLite and PostgreSQL.

Rows become domain entities at this boundary. A write happens inside
``Store.write()``; the service puts every state change and its ledger entry in
the same transaction (invariant 3). This module knows nothing of Merkle trees:
it stores entries, node hashes and checkpoints as the service hands them over.

The queries themselves live in mixins, one module per concern:
:mod:`charter.store._versions` (models, versions, files),
:mod:`charter.store._ledger` (entries, subtree hashes, checkpoints),
:mod:`charter.store.profiles` and :mod:`charter.store.gates`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DatabaseError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from charter.domain.errors import (
    AlreadyExistsError,
    ImmutableError,
    InvalidInputError,
    StorageError,
)
from charter.store._ledger import CheckpointRow, LedgerHead, LedgerReads, LedgerWrites
from charter.store._versions import VersionReads, VersionWrites
from charter.store._wal import WalCheckpointer
from charter.store.access import AccessRows
from charter.store.engine import create_store_engine, migrate, pending_migrations
from charter.store.gates import GateRows
from charter.store.profiles import CardRows, ProfileReads, ProfileWrites
from charter.store.search import SearchReads
from charter.store.webhooks import WebhookRows

__all__ = ["CheckpointRow", "LedgerHead", "ReadTx", "Store", "WriteTx"]


class Store:
    """Metadata persistence chosen by URL.

    Example:
        >>> store = Store("sqlite:///:memory:")
        >>> store.migrate()
        >>> with store.read() as tx:
        ...     tx.list_models()
        []
    """

    def __init__(self, url: str, *, synchronous: str = "NORMAL", busy_timeout_s: float = 30.0):
        self.url = url
        self.engine: Engine = create_store_engine(
            url, synchronous=synchronous, busy_timeout_s=busy_timeout_s
        )
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        database = self.engine.url.database if self.is_sqlite else None
        self._checkpointer = (
            WalCheckpointer(Path(database)) if database and database != ":memory:" else None
        )

    def migrate(self) -> None:
        """Bring the schema to the newest revision.

        Raises:
            StorageError: when the database cannot be read or migrated.
        """
        try:
            if pending_migrations(self.engine):
                migrate(self.engine)
        except (DatabaseError, OperationalError) as exc:
            raise StorageError(
                f"cannot open the registry database: {_reason(exc)}", url=self.url
            ) from None

    def schema_current(self) -> bool:
        """True when the database is at the newest schema revision.

        Raises:
            StorageError: when the database cannot be read.
        """
        try:
            return not pending_migrations(self.engine)
        except (DatabaseError, OperationalError) as exc:
            raise StorageError(
                f"cannot open the registry database: {_reason(exc)}", url=self.url
            ) from None

    def close(self) -> None:
        """Release pooled connections (and stop the WAL checkpoint thread)."""
        if self._checkpointer is not None:
            self._checkpointer.stop()
        self.engine.dispose()

    @contextmanager
    def read(self) -> Iterator[ReadTx]:
        """Open a read transaction."""
        options = {} if self.is_sqlite else _PG_READ
        try:
            with self.engine.connect().execution_options(**options) as conn:
                yield ReadTx(conn)
        except (DatabaseError, OperationalError) as exc:
            _refuse_nul(exc)
            raise StorageError(f"database read failed: {_reason(exc)}", url=self.url) from None
        except PoolTimeoutError:
            raise _busy(self.url) from None

    @contextmanager
    def write(self) -> Iterator[WriteTx]:
        """Open a write transaction; everything inside commits or nothing does."""
        options = {"sqlite_begin": "IMMEDIATE"} if self.is_sqlite else {"charter_writer": True}
        if self._checkpointer is not None:
            self._checkpointer.start()  # a process that only reads never needs it
        try:
            with self.engine.connect().execution_options(**options) as conn, conn.begin():
                yield WriteTx(conn)
        except (DatabaseError, OperationalError) as exc:  # IntegrityError included
            _refuse_nul(exc)
            reason = _reason(exc)
            if any(phrase in reason for phrase in _GUARD_PHRASES):
                # A write that raced a publish (or sealing) met the database's own guard.
                raise ImmutableError(f"refused by the database: {reason}") from None
            if isinstance(exc, IntegrityError):
                raise AlreadyExistsError(
                    f"a concurrent change created the same record: {reason}"
                ) from None
            raise StorageError(f"database write failed: {reason}", url=self.url) from None
        except PoolTimeoutError:
            raise _busy(self.url) from None


# One snapshot for every statement of a read (see charter.store.engine).
_PG_READ = {"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}


# Words of the append-only / immutability triggers (migrations 0001-0005).
_GUARD_PHRASES = ("immutable", "append-only", "sealed", "never edited", "are permanent")


def _refuse_nul(exc: Exception) -> None:
    """PostgreSQL text cannot hold NUL (SQLite can): refuse it as bad input, alike."""
    if "NUL" in _reason(exc) and "0x00" in _reason(exc):
        raise InvalidInputError(
            "text may not contain NUL characters", field="text", valid="text without U+0000"
        ) from None


def _busy(url: str) -> StorageError:
    return StorageError(
        "the database is busy: no connection came free within the pool's timeout; retry",
        url=url,
    )


def _reason(exc: Exception) -> str:
    orig = getattr(exc, "orig", None)
    return str(orig or exc).splitlines()[0]


class ReadTx(
    VersionReads,
    LedgerReads,
    ProfileReads,
    CardRows,
    GateRows,
    AccessRows,
    WebhookRows,
    SearchReads,
):
    """Queries, inside one transaction."""

    def __init__(self, conn: Connection):
        self.conn = conn


class WriteTx(ReadTx, VersionWrites, LedgerWrites, ProfileWrites):
    """Changes, inside one transaction that the service also writes the ledger in."""
