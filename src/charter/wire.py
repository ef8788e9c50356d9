"""The JSON shapes of domain values on the wire, both ways, in one place.

The server (:mod:`charter.api`) encodes with these functions and the remote
client (:mod:`charter.client`) decodes with them, so a value read through a
server is *equal* to the one the local registry returns. Where an entity
already has a documented JSON form (``to_dict``, ``state``, the CLI views of
:mod:`charter.views`) that form is the wire form, so ``--json`` output, the
REST API and the ledger agree. Nothing here imports a web framework.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from charter._audit_report import VerifyReport
from charter._search import Page
from charter._trends import Blame
from charter._wire_records import (
    decode_approval,
    decode_checkpoint,
    decode_delivery,
    decode_entry,
    decode_move,
    decode_observation,
    decode_principal,
    decode_proof,
    decode_report,
    decode_token,
    decode_user,
    decode_webhook,
    encode_move,
    encode_principal,
)
from charter.domain.access import Principal, TokenInfo
from charter.domain.cards import CardRecord
from charter.domain.entities import (
    DatasetRef,
    FileRecord,
    LedgerRecord,
    Model,
    RiskTier,
    Version,
    VersionState,
)
from charter.domain.folding import ActiveEntry, AmendmentRecord, EffectiveProfile, ProfileRecord
from charter.domain.gate import GateDecision
from charter.domain.lineage import FieldChange, Lineage, VersionDiff
from charter.domain.monitoring import Observation
from charter.domain.stages import Approval, StageMove, User
from charter.domain.trends import Regression, TrendPoint
from charter.domain.webhooks import Delivery, Webhook
from charter.journal import InclusionProof
from charter.ledger import Checkpoint
from charter.views import entry_view, model_view, version_view

__all__ = [
    "ENCODERS",
    "decode_amendment",
    "decode_approval",
    "decode_blame",
    "decode_card",
    "decode_checkpoint",
    "decode_dataset",
    "decode_delivery",
    "decode_diff",
    "decode_entry",
    "decode_file",
    "decode_lineage",
    "decode_list",
    "decode_model",
    "decode_move",
    "decode_observation",
    "decode_principal",
    "decode_profile",
    "decode_proof",
    "decode_record",
    "decode_report",
    "decode_token",
    "decode_trend_point",
    "decode_user",
    "decode_version",
    "decode_webhook",
    "encode",
    "encode_blame",
    "encode_file",
    "encode_lineage",
    "encode_move",
    "encode_principal",
    "encode_record",
    "encode_trend_point",
]

T = TypeVar("T")


# -- models and versions ----------------------------------------------------
def decode_model(data: Mapping[str, Any]) -> Model:
    """A :class:`Model` from :func:`charter.views.model_view` output."""
    return Model(
        name=data["name"],
        description=data["description"],
        owner=data["owner"],
        risk_tier=RiskTier(data["risk_tier"]),
        created_by=data["created_by"],
        created_at=data["created_at"],
    )


def decode_dataset(data: Mapping[str, Any]) -> DatasetRef:
    """A :class:`DatasetRef` from its ``state()``."""
    return DatasetRef(data["name"], data["role"], data["uri"], data.get("digest"), data.get("size"))


def decode_version(data: Mapping[str, Any]) -> Version:
    """A :class:`Version` from :func:`charter.views.version_view` output."""
    fp = data["fingerprints"]
    return Version(
        model=data["model"],
        version=data["version"],
        state=VersionState(data["state"]),
        parent=data["parent"],
        change_kind=data["change_kind"],
        fp_architecture=fp["architecture"],
        fp_data=fp["data"],
        fp_config=fp["config"],
        architecture_method=fp["architecture_method"],
        manifest_digest=data["manifest_digest"],
        file_count=data["file_count"],
        total_size=data["total_size"],
        run_id=data["run_id"],
        commit=data["commit"],
        params=dict(data["params"]),
        datasets=tuple(decode_dataset(d) for d in data["datasets"]),
        created_by=data["created_by"],
        created_at=data["created_at"],
        published_by=data.get("published_by"),
        published_at=data.get("published_at"),
        baseline_digest=data.get("baseline_digest"),
        tags=dict(data.get("tags", {})),
    )


def encode_file(record: FileRecord) -> dict[str, Any]:
    """A manifest row as JSON."""
    return {"path": record.path, "digest": record.digest, "size": record.size}


def decode_file(data: Mapping[str, Any]) -> FileRecord:
    """A :class:`FileRecord` from :func:`encode_file` output."""
    return FileRecord(data["path"], data["digest"], data["size"])


def encode_lineage(lineage: Lineage) -> dict[str, Any]:
    """A lineage with full version views (the CLI's ``lineage`` nodes are a subset)."""
    return {
        "version": version_view(lineage.version),
        "ancestors": [version_view(v) for v in lineage.ancestors],
        "descendants": [version_view(v) for v in lineage.descendants],
    }


def decode_lineage(data: Mapping[str, Any]) -> Lineage:
    """A :class:`Lineage` from :func:`encode_lineage` output."""
    return Lineage(
        decode_version(data["version"]),
        tuple(decode_version(v) for v in data["ancestors"]),
        tuple(decode_version(v) for v in data["descendants"]),
    )


def _change(data: Mapping[str, Any]) -> FieldChange:
    return FieldChange(data["name"], data["before"], data["after"])


def decode_diff(data: Mapping[str, Any]) -> VersionDiff:
    """A :class:`VersionDiff` from its ``to_dict()``."""
    return VersionDiff(
        a=data["a"],
        b=data["b"],
        fingerprints=tuple(_change(c) for c in data["fingerprints"]),
        params=tuple(_change(c) for c in data["params"]),
        datasets_added=tuple(decode_dataset(d) for d in data["datasets"]["added"]),
        datasets_removed=tuple(decode_dataset(d) for d in data["datasets"]["removed"]),
        files_added=tuple(data["files"]["added"]),
        files_removed=tuple(data["files"]["removed"]),
        files_changed=tuple(data["files"]["changed"]),
        other=tuple(_change(c) for c in data["other"]),
    )


def encode_trend_point(point: TrendPoint) -> dict[str, Any]:
    """A trend point with its direction (``to_dict`` leaves it out)."""
    return {**point.to_dict(), "direction": point.direction}


def decode_trend_point(data: Mapping[str, Any]) -> TrendPoint:
    """A :class:`TrendPoint` from :func:`encode_trend_point` output."""
    return TrendPoint(
        data["version"], data["value"], data.get("entry_id"), data.get("origin"),
        data.get("direction"),
    )  # fmt: skip


def encode_blame(blame: Blame) -> dict[str, Any]:
    """A :class:`charter._trends.Blame` with whole trend points (lossless)."""
    reg = blame.regression
    return {
        "metric": blame.metric,
        "slice": blame.slice,
        "tolerance": blame.tolerance,
        "points": [encode_trend_point(p) for p in blame.points],
        "regression": None if reg is None else {
            "previous": encode_trend_point(reg.previous),
            "culprit": encode_trend_point(reg.culprit),
            "delta": reg.delta,
        },
        "diff": blame.diff.to_dict() if blame.diff else None,
    }  # fmt: skip


def decode_blame(data: Mapping[str, Any]) -> Blame:
    """A :class:`charter._trends.Blame` from :func:`encode_blame` output."""
    reg = data["regression"]
    regression = None if reg is None else Regression(
        decode_trend_point(reg["previous"]), decode_trend_point(reg["culprit"]), reg["delta"]
    )  # fmt: skip
    return Blame(
        metric=data["metric"],
        slice=data["slice"],
        tolerance=data["tolerance"],
        points=tuple(decode_trend_point(p) for p in data["points"]),
        regression=regression,
        diff=decode_diff(data["diff"]) if data["diff"] else None,
    )


# -- profiles and cards -----------------------------------------------------
def decode_amendment(data: Mapping[str, Any]) -> AmendmentRecord:
    """An :class:`AmendmentRecord` from its ``to_dict()``."""
    return AmendmentRecord(
        id=data["id"],
        reason=data["reason"],
        evidence=tuple(data["evidence"]),
        retracts=tuple(data["retracts"]),
        entry_ids=tuple(data["entries"]),
        author=data["author"],
        created_at=data["created_at"],
    )


def decode_profile(data: Mapping[str, Any]) -> EffectiveProfile:
    """An :class:`EffectiveProfile` from its ``to_dict()`` (the documented JSON form)."""
    entries = []
    for item in data["entries"]:
        body = {k: v for k, v in item.items() if k != "origin"}
        origin = item["origin"]
        entries.append(ActiveEntry(body, None if origin == "baseline" else origin))
    return EffectiveProfile(
        ref=data["ref"],
        as_of=data["as_of"],
        entries=tuple(entries),
        superseded=tuple((s["id"], s["by"]) for s in data["superseded"]),
        retracted=tuple((r["id"], r["by"]) for r in data["retracted"]),
        amendments=tuple(decode_amendment(a) for a in data["amendments"]),
        baseline_digest=data["baseline_digest"],
    )


def encode_record(record: ProfileRecord) -> dict[str, Any]:
    """A stored profile entry, in force or not."""
    return {
        "entry_id": record.entry_id,
        "section": record.section,
        "body": record.body,
        "amendment_id": record.amendment_id,
        "recorded_at": record.recorded_at,
    }


def decode_record(data: Mapping[str, Any]) -> ProfileRecord:
    """A :class:`ProfileRecord` from :func:`encode_record` output."""
    return ProfileRecord(
        data["entry_id"], data["section"], dict(data["body"]), data["amendment_id"],
        data["recorded_at"],
    )  # fmt: skip


def decode_card(data: Mapping[str, Any]) -> CardRecord:
    """A :class:`CardRecord` from its ``to_dict()``."""
    return CardRecord(
        ref=data["ref"],
        card_id=data["card_id"],
        format=data["format"],
        digest=data["digest"],
        profile_digest=data["profile_digest"],
        metadata_digest=data["metadata_digest"],
        rendered_by=data["rendered_by"],
        rendered_at=data["rendered_at"],
        stale_reasons=tuple(data.get("stale_reasons", ())),
    )


# -- encoding by type -------------------------------------------------------
def _to_dict(value: Any) -> Any:
    return value.to_dict()


def _state(value: Any) -> Any:
    return value.state()


#: How each domain type is written; :func:`encode` dispatches on the exact type.
ENCODERS: dict[type[Any], Callable[[Any], Any]] = {
    Model: model_view,
    Version: version_view,
    FileRecord: encode_file,
    DatasetRef: _state,
    Lineage: encode_lineage,
    VersionDiff: _to_dict,
    TrendPoint: encode_trend_point,
    AmendmentRecord: _to_dict,
    EffectiveProfile: _to_dict,
    ProfileRecord: encode_record,
    CardRecord: _to_dict,
    User: _state,
    Approval: _state,
    StageMove: encode_move,
    TokenInfo: _state,
    Principal: encode_principal,
    Observation: _to_dict,
    Blame: encode_blame,
    Webhook: _to_dict,
    Delivery: _to_dict,
    GateDecision: _to_dict,
    LedgerRecord: entry_view,
    Checkpoint: _to_dict,
    InclusionProof: _to_dict,
    VerifyReport: _to_dict,
}


def _page(page: Page[Any]) -> dict[str, Any]:
    return {"items": [encode(item) for item in page.items], "next_cursor": page.next_cursor}


def encode(value: Any) -> Any:
    """Turn a service result into JSON-ready data (lists, tuples and dicts recursively).

    Raises:
        TypeError: for a value with no wire form (a bug: add it to :data:`ENCODERS`).
    """
    encoder = ENCODERS.get(type(value))
    if encoder is not None:
        return encoder(value)
    if isinstance(value, Page):
        return _page(value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, Mapping):
        return {str(k): encode(v) for k, v in value.items()}
    if isinstance(value, Sequence | set | frozenset):
        return [encode(v) for v in value]
    raise TypeError(f"no wire form for {type(value).__name__}")


def decode_list(
    items: Sequence[Mapping[str, Any]], decoder: Callable[[Mapping[str, Any]], T]
) -> list[T]:
    """Decode each item of a JSON array."""
    return [decoder(item) for item in items]
