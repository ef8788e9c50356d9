"""Response shapes of the API, for its OpenAPI schema (descriptive only).

Responses are written by :mod:`charter.wire`; these models only describe them,
and the schemathesis run of ``tests/api`` checks every response against them.
Each lists the fields the wire form always has, with their types; objects stay
open (``additionalProperties``) so a field added later is not a breaking change.
Only what is open by nature stays a free object: a profile entry's body beyond
``id``/``section``/``provenance``, a finding's observed and required values, a
ledger entry's ``data``, a policy document, exports in external formats.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from charter.api._shapes import (
    ApprovalOut,
    CheckpointOut,
    DeliveryOut,
    Digest,
    DigestOut,
    EntryOut,
    GateOut,
    MoveOut,
    Out,
    PendingOut,
    PolicyOut,
    PrincipalOut,
    ProofOut,
    Section,
    StageOut,
    Time,
    TokenCreatedOut,
    TokenOut,
    UserOut,
    VerifyOut,
    WarningsOut,
    WebhookCreatedOut,
    WebhookOut,
)

__all__ = [
    "AmendmentOut", "ApprovalOut", "AtRiskOut", "BlameOut", "BlobOut", "CardOut",
    "CheckpointOut", "DeliveryOut", "DiffOut", "DigestOut", "EntryOut", "FileOut", "GateOut",
    "HistoryOut", "LineageOut", "MissingOut", "ModelOut", "ModelPage", "MoveOut",
    "ObservationOut", "PendingOut", "PolicyOut", "PrincipalOut", "ProfileEntryOut", "ProfileOut",
    "ProofOut", "RecordOut", "RenderedCardOut", "RunOut", "StageOut", "TargetOut",
    "TokenCreatedOut", "TokenOut", "TrendPointOut", "UserOut", "VerifyOut", "VersionOut",
    "VersionPage", "WarningsOut", "WebhookCreatedOut", "WebhookOut",
]  # fmt: skip


# -- models, versions, files --------------------------------------------------
class ModelOut(Out):
    """A model line."""

    name: str
    description: str
    owner: str
    risk_tier: Literal["low", "medium", "high"]
    created_by: str
    created_at: Time


class _Fingerprints(Out):
    architecture: Digest
    data: Digest
    config: Digest
    architecture_method: str


class _Dataset(Out):
    name: str
    role: str
    uri: str
    digest: Digest | None
    size: int | None


class VersionOut(Out):
    """A version: its frozen record, plus tags."""

    ref: str
    model: str
    version: str
    state: Literal["draft", "published"]
    parent: str | None
    change_kind: str | None
    fingerprints: _Fingerprints
    manifest_digest: Digest
    file_count: int = Field(ge=0)
    total_size: int = Field(ge=0)
    run_id: str | None
    commit: str | None
    params: dict[str, str]
    datasets: list[_Dataset]
    created_by: str
    created_at: Time
    published_by: str | None
    published_at: Time | None
    baseline_digest: Digest | None = None
    tags: dict[str, str]


class FileOut(Out):
    """One file of a version's manifest."""

    path: str
    digest: Digest
    size: int = Field(ge=0)


class ModelPage(Out):
    """A page of models; pass ``next_cursor`` back as ``cursor`` for the next."""

    items: list[ModelOut]
    next_cursor: str | None


class VersionPage(Out):
    """A page of versions; pass ``next_cursor`` back as ``cursor`` for the next."""

    items: list[VersionOut]
    next_cursor: str | None


class LineageOut(Out):
    """A version with its ancestors (nearest first) and descendants."""

    version: VersionOut
    ancestors: list[VersionOut]
    descendants: list[VersionOut]


class _Change(Out):
    name: str
    before: Any
    after: Any


class _DatasetChanges(Out):
    added: list[_Dataset]
    removed: list[_Dataset]


class _FileChanges(Out):
    added: list[str]
    removed: list[str]
    changed: list[str]


