"""``charter lineage``: ancestry of a version, or who used a dataset."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer
from rich.tree import Tree

from charter.cli._common import console, emit_json, registry
from charter.cli.versions import print_diff
from charter.domain.entities import Version
from charter.domain.errors import InvalidInputError
from charter.domain.lineage import Lineage
from charter.service import parse_ref
from charter.views import version_view

__all__ = ["register_commands", "to_dot", "to_mermaid"]


class Format(StrEnum):
    """Output formats of ``charter lineage``."""

    text = "text"
    json = "json"
    mermaid = "mermaid"
    dot = "dot"


def _nodes(lin: Lineage) -> list[Version]:
    return [*reversed(lin.ancestors), lin.version, *lin.descendants]


def _label(v: Version) -> str:
    return f"{v.ref}\\n{v.state.value}" + (f" ({v.change_kind})" if v.change_kind else "")


def to_mermaid(lin: Lineage) -> str:
    """Render a lineage as a Mermaid flowchart (parents above children)."""
    ids = {v.ref: f"v{i}" for i, v in enumerate(_nodes(lin))}
    lines = ["flowchart TD"]
    for v in _nodes(lin):
        lines.append(f'  {ids[v.ref]}["{_label(v).replace(chr(92) + "n", "<br/>")}"]')
        for d in v.datasets:
            key = f"d{abs(hash((v.ref, d.uri))) % 10**8}"
            lines.append(f'  {key}[("{d.role}: {d.name}")] -.-> {ids[v.ref]}')
    for v in _nodes(lin):
        parent = f"{v.model}@{v.parent}"
        if v.parent and parent in ids:
            lines.append(f"  {ids[parent]} --> {ids[v.ref]}")
    lines.append(f"  style {ids[lin.version.ref]} stroke-width:3px")
    return "\n".join(lines)


def to_dot(lin: Lineage) -> str:
    """Render a lineage as a Graphviz digraph."""
    lines = ["digraph lineage {", "  rankdir=TB;", "  node [shape=box];"]
    for v in _nodes(lin):
        width = ", penwidth=3" if v.ref == lin.version.ref else ""
        lines.append(f'  "{v.ref}" [label="{_label(v)}"{width}];')
        for d in v.datasets:
            lines.append(f'  "{d.uri}" [shape=cylinder, label="{d.role}: {d.name}"];')
            lines.append(f'  "{d.uri}" -> "{v.ref}" [style=dashed];')
    for v in _nodes(lin):
        if v.parent:
            lines.append(f'  "{v.model}@{v.parent}" -> "{v.ref}";')
    lines.append("}")
    return "\n".join(lines)


def lineage(
    ctx: typer.Context,
    ref: Annotated[str | None, typer.Argument(help="NAME@VERSION, or `blame`.")] = None,
    blame_ref: Annotated[
        str | None, typer.Argument(help="NAME@VERSION after `blame`.", show_default=False)
    ] = None,
    fmt: Annotated[
        Format, typer.Option("--format", help="text, json, mermaid or dot.")
    ] = Format.text,
    dataset: Annotated[
        str | None, typer.Option(help="List versions that used this dataset digest instead.")
    ] = None,
    metric: Annotated[str | None, typer.Option(help="blame: the evaluation to follow.")] = None,
    slice_: Annotated[str | None, typer.Option("--slice", help="blame: e.g. thal=fixed.")] = None,
    tolerance: Annotated[float, typer.Option(help="blame: allowed worsening per step.")] = 0.0,
) -> None:
    """Show where a version comes from and what descends from it.

    `charter lineage blame NAME@VERSION --metric M [--slice S] [--tolerance T]` walks the
    ancestry and names the first version where M regressed, with the diff of that step.
    """
    if ref == "blame":
        if blame_ref is None or metric is None:
            raise InvalidInputError(
                "usage: charter lineage blame NAME@VERSION --metric M [--slice S]", field="ref"
            )
        _blame(ctx, blame_ref, metric=metric, slice_=slice_, tolerance=tolerance, fmt=fmt)
        return
    if blame_ref is not None:
        raise InvalidInputError(f"unexpected argument {blame_ref!r}", field="ref")
    if (ref is None) == (dataset is None):
        raise InvalidInputError("give either NAME@VERSION or --dataset DIGEST", field="ref")
    with registry(ctx) as reg:
        if dataset is not None:
            users = reg.versions_using_dataset(digest=dataset)
            if fmt is Format.json:
                emit_json([version_view(v) for v in users])
            else:
                for v in users:
                    console.print(v.ref)
            return
        assert ref is not None
        name, version = parse_ref(ref)
        if version is None:
            raise InvalidInputError(f"{ref!r} names no version: use NAME@VERSION", value=ref)
        lin = reg.lineage(model=name, version=version)
    if fmt is Format.json:
        emit_json(lin.to_dict())
    elif fmt is Format.mermaid:
        console.print(to_mermaid(lin), highlight=False, markup=False)
    elif fmt is Format.dot:
        console.print(to_dot(lin), highlight=False, markup=False)
    else:
        console.print(_text_tree(lin))


def _blame(
    ctx: typer.Context, ref: str, *, metric: str, slice_: str | None, tolerance: float, fmt: Format
) -> None:
    name, version = parse_ref(ref)
    if version is None:
        raise InvalidInputError(f"{ref!r} names no version: use NAME@VERSION", value=ref)
    with registry(ctx) as reg:
        found = reg.blame(
            model=name, version=version, metric=metric, slice_=slice_, tolerance=tolerance
        )
    if fmt is Format.json:
        emit_json(found.to_dict())
        return
    label = metric + (f" [{slice_}]" if slice_ else "")
    trail = "  ".join(
        f"{p.version}: {'-' if p.value is None else f'{p.value:.4g}'}" for p in found.points
    )
    console.print(f"{label} along the lineage of {ref}: {trail}", highlight=False)
    reg_ = found.regression
    if reg_ is None:
        console.print(f"[green]no step worsened {label} by more than {tolerance}[/]")
        return
    console.print(
        f"[bold red]{name}@{reg_.culprit.version}[/] first regressed {label}: "
        f"{reg_.previous.value:.4g} -> {reg_.culprit.value:.4g} (from {reg_.previous.version}; "
        f"evidence {reg_.previous.entry_id}, {reg_.culprit.entry_id})",
        highlight=False,
    )
    if found.diff is not None:
        print_diff(found.diff)


def _text_tree(lin: Lineage) -> Tree:
    chain = [*reversed(lin.ancestors), lin.version]
    root = Tree(_describe(chain[0], chain[0] is lin.version))
    node = root
    for v in chain[1:]:
        node = node.add(_describe(v, v is lin.version))
    by_parent: dict[str, list[Version]] = {}
    for v in lin.descendants:
        by_parent.setdefault(f"{v.model}@{v.parent}", []).append(v)

    def grow(branch: Tree, ref: str) -> None:
        for child in by_parent.get(ref, []):
            grow(branch.add(_describe(child, False)), child.ref)

    grow(node, lin.version.ref)
    return root


def _describe(v: Version, current: bool) -> str:
    mark = "[bold]" if current else ""
    end = "[/]" if current else ""
    change = f" {v.change_kind}" if v.change_kind else ""
    data = ", ".join(f"{d.role}:{d.name}" for d in v.datasets)
    extra = f"  data: {data}" if data else ""
    return f"{mark}{v.ref}{end} ({v.state.value}{change}){extra}"


def register_commands(app: typer.Typer) -> None:
    """Attach this module's commands to the root app."""
    app.command("lineage")(lineage)
