"""``charter profile``: add, amend, show (as of a time) and history of safety profiles."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from charter.cli._common import console, emit_json, registry, require_version
from charter.domain.entities import canonical_time
from charter.domain.errors import InvalidInputError, NotFoundError
from charter.domain.folding import EffectiveProfile
from charter.domain.profile import ProfileDocument, entries_from_metrics, parse_document
from charter.service import parse_ref

__all__ = ["app", "read_document", "read_metrics", "read_text"]

app = typer.Typer(help="Safety profiles: add, amend, show, history.", no_args_is_help=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
MAX_PROFILE_BYTES = 16 * 1024 * 1024


def read_text(path: Path, what: str) -> str:
    """Read a UTF-8 text file given on the command line (bounded, clear errors)."""
    return _read(path, what)


def _read(path: Path, what: str) -> str:
    try:
        if path.stat().st_size > MAX_PROFILE_BYTES:
            raise InvalidInputError(f"{what} {path} is larger than 16 MiB", path=str(path))
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NotFoundError(f"{what} {path} does not exist", path=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"cannot read {what} {path}: {exc}", path=str(path)) from None


def read_document(path: Path) -> ProfileDocument:
    """Read and validate a YAML/JSON profile document."""
    return parse_document(_read(path, "profile file"), source=str(path))


def read_metrics(path: Path) -> ProfileDocument:
    """Read a flat ``{name: value}`` metrics file as evaluations."""
    return entries_from_metrics(_read(path, "metrics file"), source=str(path))


@app.command("add")
def add(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="NAME@VERSION of a draft.")],
    file: Annotated[Path, typer.Argument(help="YAML or JSON profile document.")],
    json_out: JsonOpt = False,
) -> None:
    """Add entries to a draft's profile (sealed as its baseline at publish)."""
    name, version = require_version(ref)
    document = read_document(file)
    with registry(ctx) as reg:
        bodies = reg.add_profile(model=name, version=version, document=document)
    if json_out:
        emit_json(bodies)
    else:
        console.print(f"added {', '.join(b['id'] for b in bodies)} to {ref}")


@app.command("amend")
def amend(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="NAME@VERSION of a published version.")],
    file: Annotated[Path, typer.Argument(help="YAML or JSON amendment document.")],
    reason: Annotated[str, typer.Option(help="Why the profile changes (recorded).")],
    json_out: JsonOpt = False,
) -> None:
    """Append an amendment (new, superseding or retracting entries) to a published profile."""
    name, version = require_version(ref)
    document = read_document(file)
    with registry(ctx) as reg:
        amendment = reg.amend_profile(model=name, version=version, document=document, reason=reason)
    if json_out:
        emit_json(amendment.to_dict())
    else:
        added = ", ".join(amendment.entry_ids) or "nothing"
        retracted = ", ".join(amendment.retracts) or "nothing"
        console.print(f"{amendment.id} on {ref}: added {added}; retracted {retracted}")


