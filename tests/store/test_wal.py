"""WAL checkpoints run beside commits, not inside them (SQLite)."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from charter.store import Store, engine
from charter.store._wal import WalCheckpointer
from charter.store.engine import WAL_CAP_PAGES

# Only a guard against a checkpointer that never runs; nothing is asserted on time.
WAIT_S = 30.0


def _grow(store: Store, rows: int) -> None:
    with store.write() as tx:
        for i in range(rows):
            tx.conn.exec_driver_sql(
                "INSERT INTO users (name, role, updated_by, updated_at) VALUES (?, ?, ?, ?)",
                (f"user-{time.monotonic_ns()}-{i}" + "x" * 150, "viewer", "t", "t"),
            )


def test_commits_leave_checkpoints_to_the_thread(tmp_path: Path) -> None:
    db = tmp_path / "store.db"
    store = Store(f"sqlite:///{db}")
    store.migrate()
    wal = Path(f"{db}-wal")
    with store.read() as tx:
        assert tx.conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == WAL_CAP_PAGES
    store._checkpointer.stop()  # type: ignore[union-attr]  # drive it by hand below
    for _ in range(40):
        _grow(store, 500)
    grown = wal.stat().st_size
    # With SQLite's default (1,000 pages) these commits would have reset the WAL.
    assert grown > 8 * 1024 * 1024
    checkpointer = WalCheckpointer(db, threshold_bytes=1024 * 1024)
    assert checkpointer.run_once()
    # Copied into the database: the next writer starts the WAL from its beginning.
    conn = sqlite3.connect(db)
    busy, log_frames, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    conn.close()
    assert busy == 0 and log_frames == copied
    store.close()


def _busy_store(tmp_path: Path, threshold_bytes: int) -> tuple[Store, WalCheckpointer, Path]:
    """A migrated store whose checkpoint thread polls every 10 ms; and its WAL's path."""
    db = tmp_path / "store.db"
    store = Store(f"sqlite:///{db}")
    store.migrate()
    checkpointer = store._checkpointer
    assert checkpointer is not None
    checkpointer.threshold_bytes, checkpointer.poll_s = threshold_bytes, 0.01
    return store, checkpointer, Path(f"{db}-wal")


def test_the_thread_keeps_the_wal_bounded(tmp_path: Path) -> None:
    store, checkpointer, wal = _busy_store(tmp_path, 256 * 1024)
    deadline = time.monotonic() + WAIT_S
    ran = False
    while not ran:
        assert time.monotonic() < deadline, "the checkpoint thread never ran"
        _grow(store, 200)
        size = wal.stat().st_size
        time.sleep(0.05)
        # A checkpoint lets the next commit rewind the WAL: it stops growing.
        _grow(store, 1)
        ran = wal.stat().st_size <= size
    store.close()
    assert checkpointer._thread is None  # close() stopped it


def test_a_steady_stream_of_commits_does_not_grow_the_wal_without_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine, "WAL_CAP_PAGES", 256)  # 1 MiB, read as connections open
    store, _, wal = _busy_store(tmp_path, 64 * 1024)
    for _ in range(600):  # back to back: no pause in which the thread's checkpoint could reset it
        _grow(store, 60)
    # 600 commits of a few pages each; with the thread's PASSIVE checkpoints alone
    # the file held all of them (35 MB in a run without the cap).
    assert wal.stat().st_size < 8 * 1024 * 1024
    store.close()
