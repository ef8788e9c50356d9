"""Safety profiles, production observations, evaluation runs and model cards."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import Response

from charter.api.deps import Contributor, Viewer, reply
from charter.api.responses import (
    AmendmentOut,
    AtRiskOut,
    CardOut,
    HistoryOut,
    ObservationOut,
    ProfileEntryOut,
    ProfileOut,
    RecordOut,
    RenderedCardOut,
    RunOut,
)
from charter.api.routes import ERRORS, TEXT, Segment
from charter.api.schemas import AmendIn, CardIn, DocumentIn, RunIn

__all__ = ["router"]

router = APIRouter(responses=ERRORS, tags=["profiles"])
V = "/models/{name}/versions/{version}"
Obj = dict[str, Any]


@router.get(V + "/profile", response_model=ProfileOut)
def profile(
    reg: Viewer,
    name: Segment,
    version: Segment,
    as_of: Annotated[str | None, Query(pattern=TEXT, max_length=64)] = None,
    baseline: bool = False,
) -> Response:
    """The effective profile, now or as it stood at ``as_of``."""
    return reply(reg.profile(model=name, version=version, as_of=as_of, baseline=baseline))


@router.post(V + "/profile", status_code=201, response_model=list[ProfileEntryOut])
def add_profile(reg: Contributor, name: Segment, version: Segment, body: DocumentIn) -> Response:
    """Add entries to a draft's profile."""
    return reply(reg.add_profile(model=name, version=version, document=body.document), 201)


@router.get(V + "/profile/records", response_model=list[RecordOut])
def records(reg: Viewer, name: Segment, version: Segment) -> Response:
    """Every stored entry, in force or not."""
    return reply(reg.profile_records(model=name, version=version))


@router.get(V + "/profile/history", response_model=list[HistoryOut])
def history(reg: Viewer, name: Segment, version: Segment) -> Response:
    """Every change to the profile: who, when, why."""
    return reply(reg.profile_history(model=name, version=version))


@router.post(V + "/amendments", status_code=201, response_model=AmendmentOut)
def amend(reg: Contributor, name: Segment, version: Segment, body: AmendIn) -> Response:
    """Append an amendment to a published profile."""
    found = reg.amend_profile(
        model=name, version=version, document=body.document, reason=body.reason
    )
    return reply(found, 201)


@router.post(V + "/observations", status_code=201, response_model=ObservationOut)
def observe(reg: Contributor, name: Segment, version: Segment, body: AmendIn) -> Response:
    """Record production observations; the version is re-judged in the stages it holds."""
    seen = reg.observe(model=name, version=version, document=body.document, reason=body.reason)
    return reply(seen, 201)


@router.get("/at-risk", response_model=list[AtRiskOut])
def at_risk(
    reg: Viewer, model: Annotated[str | None, Query(pattern=TEXT, max_length=64)] = None
) -> Response:
    """Versions production monitoring flagged at risk."""
    return reply(reg.at_risk(model=model))


@router.post(V + "/evaluations", status_code=201, response_model=RunOut)
def record_evaluation(reg: Contributor, name: Segment, version: Segment, body: RunIn) -> Response:
    """Record an evaluation run executed next to the model (CI, a worker) and its results."""
    run = reg.record_evaluation(
        model=name, version=version, run=body.run, document=body.document, reason=body.reason
    )
    return reply(run, 201)


@router.get(V + "/evaluations", response_model=list[RunOut])
def evaluation_runs(reg: Viewer, name: Segment, version: Segment) -> Response:
    """Every recorded evaluation run of the version."""
    return reply(reg.evaluation_runs(model=name, version=version))


@router.post(V + "/cards", status_code=201, response_model=RenderedCardOut)
def render_card(reg: Contributor, name: Segment, version: Segment, body: CardIn) -> Response:
    """Render and register a model card: ``{"card": record, "text": document}``."""
    record, text = reg.render_card(model=name, version=version, fmt=body.format)
    return reply({"card": record, "text": text}, 201)


@router.get("/cards", response_model=list[CardOut])
def card_status(
    reg: Viewer,
    model: Annotated[str | None, Query(pattern=TEXT, max_length=64)] = None,
    version: Annotated[str | None, Query(pattern=TEXT, max_length=128)] = None,
) -> Response:
    """The latest card per version and format, with why it is stale."""
    return reply(reg.card_status(model=model, version=version))


@router.post("/cards/render-stale", response_model=list[CardOut])
def render_stale(reg: Contributor) -> Response:
    """Re-render every stale card."""
    return reply(reg.render_stale())
