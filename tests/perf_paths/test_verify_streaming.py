"""``audit verify`` streams the ledger, reads rows in bulk, and leaves the process as
it found it. (What it detects is pinned by tests/service/test_tamper.py.)"""

from __future__ import annotations

import gc
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from charter.audit import verify_artifacts
from charter.sdk import init_registry
from charter.service import Registry
from charter.settings import Settings
from charter.store import ReadTx


@pytest.fixture
def reg(tmp_path: Path) -> Iterator[Registry]:
    registry = init_registry(
        settings=Settings(home=tmp_path / "home", user="alice", checkpoint_every=5)
    )
    src = tmp_path / "src"
    src.mkdir()
    (src / "train.csv").write_text("x\n1\n")
    registry.create_model(name="m")
    for i in range(12):
        path = src / f"v{i}"
        path.mkdir()
        (path / "model.bin").write_bytes(f"weights {i}".encode())
        (path / "config.json").write_text(f'{{"i": {i}}}')
        registry.register(
            model="m",
            path=path,
            version=f"1.{i}.0",
            parent=f"1.{i - 1}.0" if i else None,
            datasets=[("train", str(src / "train.csv"))] if i % 2 else [],
            tags={"n": str(i)} if i % 3 == 0 else None,
        )
        if i % 2 == 0:
            registry.publish(model="m", version=f"1.{i}.0")
    yield registry
    registry.close()


def test_a_sound_registry_verifies_without_materialising_the_log(
    reg: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_bulk_records(self: ReadTx, *args: object) -> object:
        raise AssertionError("verify built LedgerRecord objects for the whole log")

    monkeypatch.setattr(ReadTx, "entries", no_bulk_records)
    report = reg.verify(artifacts=True)
    assert report.ok, report.problems
    with reg.store.read() as tx:
        size = tx.ledger_size()
    assert report.entries == size
    assert report.unsigned_entries == size % 5
    assert report.checkpoints == size // 5
    assert report.subjects == 1 + 12
    assert report.blobs == 24


@pytest.mark.parametrize("enabled", [True, False])
def test_verify_leaves_the_garbage_collector_as_it_found_it(reg: Registry, enabled: bool) -> None:
    was = gc.isenabled()
    try:
        (gc.enable if enabled else gc.disable)()
        assert reg.verify().ok
        assert gc.isenabled() is enabled
    finally:
        (gc.enable if was else gc.disable)()


def test_gc_is_restored_when_verify_fails(reg: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(self: ReadTx) -> object:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(ReadTx, "iter_entries", broken)
    assert gc.isenabled()
    with pytest.raises(RuntimeError):
        reg.verify()
    assert gc.isenabled()


def test_a_changed_row_is_still_found_among_many(reg: Registry) -> None:
    conn = sqlite3.connect(reg.settings.home / "registry.db")
    with conn:
        conn.execute("DROP TRIGGER IF EXISTS versions_published_no_update")
        conn.execute("UPDATE versions SET run_id = 'forged' WHERE version = '1.4.0'")
        conn.execute("UPDATE version_files SET size = 99 WHERE path = 'model.bin' AND version_id = "
                     "(SELECT id FROM versions WHERE version = '1.5.0')")  # fmt: skip
    conn.close()
    found = {(p.kind, p.where) for p in reg.verify().problems}
    assert ("state", "version m@1.4.0") in found
    assert ("state", "version m@1.5.0") in found  # its manifest digest no longer matches


def test_verify_artifacts_of_one_version(reg: Registry) -> None:
    report = verify_artifacts(reg.store, reg.artifacts, only=("m", "1.3.0"))
    assert report.ok and report.blobs == 2
