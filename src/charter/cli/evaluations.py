"""Evaluations: list plugins, run an evaluator, red-team a version, sweep a stage."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from charter.cli._common import console, emit_json, err_console, registry, require_version
from charter.cli.profiles import read_text
from charter.domain.errors import InvalidInputError
from charter.evaluation.base import ProgressFn
from charter.sweeps import check_max_asr, judge_sweep

__all__ = ["register_commands"]

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
evaluators_app = typer.Typer(help="Installed evaluation plugins.", no_args_is_help=True)
redteam_app = typer.Typer(help="Red-team campaigns.", no_args_is_help=True)


def _mapping(path: Path | None, what: str) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        data = yaml.safe_load(read_text(path, what))
    except yaml.YAMLError as exc:
        raise InvalidInputError(f"{what} {path} is not valid YAML: {exc}", path=str(path)) from None
    if not isinstance(data, dict):
        raise InvalidInputError(f"{what} {path} must be a mapping", path=str(path))
    return data


def _options(pairs: list[str] | None, file: Path | None) -> dict[str, Any]:
    options = _mapping(file, "options file")
    for item in pairs or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InvalidInputError(f"invalid --option {item!r}: use KEY=VALUE", field="option")
        options[key] = yaml.safe_load(value) if value else ""
    return options


@contextmanager
def _progress(label: str) -> Iterator[ProgressFn]:
    if not err_console.is_terminal:
        yield lambda done, total: None
        return
    with Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err_console, transient=True) as bar:  # fmt: skip
        task = bar.add_task(label, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


@evaluators_app.command("list")
def evaluators_list(json_out: JsonOpt = False) -> None:
    """Evaluators, detectors, probe packs and targets installed (built-in and plugins)."""
    from charter.evaluation import plugins

    rows = [("evaluator", name, cls.version, cls.description)
            for name, cls in plugins.evaluators().items()]  # fmt: skip
    for kind, found in (("detector", plugins.detectors()), ("probe pack", plugins.probe_packs()),
                        ("target", plugins.targets())):  # fmt: skip
        for item_name, item in found.items():
            about = str(getattr(item, "description", "") or "")
            rows.append((kind, item_name, str(getattr(item, "version", "")), about))
    if json_out:
        emit_json([{"kind": k, "name": n, "version": v, "description": d} for k, n, v, d in rows])
        return
    table = Table("kind", "name", "version", "description")
    for row in rows:
        table.add_row(*row)
    console.print(table)
    for source, problem in plugins.plugin_problems().items():
        console.print(f"[yellow]plugin {source} failed to load:[/] {problem}", highlight=False)


def evaluate(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="NAME@VERSION.")],
    evaluator: Annotated[str, typer.Option(help="Evaluator name (`charter evaluators list`).")],
    option: Annotated[list[str] | None, typer.Option(help="KEY=VALUE (YAML value).")] = None,
    options: Annotated[Path | None, typer.Option(help="YAML file of options.")] = None,
    reason: Annotated[str | None, typer.Option(help="Amendment reason (published).")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Run one evaluator; results go to the profile (baseline or amendment) with the run."""
    name, version = require_version(ref)
    with registry(ctx) as reg, _progress(evaluator) as progress:
        chosen = _options(option, options)
        run = reg.evaluate(model=name, version=version, evaluator=evaluator, options=chosen,
                           progress=progress, reason=reason)  # fmt: skip
    _print_run(run, json_out)


def _print_run(run: dict[str, Any], json_out: bool) -> None:
    if json_out:
        emit_json(run)
        return
    where = f"amendment {run['amendment']}" if run["amendment"] else "baseline (draft)"
    console.print(f"{run['run_id']}: {run['evaluator']}@{run['evaluator_version']} on "
                  f"{run['ref']} -> {', '.join(run['entries'])} in {where}")  # fmt: skip
    for key, value in run["summary"].items():
        if isinstance(value, int | float | str):
            console.print(f"  {key}: {value}", highlight=False)