@app.command("show")
def show(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="NAME@VERSION.")],
    as_of: Annotated[
        str | None, typer.Option(help="ISO-8601 time: the profile as it stood then.")
    ] = None,
    baseline: Annotated[bool, typer.Option("--baseline", help="Only the sealed baseline.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Show the effective profile (baseline + amendments), now or as of a time."""
    name, version = require_version(ref)
    when = canonical_time(as_of) if as_of else None
    with registry(ctx) as reg:
        profile = reg.profile(model=name, version=version, as_of=when, baseline=baseline)
    if json_out:
        emit_json(profile.to_dict())
    else:
        print_profile(profile)


def print_profile(profile: EffectiveProfile) -> None:
    """Render an effective profile as tables, baseline and amendments marked."""
    title = f"{profile.ref} safety profile" + (f" as of {profile.as_of}" if profile.as_of else "")
    console.print(f"[bold]{title}[/]  digest {profile.digest}")
    if profile.baseline_digest:
        console.print(f"sealed baseline {profile.baseline_digest}")
    evals = Table(
        "id", "metric", "slice", "value", "unit", "better", "n", "origin", title="Evaluations"
    )
    for e in profile.section("evaluations"):
        better = e["direction"].split("_")[0]
        n = str(e.get("samples", ""))
        value = f"{e['value']:.4g}"
        evals.add_row(e["id"], e["name"], e.get("slice", ""), value, e["unit"], better, n,
                      _origin(profile, e))  # fmt: skip
    bias = Table(
        "id",
        "feature",
        "metric",
        "groups (value, n)",
        "ratio",
        "diff",
        "origin",
        title="Bias audits",
    )
    for b in profile.section("bias_audits"):
        groups = "; ".join(f"{g['group']} {g['value']:.3g} (n={g['size']})" for g in b["groups"])
        bias.add_row(b["id"], b["sensitive_feature"], b["metric"], groups, f"{b['ratio']:.3f}",
                     f"{b['difference']:.3f}", _origin(profile, b))  # fmt: skip
    adv = Table(
        "id", "pack", "target", "attempts", "hits", "ASR", "origin", title="Red-team campaigns"
    )
    for a in profile.section("adversarial"):
        adv.add_row(a["id"], f"{a['pack']['name']}@{a['pack']['version']}", a["target"],
                    str(a["attempts"]), str(a["hits"]), f"{a['attack_success_rate']:.3f}",
                    _origin(profile, a))  # fmt: skip
    for table in (evals, bias, adv):
        if table.row_count:
            console.print(table)
    for c in profile.section("constraints"):
        shown = {k: v for k, v in c.items() if k not in ("id", "section", "provenance")}
        console.print(f"[bold]Constraints {c['id']}[/] ({_origin(profile, c)}): {shown}")
    for old, new in profile.superseded:
        console.print(f"  {old} superseded by {new}")
    for old, by in profile.retracted:
        console.print(f"  {old} retracted by {by}")
    for am in profile.amendments:
        console.print(f"  {am.id} by {am.author} at {am.created_at}: {am.reason}")


def _origin(profile: EffectiveProfile, body: dict[str, Any]) -> str:
    for e in profile.entries:
        if e.id == body["id"]:
            return e.amendment_id or "baseline"
    return "?"


@app.command("history")
def history(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="NAME@VERSION.")],
    json_out: JsonOpt = False,
) -> None:
    """Every change to a version's profile, with who, when and why."""
    name, version = require_version(ref)
    with registry(ctx) as reg:
        changes = reg.profile_history(model=name, version=version)
    if json_out:
        emit_json(changes)
        return
    table = Table("seq", "time", "actor", "change", "entries", "reason")
    for c in changes:
        kind = {
            "profile.entries_added": "added (draft)",
            "version.published": "baseline sealed",
        }.get(c["type"], c.get("amendment", ""))
        table.add_row(str(c["seq"]), c["time"], c["actor"], kind, ", ".join(c.get("entries", [])),
                      c.get("reason", ""))  # fmt: skip
    console.print(table)


class TrendFormat(StrEnum):
    """Output formats of ``charter profile trend``."""

    table = "table"
    json = "json"
    svg = "svg"
    png = "png"


@app.command("trend")
def trend(
    ctx: typer.Context,
    ref: Annotated[
        str, typer.Argument(help="NAME (every version) or NAME@VERSION (its ancestry).")
    ],
    metric: Annotated[str, typer.Option(help="Evaluation name, e.g. accuracy.")],
    slice_: Annotated[str | None, typer.Option("--slice", help="e.g. thal=fixed.")] = None,
    fmt: Annotated[TrendFormat, typer.Option("--format", help="table, json, svg or png.")] = (
        TrendFormat.table
    ),
    output: Annotated[Path | None, typer.Option("-o", "--output", help="File for svg/png.")] = None,
) -> None:
    """A metric's value for every version along the lineage (table, JSON or chart)."""
    name, version = parse_ref(ref)
    with registry(ctx) as reg:
        points = reg.trend(model=name, metric=metric, slice_=slice_, version=version)
    if fmt is TrendFormat.json:
        emit_json([p.to_dict() for p in points])
        return
    if fmt is TrendFormat.table:
        table = Table("version", metric + (f" [{slice_}]" if slice_ else ""), "entry", "origin")
        for p in points:
            value = "-" if p.value is None else f"{p.value:.4g}"
            table.add_row(p.version, value, p.entry_id or "", p.origin or "")
        console.print(table)
        return
    if output is None:
        raise InvalidInputError(f"--format {fmt.value} writes a file: add -o FILE", field="output")
    from charter.cards.charts import trend_chart

    label = metric + (f" [{slice_}]" if slice_ else "")
    data = [(p.version, p.value) for p in points if p.value is not None]
    output.write_bytes(trend_chart(data, metric=label, fmt=fmt.value))
    console.print(f"wrote {output}")
