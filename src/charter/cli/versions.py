"""Commands about versions: register, publish, delete, tag, diff, download, verify."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from charter.cli._common import (
    console,
    emit_json,
    progress_bar,
    registry,
    require_version,
    tree_size,
)
from charter.cli.profiles import read_document, read_metrics
from charter.domain.errors import InvalidInputError
from charter.domain.lineage import VersionDiff
from charter.domain.profile import ProfileDocument
from charter.views import version_view

__all__ = ["register_commands"]

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def _pairs(values: list[str] | None, *, option: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InvalidInputError(
                f"invalid {option} {item!r}: use KEY=VALUE", field=option, value=item
            )
        out[key.strip()] = value
    return out


def register(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Model name.")],
    path: Annotated[Path, typer.Argument(help="A file or folder with the version's artifacts.")],
    version: Annotated[str, typer.Option("--version", help="Semantic version, e.g. 1.2.0.")],
    parent: Annotated[str | None, typer.Option(help="Parent version of the same model.")] = None,
    change: Annotated[
        str | None, typer.Option(help="Declared change: major, minor or patch.")
    ] = None,
    dataset: Annotated[
        list[str] | None, typer.Option(help="ROLE=PATH_OR_URI (repeatable).")
    ] = None,
    param: Annotated[
        list[str] | None, typer.Option(help="Training parameter k=v (repeatable).")
    ] = None,
    run: Annotated[str | None, typer.Option("--run", help="Training run id.")] = None,
    commit: Annotated[str | None, typer.Option(help="Code commit.")] = None,
    tag: Annotated[list[str] | None, typer.Option(help="Tag k=v (repeatable).")] = None,
    architecture: Annotated[
        str | None, typer.Option(help="Declared architecture id, when Charter cannot read one.")
    ] = None,
    force: Annotated[
        bool, typer.Option(help="Accept a bump smaller than the change (recorded).")
    ] = False,
    reason: Annotated[str | None, typer.Option(help="Why --force is justified.")] = None,
    profile: Annotated[Path | None, typer.Option(help="YAML/JSON safety-profile document.")] = None,
    metrics: Annotated[Path | None, typer.Option(help="Flat {name: value} metrics file.")] = None,
    evaluate: Annotated[
        bool, typer.Option(help="Red-team the draft if the model declares a target.")
    ] = True,
    json_out: JsonOpt = False,
) -> None:
    """Register a draft version of a model from a file or folder."""
    document = _merge(
        read_document(profile) if profile else None, read_metrics(metrics) if metrics else None
    )
    datasets = [(role, target) for role, target in _pairs(dataset, option="--dataset").items()]
    with registry(ctx) as reg, progress_bar("storing", tree_size(path)) as progress:
        v = reg.register(
            model=name,
            path=path,
            version=version,
            parent=parent,
            change=change,
            datasets=datasets,
            params=_pairs(param, option="--param"),
            run_id=run,
            commit=commit,
            tags=_pairs(tag, option="--tag"),
            architecture=architecture,
            force=force,
            reason=reason,
            profile=document,
            evaluate=evaluate,
            progress=progress,
        )
    if json_out:
        emit_json(version_view(v))
    else:
        console.print(
            f"registered [bold]{v.ref}[/] (draft, {v.file_count} files, {v.total_size} bytes"
            + (f", {v.change_kind} change from {v.parent}" if v.parent else "")
            + ")"
        )


def _merge(a: ProfileDocument | None, b: ProfileDocument | None) -> ProfileDocument | None:
    if a is None or b is None:
        return a or b
    return a.model_copy(update={"evaluations": [*a.evaluations, *b.evaluations]})


def publish(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="NAME@VERSION.")],
    json_out: JsonOpt = False,
) -> None:
    """Publish a draft: its metadata and files are frozen from then on."""
    name, version = require_version(ref)
    with registry(ctx) as reg:
        v = reg.publish(model=name, version=version)
    if json_out:
        emit_json(version_view(v))
    else:
        console.print(f"published [bold]{v.ref}[/]: metadata, files and manifest are now frozen")


def delete(
    ctx: typer.Context, ref: Annotated[str, typer.Argument(help="NAME@VERSION of a draft.")]
) -> None:
    """Delete a draft version (published versions are permanent)."""
    name, version = require_version(ref)
    with registry(ctx) as reg:
        reg.delete_draft(model=name, version=version)
    console.print(f"deleted draft {name}@{version}")


def tag(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="NAME@VERSION.")],
    pairs: Annotated[list[str] | None, typer.Argument(help="k=v tags to set.")] = None,
    remove: Annotated[
        list[str] | None, typer.Option("--remove", help="Tag key to remove (repeatable).")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Set or remove tags of a version (tags stay mutable; every change is in the ledger)."""
    name, version = require_version(ref)
    changes: dict[str, str | None] = {**_pairs(pairs, option="tag"), **dict.fromkeys(remove or [])}
    if not changes:
        raise InvalidInputError("give at least one k=v tag or --remove KEY", field="tag")
    with registry(ctx) as reg:
        v = reg.set_tags(model=name, version=version, tags=changes)
    if json_out:
        emit_json(v.tags)
    else:
        console.print(
            f"tags of {v.ref}: "
            + (", ".join(f"{k}={val}" for k, val in sorted(v.tags.items())) or "(none)")
        )