class DiffOut(Out):
    """What changed from version ``a`` to version ``b``."""

    a: str
    b: str
    fingerprints: list[_Change]
    params: list[_Change]
    datasets: _DatasetChanges
    files: _FileChanges
    other: list[_Change]


class TrendPointOut(Out):
    """A metric's value on one version (null: no such entry)."""

    version: str
    value: float | None
    entry_id: str | None
    origin: str | None
    direction: str | None


class _Regression(Out):
    previous: TrendPointOut
    culprit: TrendPointOut
    delta: float


class BlameOut(Out):
    """Where along the ancestry a metric regressed (``regression`` null: nowhere)."""

    metric: str
    slice: str | None
    tolerance: float
    points: list[TrendPointOut]
    regression: _Regression | None
    diff: DiffOut | None


class BlobOut(Out):
    """A stored blob (``created``: false when the server already held it)."""

    digest: Digest
    size: int = Field(ge=0)
    created: bool


class MissingOut(Out):
    """The blobs the server lacks."""

    missing: list[Digest]


# -- profiles, runs, cards ----------------------------------------------------
class _Provenance(Out):
    source: str


class ProfileEntryOut(Out):
    """A profile entry: its id, section and provenance, then the section's own fields."""

    id: str = Field(min_length=1)
    section: Section
    provenance: _Provenance


class _EffectiveEntry(ProfileEntryOut):
    origin: str = Field(description="``baseline``, or the id of the amendment that added it")


class AmendmentOut(Out):
    """An amendment: who, when, why, what it added and retracted."""

    id: str
    reason: str
    evidence: list[str]
    retracts: list[str]
    entries: list[str]
    author: str
    created_at: Time


class _Replaced(Out):
    id: str
    by: str


class ProfileOut(Out):
    """The effective profile (``charter.profile/v1``): baseline plus amendments, folded."""

    schema_: Literal["charter.profile/v1"] = Field(alias="schema")
    ref: str
    as_of: str | None
    digest: Digest
    baseline_digest: Digest | None
    entries: list[_EffectiveEntry]
    superseded: list[_Replaced]
    retracted: list[_Replaced]
    amendments: list[AmendmentOut]


class RecordOut(Out):
    """A stored profile entry, in force or not."""

    entry_id: str
    section: Section
    body: ProfileEntryOut
    amendment_id: str | None
    recorded_at: Time


class HistoryOut(Out):
    """One change to a profile (fields by ``type``)."""

    seq: int = Field(ge=0)
    type: Literal["profile.entries_added", "profile.amended", "version.published"]
    actor: str
    time: Time
    entries: list[str] | None = None
    amendment: str | None = None
    reason: str | None = None
    retracts: list[str] | None = None
    evidence: list[str] | None = None
    baseline_digest: Digest | None = None


class ObservationOut(Out):
    """The outcome of recording production observations."""

    ref: str
    amendment_id: str
    at_risk: bool
    changed: bool
    findings: dict[str, list[dict[str, Any]]]
    decisions: dict[str, int]


class AtRiskOut(Out):
    """A version production monitoring flagged at risk."""

    ref: str
    since: Time
    by: str
    findings: dict[str, list[dict[str, Any]]]
    amendment: str


class RunOut(Out):
    """A recorded evaluation run (the client's run document, as the registry stamped it)."""

    run_id: str = Field(pattern=r"^run-[0-9a-f]{16}$")
    evaluator: str
    evaluator_version: str
    ref: str
    results_digest: Digest
    recorded_by: str
    entries: list[str]
    amendment: str | None


class CardOut(Out):
    """A rendered model card, and whether (why) it is stale."""

    ref: str
    card_id: str
    format: Literal["md", "html"]
    digest: Digest
    profile_digest: Digest
    metadata_digest: Digest
    rendered_by: str
    rendered_at: Time
    stale: bool
    stale_reasons: list[str]


class RenderedCardOut(Out):
    """A card just rendered: its record and its text."""

    card: CardOut
    text: str


class TargetOut(Out):
    """A model's declared red-team target (no secrets)."""

    target: dict[str, Any]
    packs: list[str]
    auto: bool
    system_prompt: str | None
