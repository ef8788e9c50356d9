"""Gates and sign-off: users, policies, gate, approve/reject, promote, rollback, stages."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from charter.cli._common import console, emit_json, registry, require_version
from charter.cli.profiles import read_text
from charter.domain.entities import canonical_time
from charter.domain.gate import GateDecision
from charter.domain.policy import parse_policy, policy_digest
from charter.domain.stages import StageMove

__all__ = ["register_commands"]

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
StageOpt = Annotated[str, typer.Option("--stage", help="Stage name, e.g. staging, production.")]
user_app = typer.Typer(help="Registry users and their roles.", no_args_is_help=True)
policy_app = typer.Typer(help="Gate policies (YAML), stored by digest.", no_args_is_help=True)
stage_app = typer.Typer(help="Stage pointers and their history.", no_args_is_help=True)


class GateFormat(StrEnum):
    """Output formats of ``charter gate``."""

    text = "text"
    json = "json"
    junit = "junit"


@user_app.command("add")
def user_add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="User name (as CHARTER_USER / token owner).")],
    role: Annotated[str, typer.Option(help="viewer, contributor, approver or admin.")],
) -> None:
    """Add a user or change their role (admin only)."""
    with registry(ctx) as reg:
        user = reg.add_user(name=name, role=role)
    console.print(f"{user.name} is now {user.role.value}")


@user_app.command("list")
def user_list(ctx: typer.Context, json_out: JsonOpt = False) -> None:
    """List users and roles."""
    with registry(ctx) as reg:
        users = reg.list_users()
    if json_out:
        emit_json([u.state() for u in users])
        return
    table = Table("user", "role", "updated by", "updated at")
    for u in users:
        table.add_row(u.name, u.role.value, u.updated_by, u.updated_at)
    console.print(table)


@policy_app.command("set")
def policy_set(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="Policy YAML.")],
    model: Annotated[str | None, typer.Option(help="Only for this model.")] = None,
) -> None:
    """Store a policy and make it the registry default (or a model's). Admin only."""
    with registry(ctx) as reg:
        digest = reg.set_policy(text=read_text(file, "policy file"), model=model)
    console.print(f"policy {digest} now applies to {model or 'every model without its own'}")


@policy_app.command("show")
def policy_show(
    ctx: typer.Context,
    model: Annotated[str | None, typer.Option(help="The policy in force for this model.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Show the policy in force and where it comes from."""
    with registry(ctx) as reg:
        digest, policy, scope = reg.policy(model=model)
    document = policy.model_dump(mode="json", by_alias=True, exclude_none=True)
    if json_out:
        emit_json({"digest": digest, "scope": scope, "policy": document})
    else:
        import yaml

        console.print(f"# {scope} policy {digest}", highlight=False)
        console.print(yaml.safe_dump(document, sort_keys=False), highlight=False, markup=False)


@policy_app.command("validate")
def policy_validate(
    ctx: typer.Context, file: Annotated[Path, typer.Argument(help="Policy YAML.")]
) -> None:
    """Check a policy file (syntax, stages, metrics known to this registry)."""
    text = read_text(file, "policy file")
    with registry(ctx) as reg:
        warnings = reg.validate_policy(text=text)
    for warning in warnings:
        console.print(f"[yellow]warning:[/] {warning}", highlight=False)
    console.print(f"[green]valid[/] policy {policy_digest(parse_policy(text, source=str(file)))}")


def gate(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="NAME@VERSION.")],
    stage: StageOpt,
    fmt: Annotated[GateFormat, typer.Option("--format", help="text, json or junit.")] = (
        GateFormat.text
    ),
) -> None:
    """Evaluate the stage's policy against a version (exit 0 pass, 1 fail); recorded."""
    name, version = require_version(ref)
    with registry(ctx) as reg:
        decision_id, decision = reg.gate(model=name, version=version, stage=stage)
    if fmt is GateFormat.json:
        emit_json({"id": decision_id, **decision.to_dict()})
    elif fmt is GateFormat.junit:
        typer.echo(decision.to_junit_xml())
    else:
        print_decision(ref, decision_id, decision)
    if not decision.passed:
        raise typer.Exit(1)


def print_decision(ref: str, decision_id: int, decision: GateDecision) -> None:
    """Render a gate decision: one line per finding."""
    verdict = "[green]PASS[/]" if decision.passed else "[bold red]FAIL[/]"
    console.print(f"{verdict} {ref} for {decision.stage} (decision {decision_id}, "
                  f"policy {decision.policy_digest[:19]}…)")  # fmt: skip
    for f in decision.findings:
        mark = "[green]✓[/]" if f.passed else "[red]✗[/]"
        shown = f.evidence and not all(e in f.message for e in f.evidence)
        evidence = f"  [dim]evidence: {', '.join(f.evidence)}[/]" if shown else ""
        console.print(f"  {mark} {f.message}{evidence}", highlight=False)


def _sign(ctx: typer.Context, ref: str, stage: str, comment: str, decision: str) -> None:
    name, version = require_version(ref)
    with registry(ctx) as reg:
        approval = reg.approve(
            model=name, version=version, stage=stage, comment=comment, decision=decision
        )
    console.print(f"{approval.decision} #{approval.id} of {ref} for {stage} by {approval.user}")


def approve(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="NAME@VERSION.")],
    stage: StageOpt,
    comment: Annotated[str, typer.Option(help="Why you approve.")],
) -> None:
    """Approve a published version for a stage (approver role; not your own version)."""
    _sign(ctx, ref, stage, comment, "approve")


