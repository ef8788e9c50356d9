"""Metadata persistence (SQLAlchemy Core + Alembic) for SQLite and PostgreSQL."""

from charter.store.store import CheckpointRow, ReadTx, Store, WriteTx

__all__ = ["CheckpointRow", "ReadTx", "Store", "WriteTx"]
