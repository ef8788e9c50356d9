"""``audit verify``: recompute the ledger and hold every state row against it.

Verification trusts nothing stored: leaf hashes are recomputed from entry
bodies, subtree hashes from leaves, checkpoint roots from those, and the state
the ledger describes (replayed entry by entry) is compared with the rows the
registry serves. Every disagreement becomes a :class:`Problem` naming what and
where; nothing stops at the first one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from charter.artifacts import ArtifactStore, Manifest, ManifestEntry
from charter.domain.canonical import loads
from charter.domain.entities import FileRecord, LedgerRecord, Version
from charter.domain.errors import CharterError
from charter.journal import checkpoint_from_row
from charter.ledger import IncrementalTree, MemoryNodeStore, leaf_hash, node_hash, verify_checkpoint
from charter.store import Store

__all__ = ["Expected", "Problem", "VerifyReport", "verify_artifacts", "verify_registry"]

_MAX_PER_KIND = 50


@dataclass(frozen=True)
class Problem:
    """One discrepancy: ``kind`` (ledger, checkpoint, state, artifact), where, what."""

    kind: str
    where: str
    message: str

    def to_dict(self) -> dict[str, str]:
        """JSON-ready form."""
        return {"kind": self.kind, "where": self.where, "message": self.message}


@dataclass(frozen=True)
class VerifyReport:
    """Outcome of a verification run."""

    entries: int = 0
    checkpoints: int = 0
    unsigned_entries: int = 0
    subjects: int = 0
    blobs: int = 0
    problems: tuple[Problem, ...] = ()

    @property
    def ok(self) -> bool:
        """True when no problem was found."""
        return not self.problems

    def extend(self, other: VerifyReport) -> VerifyReport:
        """Combine two reports (e.g. ledger and artifacts)."""
        return VerifyReport(
            entries=max(self.entries, other.entries),
            checkpoints=max(self.checkpoints, other.checkpoints),
            unsigned_entries=max(self.unsigned_entries, other.unsigned_entries),
            subjects=max(self.subjects, other.subjects),
            blobs=self.blobs + other.blobs,
            problems=self.problems + other.problems,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "ok": self.ok,
            "entries": self.entries,
            "checkpoints": self.checkpoints,
            "unsigned_entries": self.unsigned_entries,
            "subjects": self.subjects,
            "blobs": self.blobs,
            "problems": [p.to_dict() for p in self.problems],
        }


@dataclass
class Expected:
    """The state the ledger describes, built by replaying its entries."""

    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    versions: dict[str, dict[str, Any]] = field(default_factory=dict)
    tags: dict[str, dict[str, str]] = field(default_factory=dict)


def _apply_model_created(exp: Expected, data: dict[str, Any]) -> None:
    exp.models[data["model"]["name"]] = data["model"]


def _apply_version_record(exp: Expected, data: dict[str, Any]) -> None:
    record = data["record"]
    ref = f"{record['model']}@{record['version']}"
    exp.versions[ref] = record
    exp.tags.setdefault(ref, {})


def _apply_version_deleted(exp: Expected, data: dict[str, Any]) -> None:
    ref = f"{data['record']['model']}@{data['record']['version']}"
    exp.versions.pop(ref, None)
    exp.tags.pop(ref, None)


def _apply_tag_set(exp: Expected, data: dict[str, Any], subject: str) -> None:
    exp.tags[subject.removeprefix("version:")] = dict(data["tags"])


# How each event type changes the expected state. Types absent here (such as
# bump.overridden) are informational: they describe a decision, not a row.
APPLIERS: dict[str, Callable[[Expected, dict[str, Any], str], None]] = {
    "model.created": lambda e, d, _s: _apply_model_created(e, d),
    "version.registered": lambda e, d, _s: _apply_version_record(e, d),
    "version.published": lambda e, d, _s: _apply_version_record(e, d),
    "version.deleted": lambda e, d, _s: _apply_version_deleted(e, d),
    "tag.set": _apply_tag_set,
}


class _Problems:
    """Collects problems, keeping at most ``_MAX_PER_KIND`` of each kind."""

    def __init__(self) -> None:
        self.items: list[Problem] = []
        self.counts: dict[str, int] = {}

    def add(self, kind: str, where: str, message: str) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + 1
        if self.counts[kind] <= _MAX_PER_KIND:
            self.items.append(Problem(kind, where, message))

    def result(self) -> tuple[Problem, ...]:
        extra = [
            Problem(kind, "…", f"{n - _MAX_PER_KIND} more {kind} problems not listed")
            for kind, n in self.counts.items()
            if n > _MAX_PER_KIND
        ]
        return tuple(self.items + extra)


def verify_registry(store: Store, *, public_key: Ed25519PublicKey) -> VerifyReport:
    """Verify the ledger, its checkpoints and every state row against it."""
    with store.read() as tx:
        size = tx.ledger_size()
        origin = tx.ledger_origin() or ""
        records = tx.entries()
        stored_nodes = tx.all_nodes()
        checkpoint_rows = tx.checkpoints()
        models = {m.name: m.state() for m in tx.list_models()}
        versions = tx.list_versions()
        ids = tx.version_refs()
        files = tx.all_files()
    problems = _Problems()
    leaves, bodies = _check_entries(records, size, problems)
    nodes = _check_nodes(leaves, stored_nodes, problems)
    latest = _check_checkpoints(checkpoint_rows, nodes, len(leaves), origin, public_key, problems)
    expected = Expected()
    for seq, record, body in bodies:
        apply = APPLIERS.get(record.type)
        if apply is not None:
            try:
                apply(expected, body["data"], record.subject)
            except (KeyError, TypeError):
                problems.add("ledger", f"entry {seq}", f"{record.type} entry lacks its state data")
    _check_state(expected, models, versions, ids, files, problems)
    return VerifyReport(
        entries=len(records),
        checkpoints=len(checkpoint_rows),
        unsigned_entries=len(leaves) - latest,
        subjects=len(models) + len(versions),
        problems=problems.result(),
    )


def _check_entries(
    records: list[LedgerRecord], size: int, problems: _Problems
) -> tuple[list[bytes], list[tuple[int, LedgerRecord, dict[str, Any]]]]:
    if len(records) != size:
        problems.add(
            "ledger", "head", f"the head says {size} entries but {len(records)} are stored"
        )
    leaves: list[bytes] = []
    bodies = []
    for position, record in enumerate(records):
        where = f"entry {record.seq}"
        if record.seq != position:
            problems.add(
                "ledger", where, f"expected entry {position} here: entries are missing or inserted"
            )
        leaf = leaf_hash(record.body)
        leaves.append(leaf)
        if leaf != record.leaf_hash:
            problems.add("ledger", where, "the stored leaf hash does not match the entry body")
        try:
            body = loads(record.body)
        except ValueError:
            problems.add("ledger", where, "the entry body is not valid JSON")
            continue
        columns = {
            "seq": record.seq,
            "type": record.type,
            "subject": record.subject,
            "actor": record.actor,
            "time": record.time,
        }
        differing = [k for k, v in columns.items() if body.get(k) != v]
        if differing:
            problems.add(
                "ledger",
                where,
                f"row columns disagree with the signed body: {', '.join(differing)}",
            )
        bodies.append((record.seq, record, body))
    return leaves, bodies


def _check_nodes(
    leaves: list[bytes], stored: dict[tuple[int, int], bytes], problems: _Problems
) -> dict[tuple[int, int], bytes]:
    computed: dict[tuple[int, int], bytes] = {}
    level, row = 0, leaves
    while row:
        for index, value in enumerate(row):
            computed[(level, index)] = value
        row = [node_hash(row[i], row[i + 1]) for i in range(0, len(row) - 1, 2)]
        level += 1
    for key, value in computed.items():
        if stored.get(key) != value:
            problems.add(
                "ledger",
                f"node {key}",
                "a stored subtree hash is missing or differs from the entries",
            )
    for key in stored.keys() - computed.keys():
        problems.add("ledger", f"node {key}", "a stored subtree hash covers no entries")
    return computed


def _check_checkpoints(
    rows: list[Any],
    nodes: dict[tuple[int, int], bytes],
    size: int,
    origin: str,
    public_key: Ed25519PublicKey,
    problems: _Problems,
) -> int:
    tree = IncrementalTree(MemoryNodeStore((lv, ix, h) for (lv, ix), h in nodes.items()))
    latest = 0
    for row in rows:
        cp = checkpoint_from_row(row, origin=origin)
        where = f"checkpoint {cp.tree_size}"
        if not verify_checkpoint(cp, public_key):
            problems.add(
                "checkpoint", where, "the signature does not verify with this registry's key"
            )
        if cp.tree_size > size:
            problems.add(
                "checkpoint", where, f"signed a tree of {cp.tree_size} entries; only {size} exist"
            )
            continue
        if tree.root(cp.tree_size) != cp.root_hash:
            problems.add(
                "checkpoint",
                where,
                "the signed root differs from the recomputed tree: history was rewritten",
            )
        latest = max(latest, cp.tree_size)
    return latest


def _diff_keys(a: dict[str, Any], b: dict[str, Any]) -> str:
    return ", ".join(sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k)))


def _check_state(
    exp: Expected,
    models: dict[str, dict[str, Any]],
    versions: list[Version],
    ids: dict[int, str],
    files: dict[int, list[FileRecord]],
    problems: _Problems,
) -> None:
    _compare("model", exp.models, models, problems)
    actual = {v.ref: v.record() for v in versions}
    _compare("version", exp.versions, actual, problems)
    _compare("tags of", exp.tags, {v.ref: v.tags for v in versions}, problems)
    by_ref = {ref: vid for vid, ref in ids.items()}
    for version in versions:
        rows = files.get(by_ref.get(version.ref, -1), [])
        digest = _manifest_digest(rows)
        if digest != version.manifest_digest:
            problems.add(
                "state", f"version {version.ref}", "its file rows do not match its manifest digest"
            )
    for vid in files.keys() - ids.keys():
        problems.add("state", f"version id {vid}", "file rows belong to no version")


def _compare(
    label: str, expected: dict[str, Any], actual: dict[str, Any], problems: _Problems
) -> None:
    for key in expected.keys() - actual.keys():
        problems.add(
            "state", f"{label} {key}", "recorded in the ledger but missing from the database"
        )
    for key in actual.keys() - expected.keys():
        problems.add("state", f"{label} {key}", "present in the database without a ledger entry")
    for key in expected.keys() & actual.keys():
        if expected[key] != actual[key]:
            changed = _diff_keys(expected[key], actual[key])
            problems.add("state", f"{label} {key}", f"differs from the ledger in: {changed}")


def _manifest_digest(rows: Iterable[FileRecord]) -> str | None:
    try:
        return Manifest(tuple(ManifestEntry(r.path, r.digest, r.size) for r in rows)).digest
    except CharterError:
        return None


def verify_artifacts(
    store: Store, artifacts: ArtifactStore, *, only: tuple[str, str] | None = None
) -> VerifyReport:
    """Re-hash every stored blob a manifest names (or those of one version)."""
    with store.read() as tx:
        refs = tx.version_refs()
        files = tx.all_files()
    problems = _Problems()
    checked: dict[str, bool] = {}
    for vid, rows in files.items():
        ref = refs.get(vid, f"id {vid}")
        if only is not None and ref != f"{only[0]}@{only[1]}":
            continue
        for row in rows:
            if row.digest not in checked:
                checked[row.digest] = artifacts.exists(row.digest) and artifacts.verify(row.digest)
            if not checked[row.digest]:
                problems.add(
                    "artifact",
                    f"{ref}:{row.path}",
                    f"blob {row.digest} is missing or its bytes differ from its digest",
                )
    return VerifyReport(blobs=len(checked), problems=problems.result())
