"""Lineage results: what a version descends from, and how two versions differ."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from charter.domain.entities import DatasetRef, FileRecord, Version

__all__ = ["FieldChange", "Lineage", "VersionDiff", "diff_versions"]


@dataclass(frozen=True)
class FieldChange:
    """One value that differs between two versions."""

    name: str
    before: Any
    after: Any

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"name": self.name, "before": self.before, "after": self.after}


@dataclass(frozen=True)
class VersionDiff:
    """What changed from version ``a`` to version ``b``."""

    a: str
    b: str
    fingerprints: tuple[FieldChange, ...]
    params: tuple[FieldChange, ...]
    datasets_added: tuple[DatasetRef, ...]
    datasets_removed: tuple[DatasetRef, ...]
    files_added: tuple[str, ...]
    files_removed: tuple[str, ...]
    files_changed: tuple[str, ...]
    other: tuple[FieldChange, ...]

    @property
    def identical(self) -> bool:
        """True when nothing but the version identity differs."""
        return not any(
            (
                self.fingerprints,
                self.params,
                self.datasets_added,
                self.datasets_removed,
                self.files_added,
                self.files_removed,
                self.files_changed,
                self.other,
            )
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "a": self.a,
            "b": self.b,
            "fingerprints": [c.to_dict() for c in self.fingerprints],
            "params": [c.to_dict() for c in self.params],
            "datasets": {
                "added": [d.state() for d in self.datasets_added],
                "removed": [d.state() for d in self.datasets_removed],
            },
            "files": {
                "added": list(self.files_added),
                "removed": list(self.files_removed),
                "changed": list(self.files_changed),
            },
            "other": [c.to_dict() for c in self.other],
        }


@dataclass(frozen=True)
class Lineage:
    """A version with its ancestors (nearest first) and descendants (by depth)."""

    version: Version
    ancestors: tuple[Version, ...]
    descendants: tuple[Version, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "version": _node(self.version),
            "ancestors": [_node(v) for v in self.ancestors],
            "descendants": [_node(v) for v in self.descendants],
        }


def _node(v: Version) -> dict[str, Any]:
    return {
        "ref": v.ref,
        "parent": f"{v.model}@{v.parent}" if v.parent else None,
        "state": v.state.value,
        "change_kind": v.change_kind,
        "run_id": v.run_id,
        "commit": v.commit,
        "datasets": [d.state() for d in v.datasets],
    }


def _changes(before: dict[str, Any], after: dict[str, Any]) -> tuple[FieldChange, ...]:
    keys = sorted(set(before) | set(after))
    return tuple(
        FieldChange(k, before.get(k), after.get(k)) for k in keys if before.get(k) != after.get(k)
    )


def _fingerprints(v: Version) -> dict[str, Any]:
    return {"architecture": v.fp_architecture, "data": v.fp_data, "config": v.fp_config}


def _other(v: Version) -> dict[str, Any]:
    return {"run_id": v.run_id, "commit": v.commit, "architecture_method": v.architecture_method}


def diff_versions(
    a: Version, b: Version, files_a: list[FileRecord], files_b: list[FileRecord]
) -> VersionDiff:
    """Compare two versions field by field, dataset by dataset and file by file."""
    fa = {f.path: f.digest for f in files_a}
    fb = {f.path: f.digest for f in files_b}
    return VersionDiff(
        a=a.ref,
        b=b.ref,
        fingerprints=_changes(_fingerprints(a), _fingerprints(b)),
        params=_changes(a.params, b.params),
        datasets_added=tuple(d for d in b.datasets if d not in a.datasets),
        datasets_removed=tuple(d for d in a.datasets if d not in b.datasets),
        files_added=tuple(sorted(set(fb) - set(fa))),
        files_removed=tuple(sorted(set(fa) - set(fb))),
        files_changed=tuple(sorted(p for p in set(fa) & set(fb) if fa[p] != fb[p])),
        other=_changes(_other(a), _other(b)),
    )
