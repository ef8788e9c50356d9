"""Lineage queries: ancestors, descendants, dataset users and diffs."""

from __future__ import annotations

from pathlib import Path

from charter.service import Registry


def _chain(registry: Registry, artifact: Path, tmp_path: Path) -> None:
    registry.create_model(name="m")
    d1 = tmp_path / "d1.csv"
    d1.write_text("1\n")
    d2 = tmp_path / "d2.csv"
    d2.write_text("1\n2\n")
    registry.register(model="m", path=artifact, version="1.0.0", datasets=[("train", str(d1))])
    registry.register(
        model="m",
        path=artifact,
        version="1.1.0",
        parent="1.0.0",
        datasets=[("train", str(d2))],
        params={"lr": "0.1"},
    )
    (artifact / "weights.bin").write_bytes(b"new weights")
    registry.register(
        model="m",
        path=artifact,
        version="1.1.1",
        parent="1.1.0",
        datasets=[("train", str(d2))],
        params={"lr": "0.2"},
    )
    registry.register(
        model="m", path=artifact, version="1.2.0", parent="1.0.0", datasets=[("train", str(d2))]
    )


def test_ancestors_and_descendants(registry: Registry, artifact: Path, tmp_path: Path) -> None:
    _chain(registry, artifact, tmp_path)
    lin = registry.lineage(model="m", version="1.1.1")
    assert [v.version for v in lin.ancestors] == ["1.1.0", "1.0.0"]
    assert lin.descendants == ()
    root = registry.lineage(model="m", version="1.0.0")
    assert sorted(v.version for v in root.descendants) == ["1.1.0", "1.1.1", "1.2.0"]
    assert root.ancestors == ()


def test_versions_using_a_dataset(registry: Registry, artifact: Path, tmp_path: Path) -> None:
    _chain(registry, artifact, tmp_path)
    d2 = registry.get_version(model="m", version="1.1.0").datasets[0].digest
    assert d2 is not None
    users = sorted(v.version for v in registry.versions_using_dataset(digest=d2))
    assert users == ["1.1.0", "1.1.1", "1.2.0"]


def test_diff_names_what_changed(registry: Registry, artifact: Path, tmp_path: Path) -> None:
    _chain(registry, artifact, tmp_path)
    d = registry.diff(model="m", a="1.1.0", b="1.1.1")
    assert [c.name for c in d.params] == ["lr"]
    assert d.files_changed == ("weights.bin",)
    assert [c.name for c in d.fingerprints] == ["config"]
    assert not d.identical
    assert registry.diff(model="m", a="1.0.0", b="1.0.0").identical
