"""Search: indexes for filtered, keyset-paginated version listings.

``WHERE model_id = ? [AND state = ?] ORDER BY id``, ``WHERE state = ? ORDER BY
id`` and tag lookups (key, value, then version id) stay index range scans at
millions of versions (see ``charter.store.search``).

Revision ID: 0006_search
Revises: 0005_server
"""

from __future__ import annotations

from alembic import op

revision = "0006_search"
down_revision = "0005_server"
branch_labels = None
depends_on = None

_INDEXES = (
    ("ix_versions_model_id", "versions", ["model_id", "id"]),
    ("ix_versions_state_id", "versions", ["state", "id"]),
    ("ix_versions_model_state_id", "versions", ["model_id", "state", "id"]),
    ("ix_version_tags_key_value", "version_tags", ["key", "value", "version_id"]),
)


def upgrade() -> None:
    for name, table, columns in _INDEXES:
        op.create_index(name, table, columns)


def downgrade() -> None:
    for name, table, _ in _INDEXES:
        op.drop_index(name, table_name=table)
