"""Content-addressed artifact storage: blobs, manifests, ingestion and a hash cache.

Typical use::

    store = ArtifactStore("file:///srv/charter/artifacts")
    with HashCache(home / "hashcache.sqlite") as cache:
        manifest = ingest(store, Path("model/"), cache=cache)
    store.get_file(manifest.entries[0].digest, Path("out/model.bin"))
"""

from __future__ import annotations

from charter.artifacts.hashcache import HashCache, Progress
from charter.artifacts.ingestion import StagedSource, ingest, stage
from charter.artifacts.paths import (
    Manifest,
    ManifestDiff,
    ManifestEntry,
    SourceFile,
    scan_source,
    validate_relpath,
)
from charter.artifacts.store import ArtifactStore, Blob, GcReport, validate_digest

__all__ = [
    "ArtifactStore",
    "Blob",
    "GcReport",
    "HashCache",
    "Manifest",
    "ManifestDiff",
    "ManifestEntry",
    "Progress",
    "SourceFile",
    "StagedSource",
    "ingest",
    "scan_source",
    "stage",
    "validate_digest",
    "validate_relpath",
]