@redteam_app.command("run")
def redteam_run(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="NAME@VERSION.")],
    target: Annotated[Path | None, typer.Option(help="Target YAML (default: declared).")] = None,
    pack: Annotated[list[str] | None, typer.Option(help="Probe pack (repeatable).")] = None,
    max_probes: Annotated[int | None, typer.Option(min=1, help="Stratified subset size.")] = None,
    guard: Annotated[
        bool, typer.Option(help="Apply the version's constraints at run time.")
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """Run one red-team campaign against a version's target."""
    name, version = require_version(ref)
    with registry(ctx) as reg, _progress("red-team") as progress:
        declared = _mapping(target, "target file") or None
        run = reg.redteam(model=name, version=version, target=declared, packs=pack,
                          max_probes=max_probes, guard=guard, progress=progress)  # fmt: skip
    _print_run(run, json_out)


@redteam_app.command("sweep")
def redteam_sweep(
    ctx: typer.Context,
    stage: Annotated[str | None, typer.Option(help="Every version in this stage.")] = None,
    model: Annotated[
        str | None, typer.Option(help="Only this model (all published versions).")
    ] = None,
    pack: Annotated[list[str] | None, typer.Option(help="Probe pack (repeatable).")] = None,
    max_probes: Annotated[int | None, typer.Option(min=1, help="Stratified subset size.")] = None,
    max_asr: Annotated[
        float | None, typer.Option(help="Fail above this attack success rate.")
    ] = None,
    guard: Annotated[
        bool | None,
        typer.Option(
            "--guard/--no-guard",
            help="Apply each version's constraints (default: as its last campaign did).",
            show_default=False,
        ),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Re-run campaigns, amend living profiles, exit 1 for every version now over a threshold.

    With --stage, each version is re-judged by that stage's gate on its evidence;
    sign-off the amendment restarts (approvals, a stale model card) is reported,
    not failed.
    """
    check_max_asr(max_asr)
    with registry(ctx) as reg, _progress("sweep") as progress:
        # Campaigns run here, in the CLI's process, against a local or remote registry.
        runs = reg.redteam_sweep(
            stage=stage, model=model, packs=pack, max_probes=max_probes, progress=progress,
            guard=guard,
        )  # fmt: skip
        verdict = judge_sweep(reg, runs=runs, stage=stage, max_asr=max_asr)
    if json_out:
        emit_json({"runs": runs, "failing": verdict.failing, "stale_cards": verdict.stale_cards})
    else:
        _print_sweep(runs, verdict.failing, verdict.stale_cards)
    if verdict.failing:
        raise typer.Exit(1)


def _print_sweep(
    runs: list[dict[str, Any]], failing: list[dict[str, Any]], stale: list[dict[str, Any]]
) -> None:
    for run in runs:
        how = " (guarded)" if run["config"].get("guard") else ""
        console.print(f"{run['ref']}: {run['run_id']}{how} -> amendment {run['amendment']}")
    for s in stale:
        # Information, not failure: the amendment is new evidence; re-rendering the
        # card (and the sign-offs it restarts) is the reviewers' next step.
        formats = ", ".join(s["formats"])
        console.print(f"[yellow]note:[/] {s['ref']} model card ({formats}) is stale after the "
                      f"amendment; re-render it: charter card {s['ref']} --format "
                      f"{s['formats'][0]}", highlight=False)  # fmt: skip
    for f in failing:
        console.print(f"[red]✗ {f['ref']}[/]: " + "; ".join(f["reasons"]), highlight=False)
    if not runs:
        console.print("no version with a declared target to sweep")


def model_target(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Model name.")],
    target: Annotated[Path, typer.Option(help="Target YAML (kind: openai|callable, …).")],
    pack: Annotated[list[str] | None, typer.Option(help="Default probe packs.")] = None,
    system_prompt: Annotated[Path | None, typer.Option(help="System prompt template file.")] = None,
    auto: Annotated[bool, typer.Option(help="Red-team every new version on register.")] = True,
) -> None:
    """Declare a model's red-team target and packs (no secrets: API keys by env var name)."""
    prompt = read_text(system_prompt, "system prompt") if system_prompt else None
    with registry(ctx) as reg:
        reg.set_model_target(model=name, target=_mapping(target, "target file"), packs=pack,
                             auto=auto, system_prompt=prompt)  # fmt: skip
    console.print(f"{name} will be red-teamed against its declared target"
                  + (" on every register" if auto else ""))  # fmt: skip


def register_commands(app: typer.Typer, model_app: typer.Typer) -> None:
    """Attach this module's commands."""
    app.add_typer(evaluators_app, name="evaluators")
    app.command("evaluate")(evaluate)
    app.add_typer(redteam_app, name="redteam")
    model_app.command("target")(model_target)
