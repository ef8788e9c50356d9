"""Tables of the metadata store (SQLAlchemy Core).

The Alembic migrations in ``migrations/versions`` create exactly these tables;
``tests/store/test_store.py`` checks the two agree.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
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
    "api_tokens",
    "approvals",
    "cards",
    "checkpoints",
    "datasets",
    "evaluation_runs",
    "files",
    "gate_decisions",
    "ledger_entries",
    "ledger_head",
    "ledger_nodes",
    "metadata",
    "model_targets",
    "models",
    "policies",
    "policy_assignments",
    "profile_entries",
    "stage_history",
    "stages",
    "tags",
    "users",
    "version_flags",
    "version_status",
    "versions",
    "webhook_cursor",
    "webhook_deliveries",
    "webhooks",
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

# One row. Writers are serialised before they read it (BEGIN IMMEDIATE on SQLite,
# an advisory lock on PostgreSQL: see charter.store.engine), and an append
# updates it in the same statement that reads it, so the log stays linear
# whatever the number of writers.
ledger_head = Table(
    "ledger_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("size", BigInteger, nullable=False),
    Column("origin", String(200), nullable=False),
    Column("checkpoint_every", Integer, nullable=False),
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

cards = Table(
    "model_cards",
    metadata,
    Column("version_id", Integer, ForeignKey("versions.id"), primary_key=True),
    Column("card_id", String(32), primary_key=True),
    Column("format", String(8), nullable=False),
    Column("digest", String(80), nullable=False),
    Column("profile_digest", String(80), nullable=False),
    Column("metadata_digest", String(80), nullable=False),
    Column("rendered_by", String(200), nullable=False),
    Column("rendered_at", String(32), nullable=False),
)

users = Table(
    "users",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("role", String(16), nullable=False),
    Column("updated_by", String(200), nullable=False),
    Column("updated_at", String(32), nullable=False),
)

policies = Table(
    "policies",
    metadata,
    Column("digest", String(80), primary_key=True),
    Column("text", Text, nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("created_at", String(32), nullable=False),
)

# scope "*" is the registry-wide default; otherwise a model name.
policy_assignments = Table(
    "policy_assignments",
    metadata,
    Column("scope", String(64), primary_key=True),
    Column("digest", String(80), ForeignKey("policies.digest"), nullable=False),
    Column("set_by", String(200), nullable=False),
    Column("set_at", String(32), nullable=False),
)

gate_decisions = Table(
    "gate_decisions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("version_id", Integer, ForeignKey("versions.id"), nullable=False),
    Column("stage", String(64), nullable=False),
    Column("policy_digest", String(80), nullable=False),
    Column("profile_digest", String(80), nullable=False),
    Column("passed", Boolean, nullable=False),
    Column("document", Text, nullable=False),
    Column("decided_by", String(200), nullable=False),
    Column("decided_at", String(32), nullable=False),
    Index("ix_gate_decisions_version_stage", "version_id", "stage"),
)

approvals = Table(
    "approvals",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("version_id", Integer, ForeignKey("versions.id"), nullable=False),
    Column("stage", String(64), nullable=False),
    Column("decision", String(16), nullable=False),
    Column("user", String(200), nullable=False),
    Column("role", String(16), nullable=False),
    Column("comment", Text, nullable=False),
    Column("profile_digest", String(80), nullable=False),
    Column("at", String(32), nullable=False),
    Index("ix_approvals_version_stage", "version_id", "stage"),
)

# The current holder of each stage. ``generation`` grows by one on every move,
# so a promotion is a compare-and-set on it: two concurrent moves cannot both win.
stages = Table(
    "stages",
    metadata,
    Column("model_id", Integer, ForeignKey("models.id"), primary_key=True),
    Column("stage", String(64), primary_key=True),
    Column("version_id", Integer, ForeignKey("versions.id"), nullable=False),
    Column("generation", Integer, nullable=False),
    Column("assigned_by", String(200), nullable=False),
    Column("assigned_at", String(32), nullable=False),
)

stage_history = Table(
    "stage_history",
    metadata,
    Column("model_id", Integer, ForeignKey("models.id"), primary_key=True),
    Column("stage", String(64), primary_key=True),
    Column("generation", Integer, primary_key=True, autoincrement=False),
    Column("version_id", Integer, ForeignKey("versions.id"), nullable=False),
    Column("action", String(16), nullable=False),
    Column("reason", Text, nullable=True),
    Column("gate_decision_id", Integer, nullable=True),
    Column("approval_ids", Text, nullable=False),
    Column("by", String(200), nullable=False),
    Column("at", String(32), nullable=False),
    Column("ledger_seq", BigInteger, nullable=False),
)

version_status = Table(
    "version_status",
    metadata,
    Column("version_id", Integer, ForeignKey("versions.id"), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("reason", Text, nullable=False),
    Column("by", String(200), nullable=False),
    Column("at", String(32), nullable=False),
)

evaluation_runs = Table(
    "evaluation_runs",
    metadata,
    Column("run_id", String(64), primary_key=True),
    Column("version_id", Integer, ForeignKey("versions.id"), nullable=False),
    Column("document", Text, nullable=False),
    Column("recorded_at", String(32), nullable=False),
    Index("ix_evaluation_runs_version", "version_id"),
)

# What a model declares for continuous red-teaming: target (never secrets) and packs.
model_targets = Table(
    "model_targets",
    metadata,
    Column("model_id", Integer, ForeignKey("models.id"), primary_key=True),
    Column("document", Text, nullable=False),
    Column("set_by", String(200), nullable=False),
    Column("set_at", String(32), nullable=False),
)

# -- server (0005) -----------------------------------------------------------
api_tokens = Table(
    "api_tokens",
    metadata,
    Column("token_id", String(32), primary_key=True),
    Column("user", String(200), nullable=False),
    Column("secret_hash", String(80), nullable=False),
    Column("label", String(200), nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("created_at", String(32), nullable=False),
    Column("expires_at", String(32), nullable=True),
    Column("revoked_by", String(200), nullable=True),
    Column("revoked_at", String(32), nullable=True),
    Index("ix_api_tokens_user", "user"),
)

version_flags = Table(
    "version_flags",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("version_id", Integer, ForeignKey("versions.id"), nullable=False),
    Column("at_risk", Boolean, nullable=False),
    Column("document", Text, nullable=False),
    Column("by", String(200), nullable=False),
    Column("at", String(32), nullable=False),
    Column("ledger_seq", BigInteger, nullable=False),
    Index("ix_version_flags_version", "version_id", "id"),
)

webhooks = Table(
    "webhooks",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("url", Text, nullable=False),
    Column("events", Text, nullable=False),
    Column("secret", Text, nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("created_at", String(32), nullable=False),
    Column("active", Boolean, nullable=False),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("webhook_id", Integer, ForeignKey("webhooks.id"), nullable=False),
    Column("ledger_seq", BigInteger, nullable=False),
    Column("event_type", String(64), nullable=False),
    Column("delivery_id", String(36), nullable=False, unique=True),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", String(32), nullable=False),
    Column("last_status_code", Integer, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("log", Text, nullable=False),
    Column("updated_at", String(32), nullable=False),
    UniqueConstraint("webhook_id", "ledger_seq", name="uq_webhook_deliveries_event"),
    Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
)

# -- search (0006): keyset-paginated, filtered version listings -------------------------
Index("ix_versions_model_id", versions.c.model_id, versions.c.id)
Index("ix_versions_state_id", versions.c.state, versions.c.id)
Index("ix_versions_model_state_id", versions.c.model_id, versions.c.state, versions.c.id)
Index("ix_version_tags_key_value", tags.c.key, tags.c.value, tags.c.version_id)

webhook_cursor = Table(
    "webhook_cursor",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("ledger_seq", BigInteger, nullable=False),
)
