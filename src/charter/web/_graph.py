"""Lineage graphs drawn by Graphviz: DOT in, SVG with clickable nodes out.

Layout is Graphviz's (``dot``, the layered layout made for exactly this kind
of directed acyclic graph), run as a program: nothing here places a node.
Each version node carries a ``URL`` so the SVG's nodes link to version pages;
dataset nodes show which versions share training or evaluation data.

Every string that reaches DOT is escaped (:func:`_quote`); Graphviz in turn
escapes text and attributes when it writes SVG, and the page's CSP forbids
inline script, so a hostile dataset name can neither break the graph nor run.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup

from charter.domain.entities import Version
from charter.web._render import urls

__all__ = ["Graph", "GraphUnavailableError", "lineage_dot", "render_svg"]

MAX_VERSIONS = 300
_TIMEOUT_S = 15.0
_CACHE_SIZE = 64
_CACHE: OrderedDict[str, str] = OrderedDict()
_LOCK = threading.Lock()
_PROLOG = re.compile(r"^.*?(?=<svg\b)", re.DOTALL)
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_STATE_FILL = {"published": "#e8f0fe", "draft": "#f4f5f7"}
_FOCUS_FILL = "#fff4d6"


class GraphUnavailableError(RuntimeError):
    """Graphviz's ``dot`` is not installed (Debian/Ubuntu: ``apt-get install -y graphviz``)."""


@dataclass(frozen=True)
class Graph:
    """A lineage graph: the SVG and what was left out."""

    svg: Markup
    shown: int
    total: int


def _quote(text: str) -> str:
    """A DOT double-quoted string; backslashes too, since DOT reads ``\\N``, ``\\G``…"""
    cleaned = "".join(" " if ord(c) < 32 else c for c in text)
    return '"' + cleaned.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _label(*lines: str) -> str:
    # Each line is escaped first; "\n" between them is DOT's own line break.
    return '"' + "\\n".join(_quote(line)[1:-1] for line in lines if line) + '"'


def _node_id(prefix: str, key: str) -> str:
    return _quote(f"{prefix}:{key}")


def lineage_dot(
    model: str,
    versions: Sequence[Version],
    *,
    stages: dict[str, str],
    at_risk: set[str],
    focus: str | None = None,
) -> str:
    """The DOT source of a model's lineage: versions, parent edges, datasets.

    Args:
        model: the model name.
        versions: the versions to draw (oldest first).
        stages: ``{stage: version}`` pointers, written on the nodes that hold them.
        at_risk: versions flagged at risk by monitoring.
        focus: a version to highlight.
    """
    held: dict[str, list[str]] = {}
    for stage, number in sorted(stages.items()):
        held.setdefault(number, []).append(stage)
    shown = {v.version for v in versions}
    lines = [
        "digraph lineage {",
        '  graph [rankdir=LR, bgcolor="transparent", nodesep=0.25, ranksep=0.55, '
        'fontname="Helvetica,Arial,sans-serif"];',
        '  node [shape=box, style="rounded,filled", fontname="Helvetica,Arial,sans-serif", '
        'fontsize=11, color="#52606d", penwidth=1.2, margin="0.14,0.06"];',
        '  edge [color="#7b8794", fontname="Helvetica,Arial,sans-serif", fontsize=9, '
        'fontcolor="#52606d", arrowsize=0.7];',
    ]
    datasets: dict[str, tuple[str, str]] = {}
    data_edges: list[str] = []
    for v in versions:
        extra = [f"[{', '.join(held[v.version])}]"] if v.version in held else []
        if v.version in at_risk:
            extra.append("AT RISK")
        fill = _FOCUS_FILL if v.version == focus else _STATE_FILL.get(v.state.value, "#ffffff")
        border = "#c2410c" if v.version in at_risk else ("#1f2933" if extra else "#52606d")
        attrs = {
            "label": _label(v.version, v.state.value, *extra),
            "URL": _quote(urls.version(model, v.version)),
            "tooltip": _quote(f"{v.ref} ({v.change_kind or 'root'}) by {v.created_by}"),
            "target": '"_top"',
            "id": _quote(f"node-{v.version}"),
            "fillcolor": _quote(fill),
            "color": _quote(border),
            "penwidth": "2.2" if extra or v.version == focus else "1.2",
        }
        body = ", ".join(f"{k}={val}" for k, val in attrs.items())
        lines.append(f"  {_node_id('v', v.version)} [{body}];")
        if v.parent and v.parent in shown:
            kind = _quote(v.change_kind or "")
            lines.append(
                f"  {_node_id('v', v.parent)} -> {_node_id('v', v.version)} [label={kind}];"
            )
        for d in v.datasets:
            key = d.digest or d.uri
            datasets.setdefault(key, (d.name, (d.digest or "")[:19]))
            data_edges.append(
                f"  {_node_id('d', key)} -> {_node_id('v', v.version)} "
                f'[style=dashed, color="#9aa5b1", label={_quote(d.role)}];'
            )
    for key, (name, digest) in datasets.items():
        lines.append(
            f'  {_node_id("d", key)} [shape=cylinder, style=filled, fillcolor="#f0fdf4", '
            f'color="#3f7f5a", fontsize=9, label={_label(name, digest)}, '
            f"tooltip={_quote(f'dataset {name} {key}')}];"
        )
    lines.extend(data_edges)
    lines.append("}")
    return "\n".join(lines) + "\n"


def render_svg(dot: str) -> Markup:
    """Lay out ``dot`` with Graphviz and return inline-ready SVG (cached by source).

    Raises:
        GraphUnavailableError: ``dot`` is not installed.
        RuntimeError: Graphviz failed or took too long.
    """
    key = hashlib.sha256(dot.encode()).hexdigest()
    with _LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return Markup(_CACHE[key])  # noqa: S704 - Graphviz output, escaped by Graphviz
    program = shutil.which("dot")
    if program is None:
        raise GraphUnavailableError(
            "lineage graphs need Graphviz: apt-get install -y graphviz (make services does it)"
        )
    done = subprocess.run(
        [program, "-Tsvg"], input=dot.encode(), capture_output=True, timeout=_TIMEOUT_S, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"graphviz failed: {done.stderr.decode(errors='replace')[:500]}")
    svg = _COMMENT.sub("", _PROLOG.sub("", done.stdout.decode("utf-8"), count=1))
    svg = svg.replace("<svg ", '<svg role="img" aria-label="lineage graph" ', 1)
    with _LOCK:
        _CACHE[key] = svg
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return Markup(svg)  # noqa: S704 - Graphviz output, escaped by Graphviz
