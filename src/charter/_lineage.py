"""Lineage use cases of the registry: ancestry, dataset users, diffs.

Mixed into :class:`charter.service.Registry`.
"""

from __future__ import annotations

from typing import Protocol

from charter.domain.entities import FileRecord, Version
from charter.domain.lineage import Lineage, VersionDiff, diff_versions
from charter.store import Store

__all__ = ["LineageUseCases"]


class _Host(Protocol):
    store: Store

    def get_version(self, *, model: str, version: str) -> Version: ...

    def files(self, *, model: str, version: str) -> list[FileRecord]: ...


class LineageUseCases:
    """Lineage queries (recursive SQL in the store, never Python walks)."""

    def lineage(self: _Host, *, model: str, version: str) -> Lineage:
        """Return the ancestors and descendants of ``model@version``."""
        root = self.get_version(model=model, version=version)
        with self.store.read() as tx:
            vid = tx.version_id(model, version) or 0
            up = [i for i, _ in tx.lineage_ids(vid, direction="ancestors")]
            down = [i for i, _ in tx.lineage_ids(vid, direction="descendants")]
            by_id = tx.versions_by_ids(up + down)
        return Lineage(root, tuple(by_id[i] for i in up), tuple(by_id[i] for i in down))

    def versions_using_dataset(self: _Host, *, digest: str) -> list[Version]:
        """Return every version that declared a dataset with ``digest``."""
        with self.store.read() as tx:
            return list(tx.versions_by_ids(tx.version_ids_using_digest(digest)).values())

    def diff(self: _Host, *, model: str, a: str, b: str, model_b: str | None = None) -> VersionDiff:
        """Compare two versions: fingerprints, params, datasets and files."""
        va = self.get_version(model=model, version=a)
        vb = self.get_version(model=model_b or model, version=b)
        return diff_versions(
            va,
            vb,
            self.files(model=model, version=a),
            self.files(model=model_b or model, version=b),
        )