def reject(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="NAME@VERSION.")],
    stage: StageOpt,
    comment: Annotated[str, typer.Option(help="Why you reject.")],
) -> None:
    """Reject a version for a stage: blocks it until its profile changes (a new round)."""
    _sign(ctx, ref, stage, comment, "reject")


def approvals(
    ctx: typer.Context,
    pending: Annotated[bool, typer.Option("--pending", help="Only what awaits sign-off.")] = False,
    model: Annotated[str | None, typer.Option(help="Only this model.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """List sign-offs, or (--pending) versions whose gate waits only for approvals."""
    with registry(ctx) as reg:
        if pending:
            rows = [
                p for p in reg.pending_approvals() if not model or p["ref"].startswith(f"{model}@")
            ]
            if json_out:
                emit_json(rows)
                return
            table = Table("version", "stage", "gate decision", "missing")
            for p in rows:
                table.add_row(p["ref"], p["stage"], str(p["decision_id"]), p["missing"])
            console.print(table)
            return
        found = reg.approvals(model=model)
    if json_out:
        emit_json([a.state() for a in found])
        return
    table = Table("#", "version", "stage", "decision", "by", "at", "comment")
    for a in found:
        table.add_row(str(a.id), a.ref, a.stage, a.decision, a.user, a.at, a.comment)
    console.print(table)


def promote(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="NAME@VERSION.")],
    stage: StageOpt,
    force: Annotated[bool, typer.Option(help="Admin: override a failed gate (recorded).")] = False,
    reason: Annotated[str | None, typer.Option(help="Why (required with --force).")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Gate, check approvals, then move the stage to this version (exit 1 if refused)."""
    name, version = require_version(ref)
    with registry(ctx) as reg:
        move = reg.promote(model=name, version=version, stage=stage, force=force, reason=reason)
    _print_move(move, json_out)


def rollback(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Model name.")],
    stage: StageOpt,
    reason: Annotated[str, typer.Option(help="Why the stage moves back.")],
    to: Annotated[str | None, typer.Option(help="Version (default: the previous holder).")] = None,
    force: Annotated[bool, typer.Option(help="Admin: target never passed this gate.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Move a stage back to an earlier version, with a reason (recorded)."""
    with registry(ctx) as reg:
        move = reg.rollback(model=name, stage=stage, reason=reason, to=to, force=force)
    _print_move(move, json_out)


def _print_move(move: StageMove, json_out: bool) -> None:
    if json_out:
        emit_json({**move.state(), "ledger_seq": move.ledger_seq})
    else:
        console.print(f"{move.stage} of {move.model} -> {move.version} ({move.action}, "
                      f"ledger entry {move.ledger_seq})")  # fmt: skip


@stage_app.command("list")
def stage_list(
    ctx: typer.Context,
    model: Annotated[str | None, typer.Argument(help="Model name (default: all).")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Which version holds each stage now."""
    with registry(ctx) as reg:
        rows = reg.stages(model=model)
    if json_out:
        emit_json(rows)
        return
    table = Table("model", "stage", "version", "since", "by")
    for r in rows:
        table.add_row(r["model"], r["stage"], r["version"], r["assigned_at"], r["assigned_by"])
    console.print(table)


@stage_app.command("history")
def stage_history(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="Model name.")],
    stage: Annotated[str | None, typer.Option("--stage", help="One stage only.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Every move of a model's stages: promotions, rollbacks, overrides."""
    with registry(ctx) as reg:
        moves = reg.stage_history(model=model, stage=stage)
    if json_out:
        emit_json([{**m.state(), "ledger_seq": m.ledger_seq} for m in moves])
        return
    table = Table("at", "stage", "version", "action", "by", "gate", "approvals", "reason", "entry")
    for m in moves:
        approved = ", ".join(map(str, m.approval_ids))
        table.add_row(m.at, m.stage, m.version, m.action, m.by, str(m.gate_decision_id or ""),
                      approved, m.reason or "", str(m.ledger_seq))  # fmt: skip
    console.print(table)


@stage_app.command("at")
def stage_at(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="Model name.")],
    stage: StageOpt,
    time: Annotated[str, typer.Option("--time", help="ISO-8601, e.g. 2026-03-03T12:00:00Z.")],
) -> None:
    """Which version held a stage at a time, with the ledger entry (and proof) that put it there."""
    when = canonical_time(time)
    with registry(ctx) as reg:
        move = reg.stage_at(model=model, stage=stage, time=when)
        proof = reg.proof(seq=move.ledger_seq).to_dict() if move else None
    emit_json({"model": model, "stage": stage, "time": when,
               "version": move.version if move else None,
               "move": {**move.state(), "ledger_seq": move.ledger_seq} if move else None,
               "proof": proof})  # fmt: skip


def deprecate(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="NAME@VERSION.")],
    reason: Annotated[str, typer.Option(help="Why it must never be promoted again.")],
    archive: Annotated[
        bool, typer.Option("--archive", help="Archive instead of deprecate.")
    ] = False,
) -> None:
    """Mark a version deprecated (or archived): it can never be promoted again."""
    name, version = require_version(ref)
    status = "archived" if archive else "deprecated"
    with registry(ctx) as reg:
        reg.deprecate(model=name, version=version, reason=reason, status=status)
    console.print(f"{ref} is {status}")


def register_commands(app: typer.Typer) -> None:
    """Attach this module's commands to the root app."""
    app.add_typer(user_app, name="user")
    app.add_typer(policy_app, name="policy")
    app.command("gate")(gate)
    app.command("approve")(approve)
    app.command("reject")(reject)
    app.command("approvals")(approvals)
    app.command("promote")(promote)
    app.command("rollback")(rollback)
    app.add_typer(stage_app, name="stage")
    app.command("deprecate")(deprecate)
