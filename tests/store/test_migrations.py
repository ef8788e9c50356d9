"""Upgrading a populated registry from the first schema revision, on every backend.

``data/registry_0001.json`` holds the rows of a real registry home written by
Charter at commit 1f5c1a5, the last one whose whole schema was ``0001_core``
(two models, versions with parents, datasets and tags, publishes, a deleted
draft, a tag change; checkpoints every 4 entries). It was made by running that
commit's code (``git archive 1f5c1a5 src``, on ``PYTHONPATH``) through
``init_registry`` and the service, then dumping each table with bytes as hex.

Revision ``0001_core`` later gained ``ledger_head.checkpoint_every`` in place
(commit 5cdecb5) instead of in a new revision, so a home made before that
commit does not upgrade (``no such column: ledger_head.checkpoint_every``). The
test loads the old rows into today's ``0001_core`` schema and supplies that
column, then upgrades to head the way a user does: ``charter init``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, column, insert, table, text, update

from _postgres import raw_database
from charter.domain.entities import VersionState
from charter.domain.errors import HomeError
from charter.sdk import init_registry, open_registry
from charter.settings import Settings
from charter.store import Store
from charter.store.engine import migrate

FIXTURE = Path(__file__).parent / "data" / "registry_0001.json"
FIRST = "0001_core"


def _value(value: Any) -> Any:
    return bytes.fromhex(value["hex"]) if isinstance(value, dict) else value


def _load(engine: Engine, fixture: dict[str, Any]) -> None:
    """Insert the fixture's rows as they were, ids included.

    Versions go in as drafts and are published after their files and datasets,
    as the service did (the guards refuse files of a published version).
    """
    published = []
    with engine.begin() as conn:
        for name, content in fixture["tables"].items():
            names = list(content["columns"])
            rows = [dict(zip(names, map(_value, row), strict=True)) for row in content["rows"]]
            if name == "versions":
                published = [r for r in rows if r["state"] == "published"]
                rows = [{**r, "state": "draft", "published_by": None, "published_at": None}
                        for r in rows]  # fmt: skip
            if name == "ledger_head":  # the column 0001_core gained after the fact
                names.append("checkpoint_every")
                rows = [{**row, "checkpoint_every": fixture["checkpoint_every"]} for row in rows]
            conn.execute(insert(table(name, *map(column, names))), rows)
        versions = table("versions", column("id"), *map(column, _PUBLISHED))
        for row in published:
            values = {key: row[key] for key in _PUBLISHED}
            conn.execute(update(versions).where(versions.c.id == row["id"]).values(values))
        if engine.dialect.name == "postgresql":
            # Rows inserted with their ids leave the id sequences behind; a real
            # PostgreSQL registry's sequences are past its largest id.
            for name in ("models", "versions"):
                sequence = f"pg_get_serial_sequence('{name}', 'id')"
                conn.execute(text(f"SELECT setval({sequence}, max(id)) FROM {name}"))


_PUBLISHED = ("state", "published_by", "published_at")


@pytest.fixture
def fixture() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(FIXTURE.read_text())
    assert data["revision"] == FIRST
    return data


@pytest.fixture
def old_settings(empty_database: str, tmp_path: Path, fixture: dict[str, Any]) -> Settings:
    """A home whose database is at the first revision, holding the fixture's rows."""
    home = tmp_path / "home"
    key = home / "keys" / "ledger-ed25519.pem"
    key.parent.mkdir(parents=True)
    key.write_text(fixture["key_pem"])
    key.chmod(0o600)
    store = Store(empty_database)
    try:
        migrate(store.engine, revision=FIRST)
        _load(store.engine, fixture)
    finally:
        store.close()
    return Settings(
        home=home,
        user="alice",
        database_url=empty_database,
        checkpoint_every=fixture["checkpoint_every"],
    )


def test_a_populated_first_revision_registry_upgrades_and_verifies(
    old_settings: Settings, fixture: dict[str, Any], artifact: Path
) -> None:
    with pytest.raises(HomeError, match="older schema"):
        open_registry(settings=old_settings)

    with init_registry(settings=old_settings) as reg:  # `charter init` upgrades
        assert reg.store.schema_current()
        report = reg.verify()
        assert report.ok, report.problems
        entries = len(fixture["tables"]["ledger_entries"]["rows"])
        # init names the first admin of a home without users: one more entry, which
        # reaches a multiple of checkpoint_every and so is signed (12: 4, 8, 12)
        assert (report.entries, report.checkpoints) == (entries + 1, 3)
        assert reg.audit_log()[-1].type == "user.set"

        assert [m.name for m in reg.list_models()] == ["alpha", "beta"]
        alpha = reg.get_version(model="alpha", version="1.0.0")
        assert alpha.state is VersionState.PUBLISHED
        assert (alpha.run_id, alpha.commit, alpha.params) == ("run-1", "abc123", {"lr": "0.1"})
        assert alpha.tags == {"stage": "dev"}
        assert [d.role for d in alpha.datasets] == ["train"]
        assert alpha.baseline_digest is None  # published before baselines existed
        assert [f.path for f in reg.files(model="alpha", version="1.0.0")] == [
            "config.json",
            "w.bin",
        ]
        child = reg.get_version(model="alpha", version="1.1.0")
        assert (child.parent, child.state) == ("1.0.0", VersionState.DRAFT)
        assert reg.get_version(model="beta", version="0.1.0").tags == {"stage": "prod"}

        # The upgraded registry takes new work, and still verifies.
        reg.publish(model="alpha", version="1.1.0")
        reg.register(model="beta", path=artifact, version="0.2.0", parent="0.1.0")
        reg.publish(model="beta", version="0.2.0")
        reg.create_model(name="gamma")
        report = reg.verify()
        assert report.ok, report.problems
        assert report.entries == entries + 1 + 4

    with open_registry(settings=old_settings) as reg:
        assert reg.verify().ok

    # The guards survived the upgrade (SQLite rebuilds tables in batch migrations).
    url = old_settings.resolved_database_url
    with raw_database(url, drop_triggers=False, commit=False) as conn:  # noqa: SIM117 - uses conn
        with pytest.raises(conn.Error, match="immutable"):
            conn.execute("UPDATE versions SET run_id = 'x' WHERE version = '1.0.0'")


def test_every_revision_upgrades_an_empty_database_one_step_at_a_time(
    empty_database: str,
) -> None:
    store = Store(empty_database)
    try:
        from alembic.script import ScriptDirectory

        from charter.store.engine import _alembic_config

        script = ScriptDirectory.from_config(_alembic_config(None))
        revisions = [r.revision for r in reversed(list(script.walk_revisions()))]
        assert revisions[0] == FIRST
        for revision in revisions:
            migrate(store.engine, revision=revision)
        assert store.schema_current()
    finally:
        store.close()
