"""``audit verify``: recompute the ledger and hold every state row against it.

Verification trusts nothing stored: leaf hashes are recomputed from entry
bodies, subtree hashes from leaves, checkpoint roots from those, and the state
the ledger describes (replayed entry by entry) is compared with the rows the
registry serves. Every disagreement becomes a :class:`Problem` naming what and
where; nothing stops at the first one.

All reads happen in one read transaction (one snapshot). The work is split in
:mod:`charter._audit_ledger` (entries, nodes, checkpoints),
:mod:`charter._audit_state` (the replayed state against the rows) and
:mod:`charter._audit_gates` (the sign-off state, with its rows read by
:mod:`charter._audit_signoff_rows`); entries
stream from the cursor and are dropped once applied, so memory and the garbage
collector's work grow with the state, not with the length of the history.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from charter._audit_gates import GateExpected, apply_gate_entry, check_gates, read_gate_rows
from charter._audit_ledger import check_checkpoints, check_entries, check_head, check_nodes
from charter._audit_report import Problem, Problems, VerifyReport
from charter._audit_state import (
    Expected,
    FileRow,
    ProfileRows,
    apply_entry,
    check_profiles,
    check_state,
    profile_records,
)
from charter.artifacts import ArtifactStore
from charter.domain.errors import CharterError
from charter.store import Store

__all__ = ["Expected", "Problem", "VerifyReport", "verify_artifacts", "verify_registry"]

_ORPHAN_MESSAGES = {
    "dataset": "dataset rows belong to no version",
    "tag": "tag rows belong to no version",
    "version": "a version row belongs to no model",
}


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

    Returns:
        The report; ``ok`` when no problem was found.

    Raises:
        StorageError: when the database cannot be read at all.
    """
    with _cyclic_gc_paused():
        return _verify(store, public_key, checkpoint_every)


def _verify(
    store: Store, public_key: Ed25519PublicKey, checkpoint_every: int | None
) -> VerifyReport:
    problems = Problems()
    expected = Expected()
    with store.read() as tx:
        head = check_head(tx.ledger_heads(), problems)
        checkpoint_rows = tx.checkpoints()
        gates = GateExpected()

        def replay(seq: Any, type_: Any, subject: Any, body: dict[str, Any]) -> None:
            apply_entry(expected, problems, seq, type_, subject, body)
            apply_gate_entry(gates, problems, seq, type_, subject, body)

        leaves = check_entries(tx.iter_entries(), problems, replay)
        levels = check_nodes(leaves, tx.iter_nodes(), problems)
        models = _readable(
            "models", problems, lambda: {m.name: m.state() for m in tx.list_models()}
        )
        versions = _readable("versions", problems, tx.all_versions)
        refs = {vid: v.ref for vid, v in versions} if versions is not None else tx.version_refs()
        files: dict[int, list[FileRow]] = {}
        for vid, path, digest, file_size in tx.iter_file_rows():
            files.setdefault(vid, []).append((path, digest, file_size))
        rows = ProfileRows(
            records=profile_records(tx.profile_entry_rows(), refs, problems),
            amendments=_readable("profile_amendments", problems, tx.all_amendment_records),
            cards=tx.card_rows(refs=refs),
        )
        gate_rows = _readable("sign-off state", problems, lambda: read_gate_rows(tx, refs))
        for kind, vid in tx.orphan_rows():
            problems.add("state", f"version id {vid}", _ORPHAN_MESSAGES[kind])
    if head is None:
        # Without its head the ledger has no size to hold the entries to, and no
        # origin to check checkpoint signatures with; `charter init` refuses to
        # start a new ledger over these entries (see charter.home.init_home).
        problems.add(
            "ledger",
            "head",
            f"the ledger head is missing or corrupt while {len(leaves)} entries exist: "
            "restore it from a backup (checkpoint signatures cannot be checked without it)",
        )
    elif len(leaves) != head[0]:
        problems.add(
            "ledger", "head", f"the head says {head[0]} entries but {len(leaves)} are stored"
        )
    origin = head[1] if head is not None else None
    latest = check_checkpoints(checkpoint_rows, levels, origin, public_key, problems)
    unsigned = len(leaves) - latest
    if checkpoint_every is not None and unsigned >= checkpoint_every:
        problems.add(
            "checkpoint",
            "head",
            f"{unsigned} entries follow the latest checkpoint, but one is signed every "
            f"{checkpoint_every}: checkpoints were deleted (if checkpoint_every was lowered "
            "recently, sign one with `charter audit checkpoint`)",
        )
    check_state(expected, models, versions, refs, files, problems)
    check_profiles(expected, versions, refs, rows, problems)
    if gate_rows is not None:
        check_gates(gates, gate_rows, problems, profiles=expected.profiles)
    return VerifyReport(
        entries=len(leaves),
        checkpoints=len(checkpoint_rows),
        unsigned_entries=unsigned,
        subjects=len(models or {}) + len(versions or []),
        problems=problems.result(),
    )


_T = TypeVar("_T")


@contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector for the block (restored on exit).

    Why: verification allocates millions of short-lived, acyclic containers
    (parsed entries, rows), which reference counting frees at once, while it
    keeps a replayed state of a few hundred thousand. Each automatic full
    collection re-traverses that state and finds nothing to free: at 100k
    entries that was 0.4-0.5 s of a 2.5 s run. The pause only defers
    collection: nothing is leaked, and it stays off if it was off already.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _readable(table: str, problems: Problems, read: Callable[[], _T]) -> _T | None:
    """Run ``read``; a row the store cannot turn into an entity becomes a problem."""
    try:
        return read()
    except (ValueError, TypeError, KeyError, CharterError) as exc:
        problems.add("state", f"table {table}", f"rows cannot be read: {exc}")
        return None


def verify_artifacts(
    store: Store, artifacts: ArtifactStore, *, only: tuple[str, str] | None = None
) -> VerifyReport:
    """Re-hash every stored blob a manifest names (or those of one version).

    Returns:
        A report counting the blobs checked; each missing or corrupted one is a problem.
    """
    with store.read() as tx:
        refs = tx.version_refs()
        rows: list[tuple[Any, ...]] = list(tx.iter_file_rows())
    problems = Problems()
    checked: dict[str, bool] = {}
    for vid, path, digest, _size in rows:
        ref = refs.get(vid, f"id {vid}")
        if only is not None and ref != f"{only[0]}@{only[1]}":
            continue
        if digest not in checked:
            checked[digest] = _blob_ok(artifacts, digest)
        if not checked[digest]:
            problems.add(
                "artifact",
                f"{ref}:{path}",
                f"blob {digest} is missing or its bytes differ from its digest",
            )
    return VerifyReport(blobs=len(checked), problems=problems.result())


def _blob_ok(artifacts: ArtifactStore, digest: str) -> bool:
    # A malformed digest (a tampered row), a blob deleted meanwhile or an
    # unreadable one is a finding about that file, not a reason to stop.
    try:
        return artifacts.exists(digest) and artifacts.verify(digest)
    except CharterError:
        return False
