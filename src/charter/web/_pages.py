"""Pages about models: the models list, a model's versions, lineage graph and stage history."""

from __future__ import annotations

from collections import defaultdict

from fastapi import APIRouter, Query
from fastapi.responses import Response

from charter.web import _reads
from charter.web._deps import Viewer, WebRoute, page
from charter.web._graph import MAX_VERSIONS, GraphUnavailableError, lineage_dot, render_svg
from charter.web._render import PREFIX, Pager, urls

__all__ = ["router"]

router = APIRouter(route_class=WebRoute)
PER_PAGE = 50


def _at_risk(ctx: Viewer, model: str | None = None) -> dict[str, dict[str, object]]:
    """``{name@version: flag}`` of the versions production monitoring flagged at risk."""
    return {flag["ref"]: flag for flag in ctx.registry.at_risk(model=model)}


@router.get(f"{PREFIX}/")
def models(ctx: Viewer, page_: int = Query(1, ge=1, alias="page")) -> Response:
    """Every model (paginated): risk tier, stages, latest versions, gate state, risk flags."""
    rows, total = _reads.models_page(ctx.registry, page=page_, per_page=PER_PAGE)
    flagged: dict[str, list[str]] = defaultdict(list)
    for ref in _at_risk(ctx):
        name, _, number = ref.partition("@")
        flagged[name].append(number)
    return page(
        ctx,
        "models.html",
        rows=rows,
        flagged=flagged,
        pager=Pager(page_, PER_PAGE, total, urls.home()),
    )


@router.get(f"{PREFIX}/approvals")
def approvals(ctx: Viewer) -> Response:
    """Versions whose latest gate for a stage waits for sign-off."""
    return page(ctx, "approvals.html", pending=ctx.registry.pending_approvals())


@router.get(f"{PREFIX}/models/{{name}}")
def model(ctx: Viewer, name: str, page_: int = Query(1, ge=1, alias="page")) -> Response:
    """A model: its stages, its versions (paginated, highest first), links to graph and history."""
    found = ctx.registry.get_model(name=name)
    versions, total = _reads.versions_page(ctx.registry, model=name, page=page_, per_page=PER_PAGE)
    pointers, _ = _reads.model_stages(ctx.registry, model=name)
    held: dict[str, list[str]] = defaultdict(list)
    for stage, pointer in sorted(pointers.items()):
        held[pointer["version"]].append(stage)
    return page(
        ctx,
        "model.html",
        model=found,
        versions=versions,
        held=held,
        pointers=pointers,
        flagged={ref.partition("@")[2] for ref in _at_risk(ctx, name)},
        pager=Pager(page_, PER_PAGE, total, urls.model(name)),
    )


@router.get(f"{PREFIX}/models/{{name}}/lineage")
def lineage(ctx: Viewer, name: str, focus: str | None = None) -> Response:
    """The model's lineage drawn by Graphviz; each version node links to its page."""
    found = ctx.registry.get_model(name=name)
    versions, total = _reads.lineage_versions(ctx.registry, model=name, limit=MAX_VERSIONS)
    stages = {s: p["version"] for s, p in _reads.model_stages(ctx.registry, model=name)[0].items()}
    flagged = {ref.partition("@")[2] for ref in _at_risk(ctx, name)}
    dot = lineage_dot(name, versions, stages=stages, at_risk=flagged, focus=focus)
    svg, problem = None, None
    try:
        svg = render_svg(dot)
    except (GraphUnavailableError, RuntimeError, OSError) as exc:
        problem = str(exc)
    return page(
        ctx,
        "lineage.html",
        model=found,
        svg=svg,
        problem=problem,
        versions=versions,
        shown=len(versions),
        total=total,
        focus=focus,
    )


@router.get(f"{PREFIX}/models/{{name}}/history")
def history(ctx: Viewer, name: str) -> Response:
    """The stage history of a model as a timeline, newest move first."""
    found = ctx.registry.get_model(name=name)
    pointers, moves = _reads.model_stages(ctx.registry, model=name)
    return page(ctx, "history.html", model=found, moves=list(reversed(moves)), pointers=pointers)
