"""``charter card``: render a model card, check for stale cards, refresh them.

Forms: ``charter card NAME@VERSION [--format md|html] [-o FILE]``,
``charter card check [NAME[@VERSION]]`` (exit 1 when any card is stale) and
``charter card render --all-stale``. References always contain ``@``, so the
words ``check`` and ``render`` cannot be mistaken for one.
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from charter.cli._common import console, emit_json, registry, require_version
from charter.domain.errors import InvalidInputError
from charter.service import parse_ref

__all__ = ["register_commands"]


class CardFormat(StrEnum):
    """Card formats."""

    md = "md"
    html = "html"


def card(
    ctx: typer.Context,
    first: Annotated[str, typer.Argument(help="NAME@VERSION, `check` or `render`.")],
    second: Annotated[str | None, typer.Argument(help="After `check`: NAME[@VERSION].")] = None,
    fmt: Annotated[CardFormat, typer.Option("--format", help="md or html.")] = CardFormat.md,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Write to FILE.")] = None,
    all_stale: Annotated[
        bool, typer.Option("--all-stale", help="render: every stale card.")
    ] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Render and register a model card (also: `card check`, `card render --all-stale`)."""
    if first == "check":
        _check(ctx, second, json_out=json_out)
    elif first == "render":
        if not all_stale or second is not None:
            raise InvalidInputError(
                "use `charter card render --all-stale`, or `charter card NAME@VERSION`",
                field="card",
            )
        with registry(ctx) as reg:
            fresh = reg.render_stale()
        if json_out:
            emit_json([c.to_dict() for c in fresh])
        else:
            for c in fresh:
                console.print(f"re-rendered {c.ref} ({c.format}) as {c.card_id}")
            if not fresh:
                console.print("no stale cards")
    else:
        if second is not None:
            raise InvalidInputError(f"unexpected argument {second!r}", field="card")
        name, version = require_version(first)
        with registry(ctx) as reg:
            record, text = reg.render_card(model=name, version=version, fmt=fmt.value)
        if output is not None:
            output.write_text(text, encoding="utf-8")
        if json_out:
            emit_json({**record.to_dict(), "path": str(output) if output else None})
        elif output is not None:
            console.print(
                f"rendered {record.ref} as {record.card_id} ({record.digest}) to {output}"
            )
        else:
            typer.echo(text)


def _check(ctx: typer.Context, ref: str | None, *, json_out: bool) -> None:
    name, version = parse_ref(ref) if ref else (None, None)
    with registry(ctx) as reg:
        cards = reg.card_status(model=name, version=version)
    stale = [c for c in cards if c.stale]
    if json_out:
        emit_json([c.to_dict() for c in cards])
    else:
        table = Table("version", "format", "card", "rendered", "status")
        for c in cards:
            status = (
                "[red]stale: " + "; ".join(c.stale_reasons) + "[/]"
                if c.stale
                else "[green]current[/]"
            )
            table.add_row(c.ref, c.format, c.card_id, c.rendered_at, status)
        console.print(table if cards else "no cards rendered yet")
        if stale:
            console.print(
                f"{len(stale)} stale card(s): refresh with `charter card render --all-stale`"
            )
    if stale:
        raise typer.Exit(1)


class ExportFormat(StrEnum):
    """Export formats."""

    cyclonedx = "cyclonedx"
    in_toto = "in-toto"


def export(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="NAME@VERSION.")],
    fmt: Annotated[ExportFormat, typer.Option("--format", help="cyclonedx or in-toto.")],
    sign: Annotated[
        bool, typer.Option("--sign", help="in-toto: DSSE-sign with the ledger key.")
    ] = False,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Write to FILE.")] = None,
) -> None:
    """Export a version as a CycloneDX 1.6 ML-BOM or in-toto statements (baseline + amendments)."""
    name, version = require_version(ref)
    with registry(ctx) as reg:
        document = reg.export(model=name, version=version, fmt=fmt.value, sign=sign)
    if output is None:
        emit_json(document)
        return
    output.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    console.print(f"wrote {fmt.value} export of {ref} to {output}")


def register_commands(app: typer.Typer) -> None:
    """Attach this module's commands to the root app."""
    app.command("card")(card)
    app.command("export")(export)