def diff(
    ctx: typer.Context,
    a: Annotated[str, typer.Argument(help="NAME@A.")],
    b: Annotated[str, typer.Argument(help="NAME@B (or OTHER@B).")],
    json_out: JsonOpt = False,
) -> None:
    """Compare two versions: fingerprints, params, datasets, files."""
    name_a, va = require_version(a)
    name_b, vb = require_version(b)
    with registry(ctx) as reg:
        result = reg.diff(model=name_a, a=va, b=vb, model_b=name_b)
    if json_out:
        emit_json(result.to_dict())
        return
    print_diff(result)


def print_diff(diff: VersionDiff) -> None:
    """Render a version diff as a table."""
    if diff.identical:
        console.print(f"{diff.a} and {diff.b} do not differ")
        return
    table = Table("what", "name", diff.a, diff.b, title=f"{diff.a} → {diff.b}")
    for label, changes in (
        ("fingerprint", diff.fingerprints),
        ("param", diff.params),
        ("other", diff.other),
    ):
        for c in changes:
            table.add_row(label, c.name, str(c.before), str(c.after))
    for d in diff.datasets_removed:
        table.add_row("dataset", f"{d.role}:{d.name}", d.digest or d.uri, "-")
    for d in diff.datasets_added:
        table.add_row("dataset", f"{d.role}:{d.name}", "-", d.digest or d.uri)
    for label, paths in (
        ("file added", diff.files_added),
        ("file removed", diff.files_removed),
        ("file changed", diff.files_changed),
    ):
        for p in paths:
            table.add_row(label, p, "", "")
    console.print(table)


def download(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="NAME@VERSION.")],
    dest: Annotated[Path, typer.Argument(help="Folder to write the files into.")],
) -> None:
    """Download a version's files, verifying every byte against its digest."""
    name, version = require_version(ref)
    with registry(ctx) as reg:
        total = reg.get_version(model=name, version=version).total_size
        with progress_bar("downloading", total) as progress:
            written = reg.download(model=name, version=version, dest=dest, progress=progress)
    console.print(f"wrote {len(written)} verified files to {dest}")


def verify(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="NAME@VERSION.")],
    json_out: JsonOpt = False,
) -> None:
    """Re-hash a version's stored files against its manifest (exit 1 on any mismatch)."""
    name, version = require_version(ref)
    with registry(ctx) as reg:
        report = reg.verify_version(model=name, version=version)
    if json_out:
        emit_json(report.to_dict())
    else:
        for p in report.problems:
            console.print(f"[red]✗[/] {p.where}: {p.message}", highlight=False)
        if report.ok:
            console.print(f"[green]✓[/] {name}@{version}: {report.blobs} blobs verified")
    if not report.ok:
        raise typer.Exit(1)


def register_commands(app: typer.Typer) -> None:
    """Attach this module's commands to the root app."""
    app.command("register")(register)
    app.command("publish")(publish)
    app.command("delete")(delete)
    app.command("tag")(tag)
    app.command("diff")(diff)
    app.command("download")(download)
    app.command("verify")(verify)
