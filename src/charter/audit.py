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
from typing import Any, TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import select

from charter.artifacts import ArtifactStore, Manifest, ManifestEntry
from charter.domain.canonical import loads
from charter.domain.entities import FileRecord, LedgerRecord, Version
from charter.domain.errors import CharterError
from charter.journal import checkpoint_from_row
from charter.ledger import IncrementalTree, MemoryNodeStore, leaf_hash, node_hash, verify_checkpoint
from charter.store import ReadTx, Store
from charter.store import schema as t

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


def verify_registry(
    store: Store, *, public_key: Ed25519PublicKey, checkpoint_every: int | None = None
) -> VerifyReport:
    """Verify the ledger, its checkpoints and every state row against it.

    Args:
        store: the metadata store.
        public_key: the registry's checkpoint signing key.
        checkpoint_every: the ``checkpoint_every`` setting the ledger was written
            with. The ledger signs a checkpoint whenever its size reaches a
            multiple of it, so ``checkpoint_every`` or more entries after the
            latest checkpoint mean checkpoints were deleted (after which the
            unsigned part could be rewritten undetectably). ``None`` skips this.
    """
    problems = _Problems()
    with store.read() as tx:
        size, origin = _read_head(tx, problems)
        records = tx.entries()
        stored_nodes = tx.all_nodes()
        checkpoint_rows = tx.checkpoints()
        models = _readable(
            "models", problems, lambda: {m.name: m.state() for m in tx.list_models()}
        )
        versions = _readable("versions", problems, tx.list_versions)
        ids = tx.version_refs()
        files = tx.all_files()
        _check_orphans(tx, problems)
    leaves, bodies = _check_entries(records, size, problems)
    nodes = _check_nodes(leaves, stored_nodes, problems)
    latest = _check_checkpoints(checkpoint_rows, nodes, len(leaves), origin, public_key, problems)
    unsigned = len(leaves) - latest
    if checkpoint_every is not None and unsigned >= checkpoint_every:
        problems.add(
            "checkpoint",
            "head",
            f"{unsigned} entries follow the latest checkpoint, but one is signed every "
            f"{checkpoint_every}: checkpoints were deleted (if checkpoint_every was lowered "
            "recently, sign one with `charter audit checkpoint`)",
        )
    expected = Expected()
    for seq, record, body in bodies:
        apply = APPLIERS.get(record.type)
        if apply is not None:
            try:
                apply(expected, body["data"], record.subject)
            except (KeyError, TypeError, ValueError, AttributeError):
                problems.add("ledger", f"entry {seq}", f"{record.type} entry lacks its state data")
    _check_state(expected, models, versions, ids, files, problems)
    return VerifyReport(
        entries=len(records),
        checkpoints=len(checkpoint_rows),
        unsigned_entries=unsigned,
        subjects=len(models or {}) + len(versions or []),
        problems=problems.result(),
    )


_T = TypeVar("_T")


def _readable(table: str, problems: _Problems, read: Callable[[], _T]) -> _T | None:
    """Run ``read``; a row the store cannot turn into an entity becomes a problem."""
    try:
        return read()
    except (ValueError, TypeError, KeyError, CharterError) as exc:
        problems.add("state", f"table {table}", f"rows cannot be read: {exc}")
        return None


# The checks below read raw rows: they look for rows the entity queries never
# return (they join through parents that do not exist), which is exactly where
# a forged row hides. They belong in ReadTx once the store offers them.
def _read_head(tx: ReadTx, problems: _Problems) -> tuple[int, str]:
    rows = tx.conn.execute(select(t.ledger_head.c.id, t.ledger_head.c.size, t.ledger_head.c.origin))
    heads = rows.all()
    if [r.id for r in heads] != [1]:
        found = ", ".join(str(r.id) for r in heads) or "none"
        problems.add("ledger", "head", f"expected one ledger head row with id 1, found: {found}")
    head = next((r for r in heads if r.id == 1), heads[0] if heads else None)
    if head is None:
        return 0, ""
    size = head.size if isinstance(head.size, int) else -1
    return size, head.origin if isinstance(head.origin, str) else ""


def _check_orphans(tx: ReadTx, problems: _Problems) -> None:
    version_ids = select(t.versions.c.id)
    for table, label in ((t.datasets, "dataset"), (t.tags, "tag")):
        orphans = tx.conn.execute(
            select(table.c.version_id).where(table.c.version_id.not_in(version_ids)).distinct()
        )
        for (vid,) in orphans:
            problems.add("state", f"version id {vid}", f"{label} rows belong to no version")
    hidden = tx.conn.execute(
        select(t.versions.c.id).where(t.versions.c.model_id.not_in(select(t.models.c.id)))
    )
    for (vid,) in hidden:
        problems.add("state", f"version id {vid}", "a version row belongs to no model")


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
        raw = record.body
        if not isinstance(raw, bytes):
            problems.add("ledger", where, "the entry body is not stored as bytes")
            raw = str(raw).encode()
        leaf = leaf_hash(raw)
        leaves.append(leaf)
        if leaf != record.leaf_hash:
            problems.add("ledger", where, "the stored leaf hash does not match the entry body")
        try:
            body = loads(raw)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            problems.add("ledger", where, "the entry body is not a JSON object")
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
        if not isinstance(cp.tree_size, int) or cp.tree_size < 0:
            problems.add("checkpoint", where, "the tree size is not a count of entries")
            continue
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
    models: dict[str, dict[str, Any]] | None,
    versions: list[Version] | None,
    ids: dict[int, str],
    files: dict[int, list[FileRecord]],
    problems: _Problems,
) -> None:
    # A table that could not be read was reported already; comparing it as
    # empty would only add one "missing" problem per row.
    if models is not None:
        _compare("model", exp.models, models, problems)
    for vid in files.keys() - ids.keys():
        problems.add("state", f"version id {vid}", "file rows belong to no version")
    if versions is None:
        return
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
    except (CharterError, TypeError, ValueError, AttributeError):
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
                checked[row.digest] = _blob_ok(artifacts, row.digest)
            if not checked[row.digest]:
                problems.add(
                    "artifact",
                    f"{ref}:{row.path}",
                    f"blob {row.digest} is missing or its bytes differ from its digest",
                )
    return VerifyReport(blobs=len(checked), problems=problems.result())


def _blob_ok(artifacts: ArtifactStore, digest: str) -> bool:
    # A malformed digest (a tampered row), a blob deleted meanwhile or an
    # unreadable one is a finding about that file, not a reason to stop.
    try:
        return artifacts.exists(digest) and artifacts.verify(digest)
    except CharterError:
        return False
