"""Read models of the pages: a bounded number of queries per page, whatever the size.

The service's use-case methods answer one question about one thing; a page
asks many small questions about a *page* of things (the latest versions and
gate state of fifty models). Asking the service per row would be the N+1
pattern that slows down as a registry grows, so the few list queries the
pages need are here, each one statement with window functions and bounded
``IN`` lists. They only read, within one read transaction of the registry's
store, and return plain dataclasses; everything else comes from the service.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, select

from charter.domain.entities import FileRecord, Model, RiskTier, Version
from charter.domain.stages import Approval, StageMove
from charter.service import Registry
from charter.store import ReadTx
from charter.store import schema as t

__all__ = [
    "GateState",
    "ModelRow",
    "VersionFacts",
    "VersionRow",
    "files_page",
    "lineage_versions",
    "model_refs",
    "model_stages",
    "models_page",
    "semver_key",
    "version_facts",
    "versions_page",
]

LATEST = 3
_SEMVER = re.compile(r"^(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$")
_M, _V, _D, _S = t.models, t.versions, t.gate_decisions, t.stages


def semver_key(text: str) -> tuple[Any, ...]:
    """A sort key ordering versions as semantic versioning 2.0 says (11: precedence).

    A release sorts after its pre-releases; pre-release identifiers compare
    numerically when numeric, and numeric ones sort before alphanumeric ones.
    Much cheaper than parsing with ``semver`` for thousands of versions.
    """
    found = _SEMVER.match(text)
    if found is None:  # stored versions were validated; this is only a fallback
        return (-1, text)
    major, minor, patch, pre = found.groups()
    if pre is None:
        return (int(major), int(minor), int(patch), 1, ())
    parts = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split("."))
    return (int(major), int(minor), int(patch), 0, parts)


@dataclass(frozen=True)
class GateState:
    """The latest gate decision of a model for one stage."""

    stage: str
    version: str
    passed: bool
    decided_at: str


@dataclass(frozen=True)
class ModelRow:
    """One line of the models list."""

    model: Model
    version_count: int
    latest: tuple[tuple[str, str], ...]  # (version, state), newest first
    stages: tuple[tuple[str, str], ...]  # (stage, version)
    gates: tuple[GateState, ...]


def _model(row: Any) -> Model:
    return Model(row.name, row.description, row.owner, RiskTier(row.risk_tier),
                 row.created_by, row.created_at)  # fmt: skip


def models_page(registry: Registry, *, page: int, per_page: int) -> tuple[list[ModelRow], int]:
    """One page of models (by name) with their summary, in five statements.

    Returns:
        (rows, total number of models).
    """
    with registry.store.read() as tx:
        conn = tx.conn
        total = conn.execute(select(func.count()).select_from(_M)).scalar_one()
        rows = conn.execute(
            select(_M).order_by(_M.c.name).limit(per_page).offset((page - 1) * per_page)
        ).all()
        ids = [r.id for r in rows]
        if not ids:
            return [], int(total)
        counts: dict[int, int] = dict(
            conn.execute(
                select(_V.c.model_id, func.count())
                .where(_V.c.model_id.in_(ids))
                .group_by(_V.c.model_id)
            ).all()
        )
        rank = func.row_number().over(partition_by=_V.c.model_id, order_by=_V.c.id.desc())
        recent = (
            select(_V.c.model_id, _V.c.version, _V.c.state, rank.label("rank"))
            .where(_V.c.model_id.in_(ids))
            .subquery()
        )
        latest: dict[int, list[tuple[str, str]]] = {}
        for r in conn.execute(
            select(recent).where(recent.c.rank <= LATEST).order_by(recent.c.rank)
        ):
            latest.setdefault(r.model_id, []).append((r.version, r.state))
        stages: dict[int, list[tuple[str, str]]] = {}
        for r in conn.execute(
            select(_S.c.model_id, _S.c.stage, _V.c.version)
            .join(_V, _V.c.id == _S.c.version_id)
            .where(_S.c.model_id.in_(ids))
            .order_by(_S.c.stage)
        ):
            stages.setdefault(r.model_id, []).append((r.stage, r.version))
        gates = _latest_gates(tx, ids)
    return [
        ModelRow(
            model=_model(r),
            version_count=int(counts.get(r.id, 0)),
            latest=tuple(latest.get(r.id, ())),
            stages=tuple(stages.get(r.id, ())),
            gates=tuple(gates.get(r.id, ())),
        )
        for r in rows
    ], int(total)


def _latest_gates(tx: ReadTx, model_ids: list[int]) -> dict[int, list[GateState]]:
    rank = func.row_number().over(partition_by=(_V.c.model_id, _D.c.stage), order_by=_D.c.id.desc())
    decided = (
        select(_V.c.model_id, _V.c.version, _D.c.stage, _D.c.passed, _D.c.decided_at,
               rank.label("rank"))
        .join(_V, _V.c.id == _D.c.version_id)
        .where(_V.c.model_id.in_(model_ids))
        .subquery()
    )  # fmt: skip
    out: dict[int, list[GateState]] = {}
    query = select(decided).where(decided.c.rank == 1).order_by(decided.c.stage)
    for r in tx.conn.execute(query):
        out.setdefault(r.model_id, []).append(
            GateState(r.stage, r.version, bool(r.passed), r.decided_at)
        )
    return out


@dataclass(frozen=True)
class VersionRow:
    """One line of a model's versions list."""

    version: str
    state: str
    parent: str | None
    change_kind: str | None
    created_by: str
    created_at: str


