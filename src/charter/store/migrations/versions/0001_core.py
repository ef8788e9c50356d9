"""Core registry: models, versions, files, datasets, tags and the ledger.

Revision ID: 0001_core
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_core"
down_revision = None
branch_labels = None
depends_on = None

# Defence in depth for invariant 1: even a buggy code path (or a hand-typed SQL
# statement) cannot change a published version or rewrite the ledger. An
# attacker with raw database access can drop these; `charter audit verify`
# catches that case.
_SQLITE_TRIGGERS = [
    """CREATE TRIGGER versions_published_no_update BEFORE UPDATE ON versions
       WHEN OLD.state = 'published'
       BEGIN SELECT RAISE(ABORT, 'published version is immutable'); END""",
    """CREATE TRIGGER versions_published_no_delete BEFORE DELETE ON versions
       WHEN OLD.state = 'published'
       BEGIN SELECT RAISE(ABORT, 'published version is immutable'); END""",
    *[
        # Names come from the literals below, never from input.
        f"""CREATE TRIGGER {table}_published_no_{op_name} BEFORE {op_name.upper()} ON {table}
       WHEN (SELECT state FROM versions WHERE id = {row}.version_id) = 'published'
       BEGIN SELECT RAISE(ABORT, 'published version is immutable'); END"""  # noqa: S608
        for table in ("version_files", "version_datasets")
        for op_name, row in (("insert", "NEW"), ("update", "OLD"), ("delete", "OLD"))
    ],
    """CREATE TRIGGER ledger_entries_no_update BEFORE UPDATE ON ledger_entries
       BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END""",
    """CREATE TRIGGER ledger_entries_no_delete BEFORE DELETE ON ledger_entries
       BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END""",
]

_PG_TRIGGERS = [
    """CREATE FUNCTION charter_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN RAISE EXCEPTION '%', TG_ARGV[0]; END $$""",
    """CREATE FUNCTION charter_refuse_published_child() RETURNS trigger LANGUAGE plpgsql AS $$
       DECLARE vid integer;
       BEGIN
         IF TG_OP = 'INSERT' THEN vid := NEW.version_id; ELSE vid := OLD.version_id; END IF;
         IF (SELECT state FROM versions WHERE id = vid) = 'published' THEN
           RAISE EXCEPTION 'published version is immutable';
         END IF;
         IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
         RETURN NEW;
       END $$""",
    """CREATE TRIGGER versions_published_frozen BEFORE UPDATE OR DELETE ON versions
       FOR EACH ROW WHEN (OLD.state = 'published')
       EXECUTE FUNCTION charter_refuse('published version is immutable')""",
    """CREATE TRIGGER version_files_frozen BEFORE INSERT OR UPDATE OR DELETE ON version_files
       FOR EACH ROW EXECUTE FUNCTION charter_refuse_published_child()""",
    """CREATE TRIGGER version_datasets_frozen BEFORE INSERT OR UPDATE OR DELETE
       ON version_datasets FOR EACH ROW EXECUTE FUNCTION charter_refuse_published_child()""",
    """CREATE TRIGGER ledger_entries_append_only BEFORE UPDATE OR DELETE ON ledger_entries
       FOR EACH ROW EXECUTE FUNCTION charter_refuse('the ledger is append-only')""",
]


def upgrade() -> None:
    op.create_table(
        "models",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("owner", sa.String(200), nullable=False),
        sa.Column("risk_tier", sa.String(16), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
    )
    op.create_table(
        "versions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("model_id", sa.Integer, sa.ForeignKey("models.id"), nullable=False),
        sa.Column("version", sa.String(128), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("parent_id", sa.Integer, sa.ForeignKey("versions.id"), nullable=True),
        sa.Column("change_kind", sa.String(16), nullable=True),
        sa.Column("fp_architecture", sa.String(80), nullable=False),
        sa.Column("fp_data", sa.String(80), nullable=False),
        sa.Column("fp_config", sa.String(80), nullable=False),
        sa.Column("architecture_method", sa.String(32), nullable=False),
        sa.Column("manifest_digest", sa.String(80), nullable=False),
        sa.Column("file_count", sa.Integer, nullable=False),
        sa.Column("total_size", sa.BigInteger, nullable=False),
        sa.Column("run_id", sa.String(200), nullable=True),
        sa.Column("commit_sha", sa.String(80), nullable=True),
        sa.Column("params", sa.Text, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("published_by", sa.String(200), nullable=True),
        sa.Column("published_at", sa.String(32), nullable=True),
        sa.UniqueConstraint("model_id", "version", name="uq_versions_model_version"),
    )
    op.create_index("ix_versions_parent", "versions", ["parent_id"])
    op.create_table(
        "version_files",
        sa.Column("version_id", sa.Integer, sa.ForeignKey("versions.id"), primary_key=True),
        sa.Column("path", sa.String(1024), primary_key=True),
        sa.Column("digest", sa.String(80), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_version_files_digest", "version_files", ["digest"])
    op.create_table(
        "version_datasets",
        sa.Column("version_id", sa.Integer, sa.ForeignKey("versions.id"), primary_key=True),
        sa.Column("position", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("uri", sa.Text, nullable=False),
        sa.Column("digest", sa.String(80), nullable=True),
        sa.Column("size", sa.BigInteger, nullable=True),
    )
    op.create_index("ix_version_datasets_digest", "version_datasets", ["digest"])
    op.create_table(
        "version_tags",
        sa.Column("version_id", sa.Integer, sa.ForeignKey("versions.id"), primary_key=True),
        sa.Column("key", sa.String(128), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.create_table(
        "ledger_entries",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(400), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("time", sa.String(32), nullable=False),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.Column("leaf_hash", sa.LargeBinary(32), nullable=False),
    )
    op.create_index("ix_ledger_entries_subject", "ledger_entries", ["subject"])
    op.create_table(
        "ledger_nodes",
        sa.Column("level", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("idx", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("hash", sa.LargeBinary(32), nullable=False),
    )
    op.create_table(
        "ledger_head",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("origin", sa.String(200), nullable=False),
        sa.Column("checkpoint_every", sa.Integer, nullable=False),
    )
    op.create_table(
        "ledger_checkpoints",
        sa.Column("tree_size", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("root_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("timestamp", sa.String(32), nullable=False),
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("signature", sa.LargeBinary, nullable=False),
    )
    triggers = _PG_TRIGGERS if op.get_bind().dialect.name == "postgresql" else _SQLITE_TRIGGERS
    for statement in triggers:
        op.execute(statement)


def downgrade() -> None:
    for table in (
        "ledger_checkpoints",
        "ledger_head",
        "ledger_nodes",
        "ledger_entries",
        "version_tags",
        "version_datasets",
        "version_files",
        "versions",
        "models",
    ):
        op.drop_table(table)
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS charter_refuse_published_child()")
        op.execute("DROP FUNCTION IF EXISTS charter_refuse()")
