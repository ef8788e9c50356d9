"""Users, tokens, policies, gates, approvals and promotion."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from charter.api.auth import current_principal
from charter.api.deps import Admin, Approver, Contributor, Viewer, reply
from charter.api.responses import (
    ApprovalOut,
    DigestOut,
    GateOut,
    MoveOut,
    PendingOut,
    PolicyOut,
    PrincipalOut,
    TokenCreatedOut,
    TokenOut,
    UserOut,
    WarningsOut,
)
from charter.api.routes import ERRORS, TEXT, Segment
from charter.api.schemas import (
    ApprovalIn,
    PolicyIn,
    PolicyTextIn,
    PromoteIn,
    StageIn,
    TokenIn,
    UserIn,
)
from charter.domain.errors import ForbiddenError
from charter.domain.stages import Role

__all__ = ["router"]

router = APIRouter(responses=ERRORS, tags=["gates"])
V = "/models/{name}/versions/{version}"
Obj = dict[str, Any]


@router.get("/me", response_model=PrincipalOut)
def me(reg: Viewer, request: Request) -> Response:
    """Who the presented credentials act as."""
    return reply(current_principal(request))


@router.get("/users", response_model=list[UserOut])
def list_users(reg: Viewer) -> Response:
    """Every registry user with their role."""
    return reply(reg.list_users())


@router.put("/users/{user}", response_model=UserOut)
def put_user(reg: Admin, user: Segment, body: UserIn) -> Response:
    """Add a user or change their role."""
    return reply(reg.add_user(name=user, role=body.role))


@router.get("/tokens", response_model=list[TokenOut])
def list_tokens(
    reg: Viewer,
    request: Request,
    user: Annotated[str | None, Query(pattern=TEXT, max_length=200)] = None,
) -> Response:
    """Tokens (never their secrets): your own, or anyone's for an admin."""
    principal = current_principal(request)
    if not principal.role.allows(Role.ADMIN):
        if user not in (None, principal.user):
            raise ForbiddenError(f"{principal.user} may only list their own tokens")
        user = principal.user
    return reply(reg.list_tokens(user=user))


@router.post("/tokens", status_code=201, response_model=TokenCreatedOut)
def create_token(reg: Viewer, body: TokenIn) -> Response:
    """Create a token (for yourself; admins for anyone): ``{"token", "info"}``, shown once."""
    token, info = reg.create_token(user=body.user, expires=body.expires, label=body.label)
    return reply({"token": token, "info": info}, 201)


@router.delete("/tokens/{token_id}", response_model=TokenOut)
def revoke_token(reg: Viewer, token_id: Segment) -> Response:
    """Revoke a token (your own; admins any)."""
    return reply(reg.revoke_token(token_id=token_id))


@router.get("/policy", response_model=PolicyOut)
def get_policy(
    reg: Viewer, model: Annotated[str | None, Query(pattern=TEXT, max_length=64)] = None
) -> Response:
    """The policy in force (for ``model``): digest, where it came from, the document."""
    digest, policy, scope = reg.policy(model=model)
    document = policy.model_dump(mode="json", by_alias=True)
    return reply({"digest": digest, "scope": scope, "policy": document})


@router.put("/policy", response_model=DigestOut)
def set_policy(reg: Admin, body: PolicyIn) -> Response:
    """Validate and store a policy for the registry (or one model)."""
    return reply({"digest": reg.set_policy(text=body.text, model=body.model)})


@router.post("/policy/validate", response_model=WarningsOut)
def validate_policy(reg: Viewer, body: PolicyTextIn) -> Response:
    """Check a policy without storing it: its warnings."""
    return reply({"warnings": reg.validate_policy(text=body.text)})


@router.get("/known-metrics", response_model=list[str])
def known_metrics(reg: Viewer) -> Response:
    """Metric names a policy may use."""
    return reply(sorted(reg.known_metrics()))


@router.post(V + "/gate", response_model=GateOut)
def gate(reg: Contributor, name: Segment, version: Segment, body: StageIn) -> Response:
    """Evaluate the stage's policy and record the decision: ``{"id", "decision"}``."""
    decision_id, decision = reg.gate(model=name, version=version, stage=body.stage)
    return reply({"id": decision_id, "decision": decision})


@router.post(V + "/approvals", status_code=201, response_model=ApprovalOut)
def approve(reg: Approver, name: Segment, version: Segment, body: ApprovalIn) -> Response:
    """Approve or reject the version's current evidence for a stage."""
    found = reg.approve(
        model=name, version=version, stage=body.stage, comment=body.comment,
        decision=body.decision,
    )  # fmt: skip
    return reply(found, 201)


@router.get("/approvals", response_model=list[ApprovalOut])
def approvals(
    reg: Viewer, model: Annotated[str | None, Query(pattern=TEXT, max_length=64)] = None
) -> Response:
    """Every sign-off (of one model), oldest first."""
    return reply(reg.approvals(model=model))


@router.get("/approvals/pending", response_model=list[PendingOut])
def pending(reg: Viewer) -> Response:
    """Versions whose latest gate lacks approvals."""
    return reply(reg.pending_approvals())


@router.post(V + "/promote", response_model=MoveOut)
def promote(reg: Contributor, name: Segment, version: Segment, body: PromoteIn) -> Response:
    """Gate, then move the stage (a forced override needs the admin role)."""
    move = reg.promote(
        model=name, version=version, stage=body.stage, force=body.force, reason=body.reason
    )
    return reply(move)