def versions_page(
    registry: Registry, *, model: str, page: int, per_page: int
) -> tuple[list[VersionRow], int]:
    """One page of a model's versions, highest semantic version first.

    Semantic versions do not sort in SQL, so the light columns of every version
    are read in one statement and sorted here; only the page is returned.
    """
    parent = _V.alias("parent")
    with registry.store.read() as tx:
        mid = tx.model_id(model)
        if mid is None:
            registry.get_model(name=model)  # raises NotFoundError
        rows = tx.conn.execute(
            select(_V.c.version, _V.c.state, parent.c.version.label("parent"), _V.c.change_kind,
                   _V.c.created_by, _V.c.created_at)
            .outerjoin(parent, parent.c.id == _V.c.parent_id)
            .where(_V.c.model_id == mid)
        ).all()  # fmt: skip
    ordered = sorted(rows, key=lambda r: semver_key(r.version), reverse=True)
    start = (page - 1) * per_page
    return [
        VersionRow(r.version, r.state, r.parent, r.change_kind, r.created_by, r.created_at)
        for r in ordered[start : start + per_page]
    ], len(rows)


def lineage_versions(registry: Registry, *, model: str, limit: int) -> tuple[list[Version], int]:
    """The ``limit`` highest versions of ``model`` (oldest first) and how many there are."""
    with registry.store.read() as tx:
        mid = tx.model_id(model)
        if mid is None:
            registry.get_model(name=model)  # raises NotFoundError
        rows = tx.conn.execute(select(_V.c.id, _V.c.version).where(_V.c.model_id == mid)).all()
        chosen = sorted(rows, key=lambda r: semver_key(r.version))[-limit:]
        found = tx.versions_by_ids([r.id for r in chosen])
    return [found[r.id] for r in chosen], len(rows)


def model_refs(tx: ReadTx, model_id: int, name: str) -> dict[int, str]:
    """``{version id: name@version}`` of one model's versions (not the whole registry's)."""
    rows = tx.conn.execute(select(_V.c.id, _V.c.version).where(_V.c.model_id == model_id))
    return {r.id: f"{name}@{r.version}" for r in rows}


def files_page(
    registry: Registry, *, model: str, version: str, page: int, per_page: int
) -> tuple[list[FileRecord], int]:
    """One page of a version's manifest, by path, and the number of files."""
    f = t.files
    with registry.store.read() as tx:
        vid = tx.version_id(model, version) or 0
        total = tx.conn.execute(
            select(func.count()).select_from(f).where(f.c.version_id == vid)
        ).scalar_one()
        rows = tx.conn.execute(
            select(f.c.path, f.c.digest, f.c.size)
            .where(f.c.version_id == vid)
            .order_by(f.c.path)
            .limit(per_page)
            .offset((page - 1) * per_page)
        )
        return [FileRecord(r.path, r.digest, r.size) for r in rows], int(total)


def model_stages(
    registry: Registry, *, model: str
) -> tuple[dict[str, dict[str, Any]], list[StageMove]]:
    """A model's stage pointers (``{stage: pointer}``) and its stage history, oldest first."""
    with registry.store.read() as tx:
        mid = tx.model_id(model)
        if mid is None:
            registry.get_model(name=model)  # raises NotFoundError
            raise AssertionError("unreachable")
        refs = model_refs(tx, mid, model)
        pointers = {p["stage"]: p for p in tx.stage_pointers(mid, refs=refs)}
        return pointers, tx.stage_history(mid, refs=refs)


@dataclass(frozen=True)
class VersionFacts:
    """What the version page shows beyond the version and its profile."""

    decisions: list[dict[str, Any]]  # newest first
    decision_count: int
    approvals: list[Approval]  # oldest first
    held: list[str]  # stages this version holds now
    pointers: dict[str, str]  # stage -> version holding it
    moves: list[StageMove]  # the model's stage history, oldest first
    status: tuple[str, str, str, str] | None  # deprecated/archived: (status, reason, by, at)


def version_facts(
    registry: Registry, *, model: str, version: str, decisions: int = 10
) -> VersionFacts:
    """Gate decisions, approvals, stage pointers and history of ``model@version``."""
    with registry.store.read() as tx:
        mid, vid = tx.ids(model, version)
        if mid is None or vid is None:
            registry.get_version(model=model, version=version)  # raises NotFoundError
            raise AssertionError("unreachable")
        refs = model_refs(tx, mid, model)
        count = tx.conn.execute(
            select(func.count()).select_from(_D).where(_D.c.version_id == vid)
        ).scalar_one()
        rows = tx.conn.execute(
            select(_D).where(_D.c.version_id == vid).order_by(_D.c.id.desc()).limit(decisions)
        )
        found = [
            {"id": r.id, "stage": r.stage, "passed": bool(r.passed),
             "policy_digest": r.policy_digest, "profile_digest": r.profile_digest,
             "document": json.loads(r.document), "decided_by": r.decided_by,
             "decided_at": r.decided_at}
            for r in rows
        ]  # fmt: skip
        approvals = [a for _, a in tx.approvals(vid, refs=refs)]
        pointers = {
            r.stage: r.version
            for r in tx.conn.execute(
                select(_S.c.stage, _V.c.version)
                .join(_V, and_(_V.c.id == _S.c.version_id))
                .where(_S.c.model_id == mid)
            )
        }
        moves = tx.stage_history(mid, refs=refs)
        status = tx.version_status(vid)
    return VersionFacts(
        decisions=found,
        decision_count=int(count),
        approvals=approvals,
        held=sorted(s for s, v in pointers.items() if v == version),
        pointers=pointers,
        moves=moves,
        status=status,
    )
