"""Ledger appends: one claiming statement, the in-process frontier cache, and the
cases where the cache must not be trusted (other writers, rolled-back appends)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from charter.audit import verify_registry
from charter.domain.entities import Event
from charter.journal import append_event, now
from charter.ledger import IncrementalTree, NodeStore
from charter.sdk import init_registry
from charter.service import Registry
from charter.settings import Settings
from charter.store import Store, WriteTx


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    reg = init_registry(settings=Settings(home=tmp_path / "home", user="alice", checkpoint_every=4))
    reg.close()
    yield tmp_path / "home"


def _registry(home: Path) -> Registry:
    return Registry(Settings(home=home, user="alice"))


def _event(n: int) -> Event:
    return Event("note.added", f"model:m{n}", "alice", now(), {"n": n})


def _append(reg: Registry, n: int) -> None:
    with reg.store.write() as tx:
        append_event(tx, _event(n), key=reg._key)


def _assert_sound(reg: Registry) -> None:
    report = verify_registry(reg.store, public_key=reg._key.public_key(), checkpoint_every=4)
    assert report.ok, report.problems
    with reg.store.read() as tx:
        assert [r.seq for r in tx.entries()] == list(range(tx.ledger_size()))


def test_two_writers_interleaving_keep_one_sound_tree(home: Path) -> None:
    """Two stores (two engines, two caches) on one database, as two processes would be."""
    first, second = _registry(home), _registry(home)
    try:
        for n in range(20):
            _append(first if n % 3 else second, n)
        _assert_sound(first)
    finally:
        first.close()
        second.close()


def test_a_rolled_back_append_replaced_by_another_writer_is_not_trusted(home: Path) -> None:
    """The cache after a rolled-back append matches the head's size once another
    writer fills that slot: only the newest leaf hash tells them apart."""
    first, second = _registry(home), _registry(home)
    try:
        _append(first, 0)
        with pytest.raises(RuntimeError), first.store.write() as tx:
            append_event(tx, _event(1), key=first._key)
            raise RuntimeError("roll back")
        _append(second, 2)  # same sequence number, other entry
        _append(first, 3)
        _assert_sound(first)
    finally:
        first.close()
        second.close()


def test_an_append_that_fails_gives_its_slot_back(home: Path) -> None:
    """A caller that catches the error and goes on must not leave a gap in the log."""
    reg = _registry(home)
    try:
        with reg.store.write() as tx:
            with pytest.raises(ValueError):
                append_event(tx, Event("bad", "model:x", "alice", now(), {"s": {1}}), key=reg._key)
            append_event(tx, _event(1), key=reg._key)
        _assert_sound(reg)
    finally:
        reg.close()


def test_a_warm_append_reads_no_nodes_and_signs_the_right_roots(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reg = _registry(home)
    try:
        _append(reg, 0)  # warms the frontier cache

        def no_node_reads(self: WriteTx, keys: object) -> dict[tuple[int, int], bytes]:
            raise AssertionError("a warm append read subtree hashes")

        with monkeypatch.context() as patch:
            patch.setattr(WriteTx, "get_nodes", no_node_reads)
            for n in range(1, 13):  # crosses three checkpoints (every 4)
                _append(reg, n)
        with reg.store.read() as tx:
            checkpoints = tx.checkpoints()
            tree = IncrementalTree(_Nodes(reg.store))
            assert checkpoints
            for size, root, *_ in checkpoints:
                assert tree.root(size) == root
        _assert_sound(reg)
    finally:
        reg.close()


class _Nodes(NodeStore):
    """A read-only NodeStore over a store (for recomputing roots independently)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def get(self, level: int, index: int) -> bytes:
        with self.store.read() as tx:
            return tx.get_nodes([(level, index)])[(level, index)]

    def get_many(self, keys: Sequence[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        with self.store.read() as tx:
            return tx.get_nodes(keys)

    def put_many(self, nodes: Sequence[tuple[int, int, bytes]]) -> None:
        raise AssertionError("read-only")


def test_claiming_and_releasing_a_slot(home: Path) -> None:
    store = Store(f"sqlite:///{home / 'registry.db'}")
    try:
        with store.write() as tx:
            before = tx.ledger_size()
            head = tx.claim_ledger_slot()
            assert head.size == before
            assert tx.ledger_size() == before + 1
            tx.release_ledger_slot()
            assert tx.ledger_size() == before
            last = tx.entries(before - 1, before)[0].leaf_hash
            assert tx.lock_ledger_state().last_leaf == last
    finally:
        store.close()


def test_appends_work_without_returning(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite before 3.35 has no RETURNING: the store falls back to lock + update."""
    reg = _registry(home)
    try:
        dialect = reg.store.engine.dialect
        monkeypatch.setattr(dialect, "update_returning", False)
        monkeypatch.setattr(dialect, "insert_returning", False)
        for n in range(6):
            _append(reg, n)
        src = home.parent / "m.bin"
        src.write_bytes(b"weights")
        reg.create_model(name="m")
        reg.register(model="m", path=src, version="1.0.0")
        reg.publish(model="m", version="1.0.0")
        _assert_sound(reg)
    finally:
        reg.close()
