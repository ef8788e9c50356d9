"""Prebuilt statements, batched lookups and bulk reads of the store.

Runs on SQLite always, and on PostgreSQL too when ``CHARTER_TEST_POSTGRES_URL``
names a scratch database (e.g. ``postgresql+psycopg://user@host/charter_test``):
its ``public`` schema is dropped and recreated first.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import bindparam, insert, select

from charter.domain.entities import (
    DatasetRef,
    FileRecord,
    LedgerRecord,
    Model,
    RiskTier,
    Version,
    VersionState,
)
from charter.store import Store, schema
from charter.store._sql import Compiled

BACKENDS = ["sqlite"] + (["postgresql"] if os.environ.get("CHARTER_TEST_POSTGRES_URL") else [])


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        opened = Store(f"sqlite:///{tmp_path / 'store.db'}")
    else:
        opened = Store(os.environ["CHARTER_TEST_POSTGRES_URL"])
        with opened.engine.begin() as conn:
            conn.exec_driver_sql("DROP SCHEMA public CASCADE")
            conn.exec_driver_sql("CREATE SCHEMA public")
    opened.migrate()
    with opened.write() as tx:
        tx.init_ledger("test/origin", checkpoint_every=100)
    yield opened
    opened.close()


def _version(number: str, **changes: object) -> Version:
    base = Version(
        model="m",
        version=number,
        state=VersionState.DRAFT,
        parent=None,
        change_kind=None,
        fp_architecture="sha256:a",
        fp_data="sha256:d",
        fp_config="sha256:c",
        architecture_method="unknown",
        manifest_digest="sha256:m",
        file_count=1,
        total_size=3,
        run_id=None,
        commit=None,
        params={},
        datasets=(),
        created_by="alice",
        created_at="2030-01-01T00:00:00.000000Z",
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def _populate(store: Store, count: int) -> dict[str, int]:
    ids = {}
    with store.write() as tx:
        tx.insert_model(Model("m", "", "alice", RiskTier.LOW, "alice", "t"))
        model_id = tx.model_id("m")
        assert model_id is not None
        parent_id = None
        for i in range(count):
            datasets = (DatasetRef("train.csv", "train", "file:///t", None, 5),) if i % 2 else ()
            version = _version(f"1.0.{i}", params={"i": str(i)} if i % 3 else {}, datasets=datasets)
            files = [FileRecord("model.bin", "sha256:f", 3)]
            parent_id = tx.insert_version(
                version, model_id=model_id, parent_id=parent_id, files=files
            )
            ids[version.version] = parent_id
            if i % 4 == 0:
                tx.set_tags(parent_id, {"stage": "dev", "n": str(i)})
    return ids


def test_lookups_by_ref_and_ids(store: Store) -> None:
    ids = _populate(store, 3)
    with store.read() as tx:
        assert tx.ids("m", "1.0.1") == (tx.model_id("m"), ids["1.0.1"])
        assert tx.ids("m", "9.9.9") == (tx.model_id("m"), None)
        assert tx.ids("nope", "1.0.1") == (None, None)
        found = tx.version_with_id("m", "1.0.1")
        assert found is not None and found[0] == ids["1.0.1"]
        assert found[1].parent == "1.0.0"
        assert found[1].datasets == (DatasetRef("train.csv", "train", "file:///t", None, 5),)
        assert found[1].params == {"i": "1"}
        assert tx.get_version("m", "1.0.0") is not None
        assert tx.get_version("m", "1.0.0").tags == {"stage": "dev", "n": "0"}  # type: ignore[union-attr]
        assert tx.version_with_id("m", "9.9.9") is None


def test_versions_by_ids_in_bounded_chunks(store: Store) -> None:
    ids = _populate(store, 1203)  # three chunks of IN parameters
    wanted = [*ids.values(), *list(ids.values())[:10]]  # duplicates are fine
    with store.read() as tx:
        found = tx.versions_by_ids(wanted)
        assert set(found) == set(ids.values())
        assert {v.version for v in found.values()} == set(ids)
        every = dict(tx.all_versions())
        assert every == found
        assert sorted(v.version for v in tx.list_versions("m")) == sorted(ids)
        assert {f"m@{v}" for v in ids} == set(tx.version_refs().values())


def test_get_nodes_fetches_a_batch_and_skips_missing_keys(store: Store) -> None:
    with store.write() as tx:
        for seq in range(40):
            head = tx.claim_ledger_slot()
            tx.store_entry(
                _record(head.size), [(0, head.size, bytes([seq]) * 32), (1, head.size, b"h" * 32)]
            )
    with store.read() as tx:
        keys = [(0, i) for i in range(0, 60, 3)] + [(1, 5), (1, 5), (7, 0)]
        found = tx.get_nodes(keys)
        assert set(found) == {(0, i) for i in range(0, 40, 3)} | {(1, 5)}
        assert found[(0, 9)] == bytes([9]) * 32
        assert tx.get_nodes([]) == {}
        assert len(list(tx.iter_nodes())) == 80
        assert [row[0] for row in tx.iter_entries()] == list(range(40))


def _record(seq: int) -> LedgerRecord:
    return LedgerRecord(seq, "t", "s", "a", "time", b"{}", b"l" * 32)


def test_compiled_statements_bind_literals_names_and_batches(store: Store) -> None:
    _populate(store, 1)
    tags = schema.tags
    add = Compiled(insert(tags), ["version_id", "key", "value"])
    query = Compiled(
        select(tags.c.key, tags.c.value)
        .where(tags.c.version_id == bindparam("vid"), tags.c.value != "skip")  # a literal
        .order_by(tags.c.key)
    )
    with store.write() as tx:
        vid = tx.version_id("m", "1.0.0")
        add(
            tx.conn,
            [{"version_id": vid, "key": k, "value": v} for k, v in [("x", "1"), ("y", "skip")]],
        )
        rows = query(tx.conn, {"vid": vid}).all()
    assert [tuple(r) for r in rows] == [("n", "0"), ("stage", "dev"), ("x", "1")]
