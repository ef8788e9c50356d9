"""Safety profiles (entries, amendments, sealed baseline digest) and model cards.

Revision ID: 0002_profiles
Revises: 0001_core
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_profiles"
down_revision = "0001_core"
branch_labels = None
depends_on = None

# Invariant 1 for profiles: once a version is published its baseline entries
# are sealed (no insert without an amendment, no update, no delete) and
# amendments are append-only.
_SQLITE_TRIGGERS = [
    """CREATE TRIGGER profile_baseline_sealed BEFORE INSERT ON profile_entries
       WHEN NEW.amendment_id IS NULL
        AND (SELECT state FROM versions WHERE id = NEW.version_id) = 'published'
       BEGIN SELECT RAISE(ABORT, 'the baseline of a published version is sealed'); END""",
    """CREATE TRIGGER profile_entries_no_update BEFORE UPDATE ON profile_entries
       BEGIN SELECT RAISE(ABORT, 'profile entries are never edited: amend instead'); END""",
    """CREATE TRIGGER profile_entries_published_no_delete BEFORE DELETE ON profile_entries
       WHEN (SELECT state FROM versions WHERE id = OLD.version_id) = 'published'
       BEGIN SELECT RAISE(ABORT, 'profile entries of a published version are permanent'); END""",
    """CREATE TRIGGER amendments_no_update BEFORE UPDATE ON profile_amendments
       BEGIN SELECT RAISE(ABORT, 'amendments are append-only'); END""",
    """CREATE TRIGGER amendments_no_delete BEFORE DELETE ON profile_amendments
       BEGIN SELECT RAISE(ABORT, 'amendments are append-only'); END""",
    """CREATE TRIGGER model_cards_no_update BEFORE UPDATE ON model_cards
       BEGIN SELECT RAISE(ABORT, 'rendered cards are append-only'); END""",
]

_PG_TRIGGERS = [
    """CREATE FUNCTION charter_profile_guard() RETURNS trigger LANGUAGE plpgsql AS $$
       DECLARE vid integer; st text;
       BEGIN
         IF TG_OP = 'UPDATE' THEN
           RAISE EXCEPTION 'profile entries are never edited: amend instead';
         END IF;
         IF TG_OP = 'INSERT' THEN vid := NEW.version_id; ELSE vid := OLD.version_id; END IF;
         SELECT state INTO st FROM versions WHERE id = vid;
         IF TG_OP = 'INSERT' AND NEW.amendment_id IS NULL AND st = 'published' THEN
           RAISE EXCEPTION 'the baseline of a published version is sealed';
         END IF;
         IF TG_OP = 'DELETE' AND st = 'published' THEN
           RAISE EXCEPTION 'profile entries of a published version are permanent';
         END IF;
         IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
         RETURN NEW;
       END $$""",
    """CREATE TRIGGER profile_entries_guard BEFORE INSERT OR UPDATE OR DELETE ON profile_entries
       FOR EACH ROW EXECUTE FUNCTION charter_profile_guard()""",
    """CREATE TRIGGER amendments_append_only BEFORE UPDATE OR DELETE ON profile_amendments
       FOR EACH ROW EXECUTE FUNCTION charter_refuse('amendments are append-only')""",
    """CREATE TRIGGER model_cards_append_only BEFORE UPDATE ON model_cards
       FOR EACH ROW EXECUTE FUNCTION charter_refuse('rendered cards are append-only')""",
]


def upgrade() -> None:
    with op.batch_alter_table("versions") as batch:
        batch.add_column(sa.Column("baseline_digest", sa.String(80), nullable=True))
    op.create_table(
        "profile_amendments",
        sa.Column("version_id", sa.Integer, sa.ForeignKey("versions.id"), primary_key=True),
        sa.Column("amendment_id", sa.String(32), primary_key=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("evidence", sa.Text, nullable=False),
        sa.Column("retracts", sa.Text, nullable=False),
        sa.Column("author", sa.String(200), nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
    )
    op.create_table(
        "profile_entries",
        sa.Column("version_id", sa.Integer, sa.ForeignKey("versions.id"), primary_key=True),
        sa.Column("entry_id", sa.String(32), primary_key=True),
        sa.Column("section", sa.String(32), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("amendment_id", sa.String(32), nullable=True),
        sa.Column("recorded_at", sa.String(32), nullable=False),
    )
    op.create_table(
        "model_cards",
        sa.Column("version_id", sa.Integer, sa.ForeignKey("versions.id"), primary_key=True),
        sa.Column("card_id", sa.String(32), primary_key=True),
        sa.Column("format", sa.String(8), nullable=False),
        sa.Column("digest", sa.String(80), nullable=False),
        sa.Column("profile_digest", sa.String(80), nullable=False),
        sa.Column("metadata_digest", sa.String(80), nullable=False),
        sa.Column("rendered_by", sa.String(200), nullable=False),
        sa.Column("rendered_at", sa.String(32), nullable=False),
    )
    triggers = _PG_TRIGGERS if op.get_bind().dialect.name == "postgresql" else _SQLITE_TRIGGERS
    for statement in triggers:
        op.execute(statement)


def downgrade() -> None:
    op.drop_table("model_cards")
    op.drop_table("profile_entries")
    op.drop_table("profile_amendments")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS charter_profile_guard()")
    with op.batch_alter_table("versions") as batch:
        batch.drop_column("baseline_digest")
