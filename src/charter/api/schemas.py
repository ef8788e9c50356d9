"""Request bodies (validated by FastAPI) and response shapes (for the OpenAPI schema).

Responses are written by :mod:`charter.wire`; the ``*Out`` models here only
describe them, and the schemathesis run of ``tests/api`` checks that they agree.
Documents with an open shape (profiles, gate decisions, proofs…) are described
as objects.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from charter.domain.profile import ProfileDocument

__all__ = [
    "AmendIn", "ApprovalIn", "CardIn", "DeprecateIn", "DigestsIn", "DocumentIn", "ErrorOut",
    "FileOut", "ModelIn", "ModelOut", "ModelPage", "MoveOut", "PolicyIn", "PolicyTextIn",
    "PromoteIn", "RegisterIn", "RollbackIn", "RunIn", "StageIn", "TagsIn", "TargetIn", "TokenIn",
    "TokenOut", "UserIn", "UserOut", "VerifyIn", "VersionOut", "VersionPage",
]  # fmt: skip

Name = Field(min_length=1, max_length=200)


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelIn(_In):
    """A new model line."""

    name: str = Field(min_length=1, max_length=64)
    risk_tier: Literal["low", "medium", "high"] = "low"
    owner: str | None = Field(default=None, max_length=200)
    description: str = Field(default="", max_length=10_000)


class TargetIn(_In):
    """A model's red-team target declaration (never secrets)."""

    target: dict[str, Any]
    packs: list[str] | None = None
    auto: bool = True
    system_prompt: str | None = Field(default=None, max_length=100_000)


class FileIn(_In):
    """One manifest row of a registration (its blob is uploaded separately)."""

    path: str = Field(min_length=1, max_length=1024)
    digest: str = Field(pattern=r"^sha256:[0-9a-f]{64}$")
    size: int = Field(ge=0)


class DatasetIn(_In):
    """A dataset reference, digested by the client that has the data."""

    name: str = Field(min_length=1, max_length=200)
    role: str = Field(min_length=1, max_length=32)
    uri: str = Field(min_length=1, max_length=2000)
    digest: str | None = Field(default=None, pattern=r"^sha256:[0-9a-f]{64}$")
    size: int | None = Field(default=None, ge=0)


class RegisterIn(_In):
    """A draft version from uploaded blobs: its manifest and metadata."""

    version: str = Field(min_length=1, max_length=128)
    files: list[FileIn] = Field(min_length=1, max_length=100_000)
    parent: str | None = Field(default=None, max_length=128)
    change: Literal["major", "minor", "patch"] | None = None
    datasets: list[DatasetIn] = Field(default_factory=list, max_length=1000)
    params: dict[str, str] = Field(default_factory=dict)
    run_id: str | None = Field(default=None, max_length=200)
    commit: str | None = Field(default=None, max_length=200)
    tags: dict[str, str] = Field(default_factory=dict)
    architecture: str | None = Field(default=None, max_length=200)
    force: bool = False
    reason: str | None = Field(default=None, max_length=10_000)
    profile: ProfileDocument | None = None


class TagsIn(_In):
    """Tags to set (a value) or remove (null)."""

    tags: dict[str, str | None]


class DocumentIn(_In):
    """Profile entries for a draft."""

    document: ProfileDocument


class AmendIn(_In):
    """An amendment (or production observations) with the reason for it."""

    document: ProfileDocument
    reason: str = Field(max_length=500)


class DeprecateIn(_In):
    """Why a version may never be promoted again."""

    reason: str = Field(max_length=10_000)
    status: Literal["deprecated", "archived"] = "deprecated"


class RunIn(_In):
    """An evaluation run executed elsewhere (CI, a worker), with its results."""

    run: dict[str, Any]
    document: ProfileDocument
    reason: str | None = Field(default=None, max_length=500)


class CardIn(_In):
    """Which card format to render."""

    format: Literal["md", "html"] = "md"


