"""Response shapes of users, tokens, policies, gates, stages, the ledger and webhooks.

Part of :mod:`charter.api.responses` (which re-exports the public ones, and says
what these models are for); split only to keep modules small.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "ApprovalOut", "CheckpointOut", "DeliveryOut", "Digest", "DigestOut", "EntryOut", "GateOut",
    "Hex64", "MoveOut", "Out", "PendingOut", "PolicyOut", "PrincipalOut", "ProofOut",
    "RoleName", "Section", "StageOut", "Time", "TokenCreatedOut", "TokenOut", "UserOut",
    "VerifyOut", "WarningsOut", "WebhookCreatedOut", "WebhookOut",
]  # fmt: skip

Digest = Annotated[str, Field(pattern=r"^sha256:[0-9a-f]{64}$")]
Hex64 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
Time = Annotated[str, Field(pattern=r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$")]
RoleName = Literal["viewer", "contributor", "approver", "admin"]
Section = Literal["evaluations", "bias_audits", "constraints", "adversarial"]


class Out(BaseModel):
    """The base of every response shape."""

    # Aliases (``schema``) in the OpenAPI schema, as on the wire.
    model_config = ConfigDict(populate_by_name=True)


# -- users, tokens, policies, gates, stages -----------------------------------
class UserOut(Out):
    """A registry user and their role."""

    name: str
    role: RoleName
    updated_by: str
    updated_at: Time


class TokenOut(Out):
    """A token as listed (never its secret)."""

    token_id: str
    user: str
    label: str
    created_by: str
    created_at: Time
    expires_at: Time | None
    revoked_by: str | None
    revoked_at: Time | None


class TokenCreatedOut(Out):
    """A new token: its secret (shown only here) and its record."""

    token: str
    info: TokenOut


class PrincipalOut(Out):
    """Who the presented credentials act as."""

    user: str
    role: RoleName
    token_id: str


class PolicyOut(Out):
    """The policy in force: its digest, where it came from, the document."""

    digest: Digest
    scope: str
    policy: dict[str, Any]


class DigestOut(Out):
    """The digest of what was stored."""

    digest: Digest


class WarningsOut(Out):
    """What a valid policy may still get wrong."""

    warnings: list[str]


class _Finding(Out):
    rule: str
    passed: bool
    observed: Any
    required: Any
    evidence: list[str]
    message: str


class _Summary(Out):
    total: int = Field(ge=0)
    passed: int = Field(ge=0)
    failed: int = Field(ge=0)


class _Decision(Out):
    schema_: Literal["charter.gate/v1"] = Field(alias="schema")
    passed: bool
    stage: str
    ref: str
    risk_tier: str
    policy_digest: Digest
    profile_digest: Digest
    reference: str | None
    evaluated_at: Time
    summary: _Summary
    findings: list[_Finding]


class GateOut(Out):
    """A recorded gate decision (``charter.gate/v1``) and its id."""

    id: int
    decision: _Decision


class ApprovalOut(Out):
    """One sign-off (or rejection) of a version's evidence for a stage."""

    id: int
    ref: str
    stage: str
    decision: Literal["approve", "reject"]
    user: str
    role: str
    comment: str
    profile_digest: Digest
    at: Time


class PendingOut(Out):
    """A version whose latest gate for a stage lacks approvals."""

    ref: str
    stage: str
    decision_id: int
    missing: str
    also_failing: list[str]


class MoveOut(Out):
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
    at: Time
    ledger_seq: int


class StageOut(Out):
    """A stage pointer now."""

    model: str
    stage: str
    version: str | None
    generation: int
    assigned_by: str
    assigned_at: Time


# -- the ledger, webhooks ------------------------------------------------------
class _Entry(Out):
    seq: int = Field(ge=0)
    type: str
    subject: str
    actor: str
    time: Time
    data: dict[str, Any]


class EntryOut(_Entry):
    """A ledger entry: the signed body plus its leaf hash."""

    leaf_hash: Hex64


class CheckpointOut(Out):
    """A signed checkpoint of the ledger (``signature``: base64 Ed25519)."""

    origin: str
    tree_size: int = Field(ge=0)
    root_hash: Hex64
    timestamp: Time
    key_id: str = Field(pattern=r"^[0-9a-f]{16}$")
    signature: str


class ProofOut(Out):
    """An inclusion proof of one entry against a checkpoint (RFC 9162)."""

    entry: _Entry
    leaf_index: int = Field(ge=0)
    leaf_hash: Hex64
    tree_size: int = Field(ge=1)
    inclusion_proof: list[Hex64]
    checkpoint: CheckpointOut


class _Problem(Out):
    kind: str
    where: str
    message: str


class VerifyOut(Out):
    """The outcome of a verification run."""

    ok: bool
    entries: int = Field(ge=0)
    checkpoints: int = Field(ge=0)
    unsigned_entries: int = Field(ge=0)
    subjects: int = Field(ge=0)
    blobs: int = Field(ge=0)
    problems: list[_Problem]


class WebhookOut(Out):
    """A subscription (never its secret)."""

    id: int
    url: str
    events: list[str]
    created_by: str
    created_at: Time
    active: bool


class WebhookCreatedOut(Out):
    """A new subscription and its signing secret (shown only here)."""

    webhook: WebhookOut
    secret: str


class _Attempt(Out):
    at: Time
    duration_ms: float
    status_code: int | None
    error: str | None


class DeliveryOut(Out):
    """One ledger entry on its way to one subscription, with every attempt so far."""

    id: int
    webhook_id: int
    ledger_seq: int
    event_type: str
    delivery_id: str
    status: Literal["pending", "delivered", "failed"]
    attempts: int = Field(ge=0)
    next_attempt_at: Time
    last_status_code: int | None
    last_error: str | None
    updated_at: Time
    log: list[_Attempt]
