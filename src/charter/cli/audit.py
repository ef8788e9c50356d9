"""``charter audit``: the ledger, its proofs and checkpoints, and verification."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from charter.cli._common import console, emit_json, registry
from charter.views import entry_view

__all__ = ["app"]

app = typer.Typer(help="Read, prove and verify the audit ledger.", no_args_is_help=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


@app.command("log")
def log(
    ctx: typer.Context,
    start: Annotated[int, typer.Option(min=0, help="First entry to show.")] = 0,
    limit: Annotated[int | None, typer.Option(min=1, help="How many entries at most.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Print ledger entries in order."""
    with registry(ctx) as reg:
        records = reg.audit_log(start=start, limit=limit)
    if json_out:
        emit_json([entry_view(r) for r in records])
        return
    table = Table("seq", "time", "actor", "event", "subject")
    for r in records:
        table.add_row(str(r.seq), r.time, r.actor, r.type, r.subject)
    console.print(table)


@app.command("verify")
def verify(
    ctx: typer.Context,
    artifacts: Annotated[
        bool, typer.Option("--artifacts", help="Also re-hash every stored blob.")
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """Recompute the ledger, check signatures, cross-check state (exit 1 on any problem)."""
    with registry(ctx) as reg:
        report = reg.verify(artifacts=artifacts)
    if json_out:
        emit_json(report.to_dict())
    else:
        for p in report.problems:
            console.print(f"[red]✗[/] {p.kind}: {p.where}: {p.message}", highlight=False)
        summary = (
            f"{report.entries} entries, {report.checkpoints} signed checkpoints "
            f"({report.unsigned_entries} entries after the latest), "
            f"{report.subjects} models and versions"
            + (f", {report.blobs} blobs" if artifacts else "")
        )
        if report.ok:
            console.print(f"[green]✓ ledger verified[/]: {summary}")
        else:
            console.print(f"[red]✗ {len(report.problems)} problem(s)[/]: {summary}")
    if not report.ok:
        raise typer.Exit(1)


@app.command("proof")
def proof(
    ctx: typer.Context, entry: Annotated[int, typer.Argument(min=0, help="Entry sequence number.")]
) -> None:
    """Print an inclusion proof of one entry against the latest signed checkpoint (JSON)."""
    with registry(ctx) as reg:
        result = reg.proof(seq=entry)
    emit_json(result.to_dict())


@app.command("checkpoint")
def checkpoint(ctx: typer.Context, json_out: JsonOpt = False) -> None:
    """Sign a checkpoint if the ledger grew, and print the latest one."""
    with registry(ctx) as reg:
        cp = reg.checkpoint(sign=True)
    if cp is None:
        console.print("the ledger is empty")
        return
    if json_out:
        emit_json(cp.to_dict())
    else:
        for key, value in cp.to_dict().items():
            console.print(f"{key:10} {value}", highlight=False)


@app.command("public-key")
def public_key(ctx: typer.Context) -> None:
    """Print the PEM public key that verifies this registry's checkpoints."""
    with registry(ctx) as reg:
        typer.echo(reg.public_key_pem().decode(), nl=False)