class UserIn(_In):
    """A user's role."""

    role: Literal["viewer", "contributor", "approver", "admin"]


class TokenIn(_In):
    """A new API token."""

    user: str = Name
    expires: str | None = Field(default=None, max_length=64)
    label: str = Field(default="", max_length=200)


class PolicyIn(_In):
    """A policy document (YAML or JSON text), for the registry or one model."""

    text: str = Field(max_length=1_000_000)
    model: str | None = Field(default=None, max_length=64)


class PolicyTextIn(_In):
    """A policy document to validate without storing it."""

    text: str = Field(max_length=1_000_000)


class StageIn(_In):
    """A stage to gate for."""

    stage: str = Field(min_length=1, max_length=64)


class ApprovalIn(_In):
    """A sign-off or rejection of the version's current evidence."""

    stage: str = Field(min_length=1, max_length=64)
    comment: str = Field(max_length=10_000)
    decision: Literal["approve", "reject"] = "approve"


class PromoteIn(_In):
    """A promotion; ``force`` (admins, with a reason) overrides a failed gate."""

    stage: str = Field(min_length=1, max_length=64)
    force: bool = False
    reason: str | None = Field(default=None, max_length=10_000)


class RollbackIn(_In):
    """A rollback, by default to the stage's previous holder."""

    reason: str = Field(max_length=10_000)
    to: str | None = Field(default=None, max_length=128)
    force: bool = False


class VerifyIn(_In):
    """Whether to re-hash every blob too."""

    artifacts: bool = False


class DigestsIn(_In):
    """Blob digests a client is about to upload."""

    digests: list[str] = Field(max_length=100_000)


# -- responses (descriptive) ------------------------------------------------
class _ErrorBody(BaseModel):
    code: str
    message: str
    details: dict[str, Any]


class ErrorOut(BaseModel):
    """Every error: a stable code, one sentence, structured details."""

    error: _ErrorBody


class ModelOut(BaseModel):
    """A model line."""

    name: str
    description: str
    owner: str
    risk_tier: Literal["low", "medium", "high"]
    created_by: str
    created_at: str


class _Fingerprints(BaseModel):
    architecture: str
    data: str
    config: str
    architecture_method: str


class _Dataset(BaseModel):
    name: str
    role: str
    uri: str
    digest: str | None
    size: int | None


class VersionOut(BaseModel):
    """A version: its frozen record, plus tags."""

    ref: str
    model: str
    version: str
    state: Literal["draft", "published"]
    parent: str | None
    change_kind: str | None
    fingerprints: _Fingerprints
    manifest_digest: str
    file_count: int
    total_size: int
    run_id: str | None
    commit: str | None
    params: dict[str, str]
    datasets: list[_Dataset]
    created_by: str
    created_at: str
    published_by: str | None
    published_at: str | None
    baseline_digest: str | None = None
    tags: dict[str, str]


class FileOut(BaseModel):
    """One file of a version's manifest."""

    path: str
    digest: str
    size: int


class ModelPage(BaseModel):
    """A page of models; pass ``next_cursor`` back as ``cursor`` for the next."""

    items: list[ModelOut]
    next_cursor: str | None


class VersionPage(BaseModel):
    """A page of versions; pass ``next_cursor`` back as ``cursor`` for the next."""

    items: list[VersionOut]
    next_cursor: str | None


class UserOut(BaseModel):
    """A registry user and their role."""

    name: str
    role: Literal["viewer", "contributor", "approver", "admin"]
    updated_by: str
    updated_at: str


class TokenOut(BaseModel):
    """A token as listed (never its secret)."""

    token_id: str
    user: str
    label: str
    created_by: str
    created_at: str
    expires_at: str | None
    revoked_by: str | None
    revoked_at: str | None


class MoveOut(BaseModel):
    """One move of a stage pointer."""

    model: str
    stage: str
    generation: int
    version: str
    action: str
    reason: str | None
    gate_decision_id: int | None
    approval_ids: list[int]
    by: str
    at: str
    ledger_seq: int
