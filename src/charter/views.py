"""JSON views of entities, shared by every surface so they print the same shape."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from charter.domain.canonical import loads
from charter.domain.entities import FileRecord, LedgerRecord, Model, Version

__all__ = ["entry_view", "model_view", "version_view"]


def model_view(model: Model) -> dict[str, Any]:
    """A model as JSON."""
    return model.state()


def version_view(version: Version, *, files: Sequence[FileRecord] | None = None) -> dict[str, Any]:
    """A version as JSON (its ledger record plus tags and, optionally, files)."""
    view = {"ref": version.ref, **version.record(), "tags": dict(sorted(version.tags.items()))}
    if files is not None:
        view["files"] = [{"path": f.path, "digest": f.digest, "size": f.size} for f in files]
    return view


def entry_view(record: LedgerRecord) -> dict[str, Any]:
    """A ledger entry as JSON: the signed body plus its leaf hash."""
    return {**loads(record.body), "leaf_hash": record.leaf_hash.hex()}
