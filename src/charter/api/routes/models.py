"""Models, their red-team targets, trends, stages and search over versions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from charter.api.deps import Contributor, Viewer, reply
from charter.api.responses import (
    ModelOut,
    ModelPage,
    MoveOut,
    StageOut,
    TargetOut,
    TrendPointOut,
    VersionPage,
)
from charter.api.routes import ERRORS, TEXT, Segment
from charter.api.schemas import ModelIn, RollbackIn, TargetIn

__all__ = ["router"]

router = APIRouter(responses=ERRORS, tags=["models"])

Limit = Annotated[int, Query(ge=1, le=1000)]
Cursor = Annotated[str | None, Query(pattern=TEXT, max_length=64)]


@router.get("/models", response_model=ModelPage)
def list_models(
    reg: Viewer,
    risk_tier: Annotated[str | None, Query(pattern="^(low|medium|high)$")] = None,
    prefix: Annotated[str | None, Query(pattern=TEXT, max_length=64)] = None,
    cursor: Cursor = None,
    limit: Limit = 100,
) -> Response:
    """Models by name, a page at a time."""
    return reply(reg.search_models(risk_tier=risk_tier, prefix=prefix, cursor=cursor, limit=limit))


@router.post("/models", status_code=201, response_model=ModelOut)
def create_model(reg: Contributor, body: ModelIn) -> Response:
    """Create a model line."""
    made = reg.create_model(
        name=body.name, risk_tier=body.risk_tier, owner=body.owner, description=body.description
    )
    return reply(made, 201)


@router.get("/models/{name}", response_model=ModelOut)
def get_model(reg: Viewer, name: Segment) -> Response:
    """One model."""
    return reply(reg.get_model(name=name))


@router.get("/models/{name}/target", response_model=TargetOut | None)
def get_target(reg: Viewer, name: Segment) -> Response:
    """The model's declared red-team target (null: none)."""
    return reply(reg.model_target(model=name))


@router.put("/models/{name}/target", response_model=TargetOut)
def set_target(reg: Contributor, name: Segment, body: TargetIn) -> Response:
    """Declare the model's red-team target and packs (no secrets)."""
    return reply(
        reg.set_model_target(
            model=name, target=body.target, packs=body.packs, auto=body.auto,
            system_prompt=body.system_prompt,
        )
    )  # fmt: skip


@router.get("/models/{name}/trend", response_model=list[TrendPointOut])
def trend(
    reg: Viewer,
    name: Segment,
    metric: Annotated[str, Query(pattern=TEXT, min_length=1, max_length=200)],
    slice_: Annotated[str | None, Query(pattern=TEXT, alias="slice", max_length=500)] = None,
    version: Annotated[str | None, Query(pattern=TEXT, max_length=128)] = None,
) -> Response:
    """A metric per version (along ``version``'s ancestry, or every version)."""
    return reply(reg.trend(model=name, metric=metric, slice_=slice_, version=version))


@router.get("/models/{name}/stages/history", response_model=list[MoveOut])
def stage_history(
    reg: Viewer,
    name: Segment,
    stage: Annotated[str | None, Query(pattern=TEXT, max_length=64)] = None,
) -> Response:
    """Every move of the model's stages (or one stage), oldest first."""
    return reply(reg.stage_history(model=name, stage=stage))


@router.get("/models/{name}/stages/{stage}/at", response_model=MoveOut | None)
def stage_at(
    reg: Viewer,
    name: Segment,
    stage: Segment,
    time: Annotated[str, Query(pattern=TEXT, max_length=64)],
) -> Response:
    """The move that put the holder of ``stage`` at ``time`` in place (null: none)."""
    return reply(reg.stage_at(model=name, stage=stage, time=time))


@router.post("/models/{name}/stages/{stage}/rollback", response_model=MoveOut)
def rollback(reg: Contributor, name: Segment, stage: Segment, body: RollbackIn) -> Response:
    """Move ``stage`` back (a forced rollback needs the admin role)."""
    return reply(
        reg.rollback(model=name, stage=stage, reason=body.reason, to=body.to, force=body.force)
    )


@router.get("/stages", response_model=list[StageOut])
def stages(
    reg: Viewer, model: Annotated[str | None, Query(pattern=TEXT, max_length=64)] = None
) -> Response:
    """Current stage pointers (of one model, or all)."""
    return reply(reg.stages(model=model))


@router.get("/versions", response_model=VersionPage, tags=["search"])
def search_versions(
    reg: Viewer,
    model: Annotated[str | None, Query(pattern=TEXT, max_length=64)] = None,
    state: Annotated[str | None, Query(pattern="^(draft|published)$")] = None,
    risk_tier: Annotated[str | None, Query(pattern="^(low|medium|high)$")] = None,
    stage: Annotated[str | None, Query(pattern=TEXT, max_length=64)] = None,
    tag: Annotated[str | None, Query(pattern=TEXT, max_length=1200)] = None,
    cursor: Cursor = None,
    limit: Limit = 100,
    newest_first: bool = False,
) -> Response:
    """Versions matching every filter (``tag`` is ``KEY`` or ``KEY=VALUE``), a page at a time."""
    return reply(
        reg.search_versions(
            model=model, state=state, risk_tier=risk_tier, stage=stage, tag=tag, cursor=cursor,
            limit=limit, newest_first=newest_first,
        )
    )  # fmt: skip
