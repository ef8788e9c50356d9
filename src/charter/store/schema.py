"""Tables of the metadata store (SQLAlchemy Core).

The Alembic migrations in ``migrations/versions`` create exactly these tables;
``tests/store/test_migrations.py`` checks the two agree.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

__all__ = [
    "amendments",
    "checkpoints",
    "datasets",
    "files",
    "ledger_entries",
    "ledger_head",
    "ledger_nodes",
    "metadata",
    "models",
    "profile_entries",
    "tags",
    "versions",
]

metadata = MetaData()

models = Table(
    "models",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("description", Text, nullable=False),
    Column("owner", String(200), nullable=False),
    Column("risk_tier", String(16), nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("created_at", String(32), nullable=False),
)

versions = Table(
    "versions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("model_id", Integer, ForeignKey("models.id"), nullable=False),
    Column("version", String(128), nullable=False),
    Column("state", String(16), nullable=False),
    Column("parent_id", Integer, ForeignKey("versions.id"), nullable=True),
    Column("change_kind", String(16), nullable=True),
    Column("fp_architecture", String(80), nullable=False),
    Column("fp_data", String(80), nullable=False),
    Column("fp_config", String(80), nullable=False),
    Column("architecture_method", String(32), nullable=False),
    Column("manifest_digest", String(80), nullable=False),
    Column("file_count", Integer, nullable=False),
    Column("total_size", BigInteger, nullable=False),
    Column("run_id", String(200), nullable=True),
    Column("commit_sha", String(80), nullable=True),
    Column("params", Text, nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("created_at", String(32), nullable=False),
    Column("published_by", String(200), nullable=True),
    Column("published_at", String(32), nullable=True),
    Column("baseline_digest", String(80), nullable=True),
    UniqueConstraint("model_id", "version", name="uq_versions_model_version"),
    Index("ix_versions_parent", "parent_id"),
)

files = Table(
    "version_files",
    metadata,
    Column("version_id", Integer, ForeignKey("versions.id"), primary_key=True),
    Column("path", String(1024), primary_key=True),
    Column("digest", String(80), nullable=False),
    Column("size", BigInteger, nullable=False),
    Index("ix_version_files_digest", "digest"),
)

datasets = Table(
    "version_datasets",
    metadata,
    Column("version_id", Integer, ForeignKey("versions.id"), primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("name", String(200), nullable=False),
    Column("role", String(32), nullable=False),
    Column("uri", Text, nullable=False),
    Column("digest", String(80), nullable=True),
    Column("size", BigInteger, nullable=True),
    Index("ix_version_datasets_digest", "digest"),
)

tags = Table(
    "version_tags",
    metadata,
    Column("version_id", Integer, ForeignKey("versions.id"), primary_key=True),
    Column("key", String(128), primary_key=True),
    Column("value", Text, nullable=False),
)

ledger_entries = Table(
    "ledger_entries",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("type", String(64), nullable=False),
    Column("subject", String(400), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("time", String(32), nullable=False),
    Column("body", LargeBinary, nullable=False),
    Column("leaf_hash", LargeBinary(32), nullable=False),
    Index("ix_ledger_entries_subject", "subject"),
)

# Hashes of complete, aligned subtrees: (level, idx) covers leaves
# [idx * 2**level, (idx + 1) * 2**level). They make appends O(log n) and
# proofs answerable without rebuilding the tree.
ledger_nodes = Table(
    "ledger_nodes",
    metadata,
    Column("level", Integer, primary_key=True, autoincrement=False),
    Column("idx", BigInteger, primary_key=True, autoincrement=False),
    Column("hash", LargeBinary(32), nullable=False),
)

# One row. Writers lock it (SELECT … FOR UPDATE on PostgreSQL; BEGIN IMMEDIATE
# on SQLite) so the log stays linear whatever the number of writers.
ledger_head = Table(
    "ledger_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("size", BigInteger, nullable=False),
    Column("origin", String(200), nullable=False),
)

checkpoints = Table(
    "ledger_checkpoints",
    metadata,
    Column("tree_size", BigInteger, primary_key=True, autoincrement=False),
    Column("root_hash", LargeBinary(32), nullable=False),
    Column("timestamp", String(32), nullable=False),
    Column("key_id", String(32), nullable=False),
    Column("signature", LargeBinary, nullable=False),
)

profile_entries = Table(
    "profile_entries",
    metadata,
    Column("version_id", Integer, ForeignKey("versions.id"), primary_key=True),
    Column("entry_id", String(32), primary_key=True),
    Column("section", String(32), nullable=False),
    Column("body", Text, nullable=False),
    Column("amendment_id", String(32), nullable=True),
    Column("recorded_at", String(32), nullable=False),
)

amendments = Table(
    "profile_amendments",
    metadata,
    Column("version_id", Integer, ForeignKey("versions.id"), primary_key=True),
    Column("amendment_id", String(32), primary_key=True),
    Column("reason", Text, nullable=False),
    Column("evidence", Text, nullable=False),
    Column("retracts", Text, nullable=False),
    Column("author", String(200), nullable=False),
    Column("created_at", String(32), nullable=False),
)
