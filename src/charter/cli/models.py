"""Commands about models and the registry home: init, model create, list, show."""

from __future__ import annotations

from typing import Annotated

import semver
import typer
from rich.table import Table

from charter.cli._common import console, emit_json, registry, settings_from
from charter.domain.entities import Version
from charter.home import init_home
from charter.service import parse_ref
from charter.views import model_view, version_view

__all__ = ["register_commands"]

model_app = typer.Typer(help="Create and inspect model lines.", no_args_is_help=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def init(ctx: typer.Context) -> None:
    """Create a registry home (database, artifact store, ledger signing key)."""
    settings = settings_from(ctx)
    created = init_home(settings)
    state = "initialised" if created else "already initialised"
    console.print(f"registry {state} at [bold]{settings.home.resolve()}[/]")


@model_app.command("create")
def model_create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Lowercase slug, e.g. credit-risk.")],
    risk_tier: Annotated[str, typer.Option("--risk-tier", help="low, medium or high.")] = "low",
    owner: Annotated[str | None, typer.Option(help="Owning team or person.")] = None,
    description: Annotated[str, typer.Option(help="What the model is for.")] = "",
    json_out: JsonOpt = False,
) -> None:
    """Create a model line."""
    with registry(ctx) as reg:
        model = reg.create_model(
            name=name, risk_tier=risk_tier, owner=owner, description=description
        )
    if json_out:
        emit_json(model.state())
    else:
        console.print(f"created model [bold]{model.name}[/] (risk tier {model.risk_tier.value})")


def list_models(ctx: typer.Context, json_out: JsonOpt = False) -> None:
    """List models with their latest version."""
    with registry(ctx) as reg:
        rows = []
        for model in reg.list_models():
            found = reg.list_versions(model=model.name)
            latest = found[-1] if found else None
            rows.append((model, len(found), latest))
    if json_out:
        emit_json(
            [
                {**model_view(m), "versions": n, "latest": version_view(v) if v else None}
                for m, n, v in rows
            ]
        )
        return
    table = Table(title="Models")
    for col in ("model", "risk", "owner", "versions", "latest", "state"):
        table.add_column(col)
    for model, n, latest in rows:
        table.add_row(
            model.name,
            model.risk_tier.value,
            model.owner,
            str(n),
            latest.version if latest else "-",
            latest.state.value if latest else "-",
        )
    console.print(table)


def show(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="NAME or NAME@VERSION.")],
    json_out: JsonOpt = False,
) -> None:
    """Show a model, or one version with its files, fingerprints and lineage facts."""
    name, version = parse_ref(ref)
    with registry(ctx) as reg:
        if version is None:
            model = reg.get_model(name=name)
            found = reg.list_versions(model=name)
            if json_out:
                emit_json({**model_view(model), "versions": [version_view(v) for v in found]})
                return
            console.print(f"[bold]{model.name}[/] — {model.description or '(no description)'}")
            console.print(
                f"risk tier {model.risk_tier.value}, owner {model.owner}, "
                f"created {model.created_at} by {model.created_by}"
            )
            _print_versions(found)
            return
        v = reg.get_version(model=name, version=version)
        files = reg.files(model=name, version=version)
    view = version_view(v, files=files)
    if json_out:
        emit_json(view)
        return
    console.print(f"[bold]{v.ref}[/]  {v.state.value}")
    for key in (
        "parent",
        "change_kind",
        "run_id",
        "commit",
        "created_by",
        "created_at",
        "published_by",
        "published_at",
    ):
        if view.get(key):
            console.print(f"  {key:13} {view[key]}")
    console.print(
        f"  {'manifest':13} {v.manifest_digest} ({v.file_count} files, {v.total_size} bytes)"
    )
    for name_, value in view["fingerprints"].items():
        console.print(f"  {name_:13} {value}")
    for key, value in sorted(v.params.items()):
        console.print(f"  param {key} = {value}")
    for d in v.datasets:
        console.print(f"  dataset {d.role}: {d.name} {d.digest or d.uri}")
    for key, value in sorted(v.tags.items()):
        console.print(f"  tag {key} = {value}")
    table = Table("path", "size", "sha256")
    for f in files:
        table.add_row(f.path, str(f.size), f.digest.removeprefix("sha256:")[:16] + "…")
    console.print(table)


def versions_cmd(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Model name.")],
    json_out: JsonOpt = False,
) -> None:
    """List the versions of a model in semantic-version order."""
    with registry(ctx) as reg:
        found = reg.list_versions(model=name)
    if json_out:
        emit_json([version_view(v) for v in found])
    else:
        _print_versions(found)


def _print_versions(found: list[Version]) -> None:
    table = Table("version", "state", "parent", "change", "files", "created")
    for v in sorted(found, key=lambda x: semver.Version.parse(x.version)):
        table.add_row(
            v.version,
            v.state.value,
            v.parent or "-",
            v.change_kind or "-",
            str(v.file_count),
            v.created_at,
        )
    console.print(table)


def register_commands(app: typer.Typer) -> None:
    """Attach this module's commands to the root app."""
    app.command("init")(init)
    app.add_typer(model_app, name="model")
    app.command("list")(list_models)
    app.command("show")(show)
    app.command("versions")(versions_cmd)
