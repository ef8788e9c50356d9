"""Artifact sources, path validation and manifests."""

from __future__ import annotations

import hashlib
import os
import random
from pathlib import Path

import pytest

from charter.artifacts import (
    Manifest,
    ManifestDiff,
    ManifestEntry,
    scan_source,
    validate_relpath,
)
from charter.domain.canonical import canonical_digest
from charter.domain.errors import InvalidInputError, NotFoundError


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


D1, D2, D3 = digest_of(b"1"), digest_of(b"2"), digest_of(b"3")


# -- validate_relpath ------------------------------------------------------------


@pytest.mark.parametrize(
    "good",
    ["a", "a/b.txt", "weights/model.safetensors", ".hidden", "a..b/c", "ünï/名前.bin", "x" * 255],
)
def test_valid_relpaths_pass_unchanged(good: str) -> None:
    assert validate_relpath(good) == good


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        ("", "empty"),
        ("/etc/passwd", "absolute"),
        ("../secret", "'..'"),
        ("a/../../b", "'..'"),
        ("a/./b", "'.'"),
        ("a//b", "empty"),
        ("a/", "empty"),
        ("a\\..\\b", "backslash"),
        ("a\x00b", "control"),
        ("a\nb", "control"),
        ("a\x1bb", "control"),
        ("C:/windows", "drive"),
        ("x" * 1025, "1024"),
        ("a/" + "x" * 256, "255"),
        ("é" * 128, "255"),  # 128 characters, but 256 UTF-8 bytes
        ("bad\udcffname", "UTF-8"),  # an undecodable file name byte
    ],
)
def test_invalid_relpaths_say_why_and_what_is_valid(bad: str, why: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        validate_relpath(bad)
    assert why in caught.value.message
    assert "relative POSIX path" in caught.value.details["valid"]
    assert caught.value.details["field"] == "path"


def test_non_string_relpath_is_rejected() -> None:
    with pytest.raises(InvalidInputError):
        validate_relpath(None)  # type: ignore[arg-type]


# -- scan_source -----------------------------------------------------------------


def test_scan_single_file_is_named_by_its_basename(tmp_path: Path) -> None:
    path = tmp_path / "model.pkl"
    path.write_bytes(b"12345")
    [entry] = scan_source(path)
    assert (entry.relpath, entry.size, entry.abspath) == ("model.pkl", 5, path.resolve())


def test_scan_folder_lists_every_file_sorted(model: Path) -> None:
    files = scan_source(model)
    assert [f.relpath for f in files] == [
        "EMPTY",
        "config.json",
        "weights/a.bin",
        "weights/shards/0.bin",
        "weights/shards/1.bin",
    ]
    assert {f.relpath: f.size for f in files}["weights/a.bin"] == 5000
    assert all(f.abspath.is_absolute() for f in files)


def test_scan_missing_path_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError):
        scan_source(tmp_path / "nope")


def test_scan_empty_folder_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "empty" / "only-folders").mkdir(parents=True)
    with pytest.raises(InvalidInputError, match="no files"):
        scan_source(tmp_path / "empty")


def test_scan_rejects_fifos(tmp_path: Path, model: Path) -> None:
    os.mkfifo(model / "pipe")
    with pytest.raises(InvalidInputError, match="special file") as caught:
        scan_source(model)
    assert caught.value.details["path"].endswith("pipe")
    with pytest.raises(InvalidInputError, match="special file"):
        scan_source(model / "pipe")


def test_symlink_to_a_file_inside_is_followed(model: Path) -> None:
    (model / "latest.bin").symlink_to("weights/a.bin")
    entry = {f.relpath: f for f in scan_source(model)}["latest.bin"]
    assert entry.abspath == (model / "weights" / "a.bin").resolve()
    assert entry.size == 5000


@pytest.mark.parametrize("target", ["../outside.txt", "/etc/hostname"])
def test_symlink_escaping_the_folder_is_rejected(tmp_path: Path, model: Path, target: str) -> None:
    (tmp_path / "outside.txt").write_text("secret")
    (model / "weights" / "link").symlink_to(target if target.startswith("/") else "../" + target)
    with pytest.raises(InvalidInputError, match="outside"):
        scan_source(model)


def test_symlinks_to_folders_and_broken_links_are_rejected(model: Path) -> None:
    (model / "loop").symlink_to(".")
    with pytest.raises(InvalidInputError, match="folder"):
        scan_source(model)
    (model / "loop").unlink()
    (model / "dangling").symlink_to("missing.bin")
    with pytest.raises(InvalidInputError, match="broken"):
        scan_source(model)


