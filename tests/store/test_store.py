"""The metadata store: migrations, and what a broken database looks like to users.

Migration tests run on every backend; the corruption tests damage the SQLite
file itself, so they are about SQLite (PostgreSQL's counterparts are an
unreachable server and a database that is not Charter's).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from _postgres import raw_database
from charter.cli import main
from charter.domain.errors import (
    CharterError,
    HomeError,
    ImmutableError,
    InvalidInputError,
    NotFoundError,
    StorageError,
)
from charter.sdk import init_registry, open_registry
from charter.service import Registry
from charter.settings import Settings
from charter.store import Store, schema
from charter.store.engine import SCHEMA_HEAD, _alembic_config, pending_migrations, schema_head

# -- migrations -----------------------------------------------------------------------


@pytest.fixture
def store(empty_database: str) -> Iterator[Store]:
    """A store on a fresh database, not yet migrated."""
    opened = Store(empty_database)
    yield opened
    opened.close()


def _revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def _head() -> str | None:
    return ScriptDirectory.from_config(_alembic_config(None)).get_current_head()


# Every schema object with its definition: (kind, name, definition).
_CATALOG = {
    "sqlite": "SELECT type, name, sql FROM sqlite_master",
    "postgresql": (
        "SELECT 'trigger', tgname, pg_get_triggerdef(oid) FROM pg_trigger WHERE NOT tgisinternal "
        "UNION ALL SELECT 'index', indexname, indexdef FROM pg_indexes "
        "WHERE schemaname = current_schema() "
        "UNION ALL SELECT 'function', proname, prosrc FROM pg_proc "
        "WHERE starts_with(proname, 'charter')"
    ),
}


def _snapshot(engine: Engine) -> dict[str, object]:
    """Everything a migration could change: tables, columns, keys, indexes, triggers."""
    found = inspect(engine)
    tables = sorted(found.get_table_names())
    with engine.connect() as conn:
        master = sorted(tuple(r) for r in conn.exec_driver_sql(_CATALOG[engine.dialect.name]))
    return {
        "tables": tables,
        "columns": {t: [(c["name"], str(c["type"])) for c in found.get_columns(t)] for t in tables},
        "master": master,
    }


def test_the_schema_head_constant_is_alembics_head() -> None:
    # Opening a current database compares against SCHEMA_HEAD without importing
    # Alembic; a new migration must move the constant with it.
    assert SCHEMA_HEAD == _head() == schema_head()


def test_a_fresh_database_migrates_to_head(store: Store) -> None:
    assert pending_migrations(store.engine)
    assert _revision(store.engine) is None
    store.migrate()
    assert _revision(store.engine) == _head()
    assert not pending_migrations(store.engine)


def test_migrating_again_changes_nothing(store: Store) -> None:
    store.migrate()
    before = _snapshot(store.engine)
    store.migrate()
    store.migrate()
    assert _snapshot(store.engine) == before
    assert _revision(store.engine) == _head()


def test_migrated_tables_match_the_schema_metadata(store: Store) -> None:
    store.migrate()
    found = inspect(store.engine)
    assert set(found.get_table_names()) - {"alembic_version"} == set(schema.metadata.tables)
    for name, table in schema.metadata.tables.items():
        columns = {c["name"]: c for c in found.get_columns(name)}
        assert list(columns) == [c.name for c in table.columns], name
        for column in table.columns:
            assert columns[column.name]["nullable"] == column.nullable, f"{name}.{column.name}"
        keys = found.get_pk_constraint(name)["constrained_columns"]
        assert keys == [c.name for c in table.primary_key.columns], name
        indexes = {i["name"]: i["column_names"] for i in found.get_indexes(name)}
        declared = {i.name: [c.name for c in i.columns] for i in table.indexes}
        assert declared.items() <= indexes.items(), name
        foreign = {
            (tuple(fk["constrained_columns"]), fk["referred_table"])
            for fk in found.get_foreign_keys(name)
        }
        assert foreign == {
            ((fk.parent.name,), fk.column.table.name) for fk in table.foreign_keys
        }, name


_TRIGGERS = {
    "sqlite": "SELECT name, tbl_name FROM sqlite_master WHERE type = 'trigger'",
    "postgresql": "SELECT t.tgname, c.relname FROM pg_trigger t "
    "JOIN pg_class c ON c.oid = t.tgrelid WHERE NOT t.tgisinternal",
}
# SQLite needs one trigger per operation; PostgreSQL's fire BEFORE UPDATE OR DELETE.
_GUARDS = {
    "sqlite": {
        "versions_published_no_update": "versions",
        "versions_published_no_delete": "versions",
        "version_files_published_no_insert": "version_files",
        "version_files_published_no_update": "version_files",
        "version_files_published_no_delete": "version_files",
        "version_datasets_published_no_insert": "version_datasets",
        "version_datasets_published_no_update": "version_datasets",
        "version_datasets_published_no_delete": "version_datasets",
        "ledger_entries_no_update": "ledger_entries",
        "ledger_entries_no_delete": "ledger_entries",
    },
    "postgresql": {
        "versions_published_frozen": "versions",
        "version_files_frozen": "version_files",
        "version_datasets_frozen": "version_datasets",
        "ledger_entries_append_only": "ledger_entries",
    },
}
# Tables whose rows are frozen or append-only: each keeps at least one guard.
_GUARDED = {
    "versions", "version_files", "version_datasets", "ledger_entries", "profile_entries",
    "profile_amendments", "model_cards", "gate_decisions", "approvals", "stage_history",
    "version_status", "policies", "evaluation_runs",
}  # fmt: skip


def test_migration_installs_the_immutability_triggers(store: Store, backend: str) -> None:
    store.migrate()
    with store.engine.connect() as conn:
        triggers = {r[0]: r[1] for r in conn.exec_driver_sql(_TRIGGERS[backend])}
    # Every table that holds frozen data keeps its guard (a batch migration that
    # recreates a table would silently drop the triggers attached to it).
    assert _GUARDS[backend].items() <= triggers.items()
    assert set(triggers.values()) >= _GUARDED


# -- a broken home ----------------------------------------------------------------------


def _garbage(db: Path) -> None:
    db.write_bytes(bytes(range(256)) * 64)


def _garbage_after_header(db: Path) -> None:
    """Keep the 100-byte SQLite header (so it still looks like a database)."""
    data = db.read_bytes()
    db.write_bytes(data[:100] + b"\xa5" * (len(data) - 100))


def _truncated(db: Path) -> None:
    data = db.read_bytes()
    db.write_bytes(data[: len(data) // 3])


CORRUPTIONS = [
    pytest.param(_garbage, id="garbage"),
    pytest.param(_garbage_after_header, id="garbage-after-header"),
    pytest.param(_truncated, id="truncated"),
]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """An initialised home with one model, closed again."""
    path = tmp_path / "home"
    with init_registry(settings=Settings(home=path, user="alice")) as reg:
        reg.create_model(name="m")
    db = path / "registry.db"
    # A clean close checkpoints the WAL into the main file and removes it.
    assert db.is_file() and not Path(f"{db}-wal").exists()
    return path


def _open_and_read(home: Path) -> None:
    with open_registry(settings=Settings(home=home, user="alice")) as reg:
        reg.list_models()


@pytest.mark.parametrize("corrupt", CORRUPTIONS)
def test_a_corrupted_database_is_a_storage_error(
    home: Path, corrupt: Callable[[Path], None]
) -> None:
    corrupt(home / "registry.db")
    with pytest.raises(StorageError) as caught:
        _open_and_read(home)
    assert isinstance(caught.value, CharterError)
    message = caught.value.message
    assert "database" in message
    assert any(w in message for w in ("not a database", "malformed", "corrupt")), message


@pytest.mark.parametrize("corrupt", CORRUPTIONS)
def test_cli_reports_a_corrupted_database_in_one_line(
    home: Path, corrupt: Callable[[Path], None], capsys: pytest.CaptureFixture[str]
) -> None:
    corrupt(home / "registry.db")
    code = main(["--home", str(home), "list"])
    out, err = capsys.readouterr()
    assert code in (1, 2)
    assert "Traceback" not in out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error:")
    assert "database" in lines[0]


def test_cli_json_error_for_a_corrupted_database(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _garbage(home / "registry.db")
    assert main(["--home", str(home), "list", "--json"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert '"code": "storage"' in err
    assert "Traceback" not in err


def test_a_missing_home_is_a_home_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(HomeError):
        open_registry(settings=Settings(home=missing, user="alice"))
    assert main(["--home", str(missing), "list"]) == 2
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    assert f"no registry at {missing}" in " ".join(err.split())
    assert not missing.exists()  # looking did not create it


def test_a_home_with_a_foreign_database_is_a_home_error(
    tmp_path: Path, empty_database: str
) -> None:
    with raw_database(empty_database, drop_triggers=False) as conn:
        conn.execute("CREATE TABLE unrelated (x integer)")
    settings = Settings(home=tmp_path / "home", user="alice", database_url=empty_database)
    with pytest.raises(HomeError, match="not a Charter registry"):
        open_registry(settings=settings)


def test_an_unreachable_database_server_is_a_storage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Port 1 on loopback: nothing listens there, so the connection is refused at once.
    url = "postgresql+psycopg://charter@127.0.0.1:1/charter"
    settings = Settings(home=tmp_path, user="alice", database_url=url)
    with pytest.raises(StorageError) as caught:
        open_registry(settings=settings)
    assert "cannot open the registry database" in caught.value.message
    monkeypatch.setenv("CHARTER_DATABASE_URL", url)
    assert main(["--home", str(tmp_path), "list"]) == 1
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    assert err.startswith("error: cannot open the registry database: connection failed")


@pytest.mark.skipif(
    hasattr(os, "geteuid") and os.geteuid() == 0,
    reason="root reads any file whatever its mode, so chmod cannot make a home unreadable",
)
def test_an_unreadable_home_is_a_clear_error(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (home / "registry.db").chmod(0)
    try:
        assert main(["--home", str(home), "list"]) in (1, 2)
        out, err = capsys.readouterr()
        assert "Traceback" not in out + err
        assert err.startswith("error:")
    finally:
        (home / "registry.db").chmod(0o644)


def test_a_writer_that_waits_past_the_busy_timeout_gets_a_storage_error(tmp_path: Path) -> None:
    # BEGIN IMMEDIATE runs on the driver (not through SQLAlchemy): its "database is
    # locked" must still arrive as the store's StorageError, with nothing written.
    url = f"sqlite:///{tmp_path / 'store.db'}"
    holder = Store(url)
    holder.migrate()
    waiter = Store(url, busy_timeout_s=0.05)
    with holder.write() as tx:
        tx.init_ledger("test/origin", checkpoint_every=100)
        with pytest.raises(StorageError, match="locked"), waiter.write() as blocked:
            blocked.init_ledger("other/origin", checkpoint_every=7)
    with waiter.read() as tx:
        assert tx.ledger_origin() == "test/origin"
    holder.close()
    waiter.close()


def test_a_write_meeting_an_immutability_trigger_is_refused_as_immutable(
    registry: Registry, artifact: Path
) -> None:
    # E.g. draft entries racing a publish: the trigger refuses, the user hears why.
    registry.create_model(name="m")
    registry.register(model="m", path=artifact, version="1.0.0")
    registry.publish(model="m", version="1.0.0")
    with pytest.raises(ImmutableError, match="immutable"), registry.store.write() as tx:
        tx.conn.exec_driver_sql("UPDATE versions SET run_id = 'changed'")
    assert registry.get_version(model="m", version="1.0.0").run_id is None


def test_no_free_connection_is_a_storage_error_saying_busy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")

    def exhausted() -> None:
        raise PoolTimeoutError("QueuePool limit reached")

    monkeypatch.setattr(store.engine, "connect", exhausted)
    for open_tx in (store.read, store.write):
        with pytest.raises(StorageError, match="busy"), open_tx():
            pass


def test_nul_in_a_lookup_is_bad_input_on_every_backend(registry: Registry) -> None:
    # PostgreSQL text cannot hold NUL at all (the driver refuses to send it): that
    # must read as bad input, not as the database being unavailable.
    with pytest.raises((InvalidInputError, NotFoundError)):
        registry.get_model(name="credit\x00risk")
    with pytest.raises((InvalidInputError, NotFoundError)):
        registry.list_versions(model="credit\x00risk")
