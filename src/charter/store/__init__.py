"""Metadata persistence (SQLAlchemy Core + Alembic) for SQLite and PostgreSQL."""

from charter.store.store import CheckpointRow, LedgerHead, ReadTx, Store, WriteTx

__all__ = ["CheckpointRow", "LedgerHead", "ReadTx", "Store", "WriteTx"]