def test_source_given_as_a_symlink_is_resolved(tmp_path: Path, model: Path) -> None:
    (tmp_path / "current").symlink_to(model)
    assert [f.relpath for f in scan_source(tmp_path / "current")] == [
        f.relpath for f in scan_source(model)
    ]
    (tmp_path / "weights-link.bin").symlink_to(model / "weights" / "a.bin")
    [entry] = scan_source(tmp_path / "weights-link.bin")
    assert entry.relpath == "weights-link.bin"  # named as the user named it


def test_unsafe_file_names_on_disk_are_rejected(model: Path) -> None:
    (model / "back\\slash").write_text("x")
    with pytest.raises(InvalidInputError, match="backslash"):
        scan_source(model)


def test_overlong_relative_path_is_rejected(tmp_path: Path) -> None:
    folder = tmp_path / "deep"
    current = folder
    for _ in range(5):
        current = current / ("d" * 250)
    current.mkdir(parents=True)
    (current / "f").write_text("x")
    with pytest.raises(InvalidInputError, match="1024"):
        scan_source(folder)


# -- Manifest --------------------------------------------------------------------


def test_manifest_is_sorted_and_its_digest_is_order_independent() -> None:
    entries = [ManifestEntry("b", D2, 2), ManifestEntry("a", D1, 1), ManifestEntry("c/d", D3, 3)]
    digests = set()
    for _ in range(5):
        random.shuffle(entries)
        manifest = Manifest(tuple(entries))
        assert [e.path for e in manifest] == ["a", "b", "c/d"]
        digests.add(manifest.digest)
    assert len(digests) == 1


def test_manifest_digest_is_the_documented_canonical_shape() -> None:
    manifest = Manifest((ManifestEntry("w.bin", D1, 1), ManifestEntry("a.txt", D2, 22)))
    expected = canonical_digest(
        {
            "files": [
                {"path": "a.txt", "digest": D2, "size": 22},
                {"path": "w.bin", "digest": D1, "size": 1},
            ]
        }
    )
    assert manifest.digest == expected
    # Pinned: auditors recompute this value; changing it breaks every ledger.
    assert manifest.digest == (
        "sha256:"
        + hashlib.sha256(
            b'{"files":[{"digest":"' + D2.encode() + b'","path":"a.txt","size":22},'
            b'{"digest":"' + D1.encode() + b'","path":"w.bin","size":1}]}'
        ).hexdigest()
    )


def test_manifest_rejects_duplicates_and_bad_entries() -> None:
    with pytest.raises(InvalidInputError, match="duplicate"):
        Manifest((ManifestEntry("a", D1, 1), ManifestEntry("a", D2, 2)))
    with pytest.raises(InvalidInputError):
        ManifestEntry("../a", D1, 1)
    with pytest.raises(InvalidInputError):
        ManifestEntry("a", "sha256:XYZ", 1)
    for size in (-1, True, 1.5, "3"):
        with pytest.raises(InvalidInputError):
            ManifestEntry("a", D1, size)  # type: ignore[arg-type]


def test_manifest_list_round_trip_and_totals() -> None:
    manifest = Manifest((ManifestEntry("b", D2, 20), ManifestEntry("a", D1, 10)))
    as_list = manifest.to_list()
    assert as_list == [
        {"path": "a", "digest": D1, "size": 10},
        {"path": "b", "digest": D2, "size": 20},
    ]
    assert Manifest.from_list(reversed(as_list)) == manifest
    assert manifest.total_size == 30
    assert len(manifest) == 2


@pytest.mark.parametrize(
    "items",
    [
        [{"path": "a", "digest": D1}],
        [{"path": "a", "digest": D1, "size": 1, "mode": 644}],
        ["a"],
        [{"path": "/abs", "digest": D1, "size": 1}],
        [{"path": "a", "digest": D1, "size": 1}, {"path": "a", "digest": D1, "size": 1}],
    ],
)
def test_manifest_from_list_rejects_bad_input(items: list[object]) -> None:
    with pytest.raises(InvalidInputError):
        Manifest.from_list(items)  # type: ignore[arg-type]


def test_manifest_diff() -> None:
    old = Manifest(
        (ManifestEntry("keep", D1, 1), ManifestEntry("edit", D1, 1), ManifestEntry("gone", D1, 1))
    )
    new = Manifest(
        (
            ManifestEntry("keep", D1, 1),
            ManifestEntry("edit", D2, 1),
            ManifestEntry("new/b", D3, 1),
            ManifestEntry("new/a", D3, 1),
        )
    )
    diff = old.diff(new)
    assert diff == ManifestDiff(added=("new/a", "new/b"), removed=("gone",), changed=("edit",))
    assert diff
    assert not old.diff(old)
    assert new.diff(old) == ManifestDiff(("gone",), ("new/a", "new/b"), ("edit",))
