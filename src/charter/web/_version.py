"""The version page, its model card, and the actions on it: sign-off, gate, promote.

Actions run as the logged-in user (``registry.as_user``), so the ledger names
them, and the service enforces roles and separation of duties; the page only
hides buttons a user could not use.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from fastapi import APIRouter, Form, Query
from fastapi.responses import HTMLResponse, Response
from markupsafe import Markup

from charter._cards import _card_input
from charter.cards import CardInput, charts, render_html
from charter.cards._context import build_context
from charter.cards.render import _inline_svg
from charter.domain.errors import CharterError, GateRefusedError, InvalidInputError
from charter.domain.lineage import Lineage
from charter.journal import now
from charter.web import _reads
from charter.web._deps import Actor, Viewer, WebContext, WebRoute, page, redirect
from charter.web._render import PREFIX, Pager, urls

__all__ = ["router"]

router = APIRouter(route_class=WebRoute)
FILES_PER_PAGE = 50
_BASE = f"{PREFIX}/models/{{name}}/versions/{{number}}"


@lru_cache(maxsize=256)
def _bias_chart(entry_json: str, prefix: str, label: str) -> Markup:
    # matplotlib takes tens of milliseconds a chart; the same entry always draws the same.
    return _inline_svg(charts.bias_chart(json.loads(entry_json)), prefix, label)


def _profile_view(ctx: WebContext, name: str, number: str) -> dict[str, Any]:
    """The effective profile laid out as the model card lays it out, with bias charts."""
    reg = ctx.registry
    v = reg.get_version(model=name, version=number)
    card = CardInput(
        model=reg.get_model(name=name),
        version=v,
        files=(),
        lineage=Lineage(v, (), ()),
        profile=reg.profile(model=name, version=number),
        baseline=reg.profile(model=name, version=number, baseline=True),
        rendered_at=now(),
    )
    view = build_context(card)
    if charts.available():
        for n, audit in enumerate(view["bias"], start=1):
            entry = json.dumps(audit["entry"], sort_keys=True)
            label = f"{audit['metric']} by {audit['feature']} per group"
            audit["chart"] = _bias_chart(entry, f"b{n}-", label)
    view["digest"] = card.profile.digest
    return view


def _signoff_view(ctx: WebContext, name: str, number: str, facts: _reads.VersionFacts,
                  digest: str) -> dict[str, Any]:  # fmt: skip
    """Per stage of the policy: its latest gate, this round's sign-offs and older ones."""
    stages = list(ctx.registry.policy(model=name)[1].stages)
    latest: dict[str, dict[str, Any]] = {}
    for d in reversed(facts.decisions):  # oldest first, so the newest wins
        latest[d["stage"]] = d
    rows = []
    for stage in stages + sorted({a.stage for a in facts.approvals} - set(stages)):
        current = [a for a in facts.approvals if a.stage == stage and a.profile_digest == digest]
        older = [a for a in facts.approvals if a.stage == stage and a.profile_digest != digest]
        decision = latest.get(stage)
        missing = [
            f["message"] for f in (decision or {}).get("document", {}).get("findings", [])
            if not f["passed"] and f["rule"].split(":", 1)[0].endswith("approvals")
        ]  # fmt: skip
        rows.append({"stage": stage, "decision": decision, "current": current, "older": older,
                     "missing": missing, "holds": stage in facts.held})  # fmt: skip
    waiting = next((r["stage"] for r in rows if r["missing"] and not r["holds"]), None)
    default = waiting or next((s for s in stages if s not in facts.held), stages[0])
    return {"rows": rows, "stages": stages, "default_stage": default}


def _version_page(ctx: WebContext, name: str, number: str, files_page: int) -> Response:
    reg = ctx.registry
    model = reg.get_model(name=name)
    v = reg.get_version(model=name, version=number)
    facts = _reads.version_facts(reg, model=name, version=number)
    profile = _profile_view(ctx, name, number)
    files, total = _reads.files_page(
        reg, model=name, version=number, page=files_page, per_page=FILES_PER_PAGE
    )
    risk = next((f for f in reg.at_risk(model=name) if f["ref"] == v.ref), None)
    return page(
        ctx,
        "version.html",
        model=model,
        v=v,
        facts=facts,
        profile=profile,
        signoff=_signoff_view(ctx, name, number, facts, profile["digest"]),
        files=files,
        files_pager=Pager(files_page, FILES_PER_PAGE, total, urls.version(name, number), "files"),
        risk_flag=risk,
        cards=reg.card_status(model=name, version=number),
        moves=[m for m in reversed(facts.moves) if m.version == number],
    )


