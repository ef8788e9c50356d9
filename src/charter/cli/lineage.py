"""``charter lineage``: ancestry of a version, or who used a dataset."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer
from rich.tree import Tree

from charter.cli._common import console, emit_json, registry
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
    ref: Annotated[str | None, typer.Argument(help="NAME@VERSION.")] = None,
    fmt: Annotated[
        Format, typer.Option("--format", help="text, json, mermaid or dot.")
    ] = Format.text,
    dataset: Annotated[
        str | None, typer.Option(help="List versions that used this dataset digest instead.")
    ] = None,
) -> None:
    """Show where a version comes from and what descends from it."""
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
