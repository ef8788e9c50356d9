"""Commands for the shared registry: API tokens, monitoring observations, ``serve``,
and ``gc`` for what interrupted uploads leave behind."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from charter.cli._common import (
    console,
    emit_json,
    err_console,
    local_registry,
    registry,
    require_version,
    settings_from,
)
from charter.cli.profiles import read_document, read_metrics
from charter.domain.errors import InvalidInputError
from charter.journal import now

__all__ = ["register_commands", "token_app"]

token_app = typer.Typer(help="API tokens for `charter serve`.", no_args_is_help=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


@token_app.command("create")
def token_create(
    ctx: typer.Context,
    user: Annotated[str, typer.Argument(help="The registry user the token acts as.")],
    expires: Annotated[
        str | None, typer.Option(help="Lifetime (90d, 12h, 30m, 2w) or an ISO-8601 time.")
    ] = None,
    label: Annotated[str, typer.Option(help="What the token is for.")] = "",
    json_out: JsonOpt = False,
) -> None:
    """Create a bearer token; it is shown once and stored only as a hash."""
    with registry(ctx) as reg:
        token, info = reg.create_token(user=user, expires=expires, label=label)
    if json_out:
        emit_json(info.state() | {"token": token})
        return
    err_console.print(
        f"token {info.token_id} for {info.user} (expires {info.expires_at or 'never'}); "
        "copy it now, it is not shown again:"
    )
    # The token alone on stdout, so `TOKEN=$(charter token create bob)` works.
    typer.echo(token)


@token_app.command("list")
def token_list(
    ctx: typer.Context,
    user: Annotated[str | None, typer.Option(help="Only this user's tokens.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """List tokens (never their secrets) with their status."""
    with registry(ctx) as reg:
        tokens = reg.list_tokens(user=user)
    at = now()
    if json_out:
        emit_json([t.state() | {"status": t.status(at)} for t in tokens])
        return
    table = Table("token", "user", "label", "status", "created", "expires")
    for t in tokens:
        table.add_row(
            t.token_id, t.user, t.label, t.status(at), t.created_at, t.expires_at or "never"
        )
    console.print(table)


@token_app.command("revoke")
def token_revoke(
    ctx: typer.Context,
    token_id: Annotated[str, typer.Argument(help="The token id (as listed).")],
) -> None:
    """Revoke a token: the next request with it is refused."""
    with registry(ctx) as reg:
        info = reg.revoke_token(token_id=token_id)
    console.print(f"token {info.token_id} of {info.user} revoked at {info.revoked_at}")


def observe(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="NAME@VERSION of a deployed version.")],
    reason: Annotated[str, typer.Option(help="Where the observations come from.")],
    metrics: Annotated[
        Path | None, typer.Option(help="Flat {metric: value} YAML/JSON of observations.")
    ] = None,
    profile: Annotated[
        Path | None, typer.Option(help="A profile document (per-slice, bias audits…).")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Record production observations; exit 1 when they put the version at risk."""
    name, version = require_version(ref)
    if metrics is not None and profile is None:
        document = read_metrics(metrics)
    elif profile is not None and metrics is None:
        document = read_document(profile)
    else:
        raise InvalidInputError("give exactly one of --metrics FILE or --profile FILE")
    with registry(ctx) as reg:
        seen = reg.observe(model=name, version=version, document=document, reason=reason)
    if json_out:
        emit_json(seen.to_dict())
    else:
        console.print(f"{seen.amendment_id} recorded on {seen.ref} (source: monitoring)")
        for stage, failed in seen.findings.items():
            for finding in failed:
                console.print(f"  [red]✗[/] {stage}: {finding['message']}", highlight=False)
        if seen.at_risk:
            console.print(f"[bold red]{seen.ref} is AT RISK[/]: roll back with `charter rollback`")
        elif seen.decisions:
            console.print(f"{seen.ref} still passes {', '.join(seen.decisions)}")
    if seen.at_risk:
        raise typer.Exit(1)


def at_risk(
    ctx: typer.Context,
    model: Annotated[str | None, typer.Option(help="Only this model.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """List the versions production monitoring flagged at risk."""
    with registry(ctx) as reg:
        flagged = reg.at_risk(model=model)
    if json_out:
        emit_json(flagged)
        return
    table = Table("version", "since", "by", "failing")
    for f in flagged:
        failing = "; ".join(x["message"] for fs in f["findings"].values() for x in fs)
        table.add_row(f["ref"], f["since"], f["by"], failing)
    console.print(table)


def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
) -> None:
    """Serve the REST API and web UI on this registry home (or database + store)."""
    import uvicorn

    from charter.api import create_app

    app = create_app(settings_from(ctx))
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)


def gc(
    ctx: typer.Context,
    older_than: Annotated[
        float, typer.Option(help="Only remove what is untouched for this many seconds.")
    ] = 3600.0,
    blobs: Annotated[
        bool, typer.Option("--blobs", help="Also delete blobs no version or card references.")
    ] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only say what would go.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Remove temporary files and aborted uploads left by interrupted puts (admin)."""
    with local_registry(ctx) as reg:
        report = reg.gc(older_than_s=older_than, blobs=blobs, dry_run=dry_run)
    if json_out:
        emit_json(dataclasses.asdict(report))
        return
    verb = "would remove" if report.dry_run else "removed"
    console.print(
        f"{verb} {report.temporaries} temporary file(s), {report.uploads} aborted upload(s) "
        f"and {len(report.blobs)} unreferenced blob(s): {report.freed_bytes:,} bytes"
    )


def register_commands(app: typer.Typer) -> None:
    """Attach the server commands to the root app."""
    app.add_typer(token_app, name="token")
    app.command("observe")(observe)
    app.command("at-risk")(at_risk)
    app.command("serve")(serve)
    app.command("gc")(gc)