@router.get(_BASE)
def version(ctx: Viewer, name: str, number: str, files: int = Query(1, ge=1)) -> Response:
    """Everything about one version, with the sign-off and promotion forms for those allowed."""
    return _version_page(ctx, name, number, files)


@router.get(f"{_BASE}/card")
def card(ctx: Viewer, name: str, number: str) -> Response:
    """The model card as rendered now (shown in a sandboxed frame; nothing is stored)."""
    ctx.registry.get_version(model=name, version=number)
    html = render_html(_card_input(ctx.registry, name, number, now()))
    # The card is a standalone document: sandboxed, it can run nothing and reach nothing.
    return HTMLResponse(
        html, headers={"Content-Security-Policy": "sandbox; frame-ancestors 'self'"}
    )


def _signoff_fragment(ctx: WebContext, name: str, number: str, flash: tuple[str, str]) -> Response:
    facts = _reads.version_facts(ctx.registry, model=name, version=number)
    digest = ctx.registry.profile(model=name, version=number).digest
    return page(
        ctx,
        "_signoff.html",
        v=ctx.registry.get_version(model=name, version=number),
        signoff=_signoff_view(ctx, name, number, facts, digest),
        inline_flash=flash,
    )


@router.post(f"{_BASE}/signoff")
def signoff(
    ctx: Actor,
    name: str,
    number: str,
    stage: str = Form(...),
    decision: str = Form(...),
    comment: str = Form(""),
) -> Response:
    """Approve or reject the version's current evidence for a stage (approvers only)."""
    try:
        approval = ctx.acting.approve(
            model=name, version=number, stage=stage, comment=comment, decision=decision
        )
        verb = "approved" if approval.decision == "approve" else "rejected"
        flash = ("ok", f"You {verb} {approval.ref} for {stage} (sign-off #{approval.id}).")
    except CharterError as exc:
        flash = ("error", exc.message)
    if ctx.is_htmx:
        return _signoff_fragment(ctx, name, number, flash)
    return redirect(ctx, urls.version(name, number), flash=flash)


@router.post(f"{_BASE}/gate")
def gate(ctx: Actor, name: str, number: str, stage: str = Form(...)) -> Response:
    """Evaluate and record the gate for a stage (contributors and up)."""
    if not ctx.can("contributor"):
        flash = ("error", "Evaluating a gate needs the contributor role.")
        return redirect(ctx, urls.version(name, number), flash=flash)
    try:
        decision_id, decision = ctx.acting.gate(model=name, version=number, stage=stage)
        failed = [f.message for f in decision.findings if not f.passed]
        flash = (
            ("ok", f"Gate #{decision_id} for {stage}: passed.")
            if decision.passed
            else ("error", f"Gate #{decision_id} for {stage} failed: " + "; ".join(failed))
        )
    except CharterError as exc:
        flash = ("error", exc.message)
    return redirect(ctx, urls.version(name, number), flash=flash)


@router.post(f"{_BASE}/promote")
def promote(ctx: Actor, name: str, number: str, stage: str = Form(...)) -> Response:
    """Gate the version for a stage and, if it passes, move the stage to it."""
    try:
        if not stage.strip():
            raise InvalidInputError("choose a stage to promote to", field="stage")
        move = ctx.acting.promote(model=name, version=number, stage=stage)
        done = f"(generation {move.generation}, ledger entry {move.ledger_seq})"
        flash = ("ok", f"{stage} of {name} now points at {move.version} {done}.")
    except GateRefusedError as exc:
        flash = ("error", f"Not promoted. {exc.message}")
    except CharterError as exc:
        flash = ("error", exc.message)
    return redirect(ctx, urls.version(name, number), flash=flash)
