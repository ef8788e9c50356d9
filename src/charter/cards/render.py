"""Render model cards: Markdown with Hugging Face front matter, and standalone HTML.

Both formats render the same view model (:func:`charter.cards._context.build_context`)
through Jinja2 templates shipped in ``charter/cards/templates``. The HTML
environment autoescapes everything; the Markdown one escapes user text with
explicit filters (``md``, ``md_cell``), since Markdown has no autoescape.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
import yaml
from markupsafe import Markup, escape

from charter.cards import charts
from charter.cards._context import CardInput, build_context
from charter.cards._format import md, md_cell

__all__ = ["front_matter", "render_html", "render_markdown"]

_TEMPLATES = Path(__file__).parent / "templates"
_SVG_START = re.compile(rb"<svg\b")
_SVG_ID = re.compile(r'\bid="([^"]+)"')
_SVG_REF = re.compile(r'(url\(#|href="#)([^)"]+)')
_SVG_DROP = re.compile(r"\s*<metadata>.*?</metadata>|\s*<style[^>]*>.*?</style>", re.DOTALL)
_SLUG = re.compile(r"[^a-z0-9]+")


@cache
def _environment(html: bool) -> jinja2.Environment:
    options: dict[str, Any] = {
        "loader": jinja2.FileSystemLoader(_TEMPLATES),
        "undefined": jinja2.StrictUndefined,
        "trim_blocks": True,
        "lstrip_blocks": True,
        "keep_trailing_newline": True,
    }
    if html:
        env = jinja2.Environment(autoescape=True, **options)
    else:
        # Markdown is not HTML: its template escapes each user string with md/md_cell.
        env = jinja2.Environment(autoescape=False, **options)  # noqa: S701
    env.filters["md"] = md
    env.filters["md_cell"] = md_cell
    return env


def _slug(text: str) -> str:
    return _SLUG.sub("-", text.lower()).strip("-") or "unspecified"


def front_matter(card: CardInput) -> dict[str, Any]:
    """The YAML metadata Hugging Face reads from a model card.

    ``model-index`` has one result per evaluation entry in force; the task type
    comes from the version tag ``task`` (``other`` without it) and the licence
    only from a ``license`` tag. A ``charter`` key carries the digests the card
    was rendered from, so staleness can be checked from the file alone.

    Args:
        card: the gathered facts.

    Returns:
        A JSON/YAML-ready mapping.
    """
    m, v = card.model, card.version
    data: dict[str, Any] = {"model_name": m.name}
    tags = ["charter", f"risk-tier-{m.risk_tier.value}"]
    if v.tags.get("task"):
        tags.append(v.tags["task"])
    data["tags"] = tags
    if v.tags.get("license"):
        data["license"] = v.tags["license"]
    trained_on = [d.name for d in v.datasets if d.role == "train"]
    if trained_on:
        data["datasets"] = trained_on
    results = []
    for entry in card.profile.entries:
        if entry.section != "evaluations":
            continue
        body = entry.body
        dataset = (body.get("dataset") or {}).get("name") or "unspecified"
        label = f"{body['name']} ({body['slice']})" if body.get("slice") else body["name"]
        results.append(
            {
                "task": {"type": v.tags.get("task") or "other"},
                "dataset": {"name": dataset, "type": _slug(dataset)},
                "metrics": [{"type": body["name"], "value": body["value"], "name": label}],
            }
        )
    if results:
        # Hugging Face refuses an empty model-index, so it is left out instead.
        data["model-index"] = [{"name": m.name, "results": results}]
    data["charter"] = {
        "ref": v.ref,
        "state": v.state.value,
        "profile_digest": card.profile.digest,
        "baseline_digest": card.profile.baseline_digest or v.baseline_digest,
        "rendered_at": card.rendered_at,
    }
    return data


def render_markdown(card: CardInput) -> str:
    """Render a Markdown model card with YAML front matter.

    Args:
        card: the gathered facts.

    Returns:
        The card text, ``---``-delimited front matter first.
    """
    meta = yaml.safe_dump(front_matter(card), sort_keys=False, allow_unicode=True, width=1000)
    body = _environment(False).get_template("card.md.j2").render(**build_context(card))
    return f"---\n{meta}---\n\n{body}"


def _inline_svg(svg: bytes, prefix: str, label: str) -> Markup:
    """Make a standalone matplotlib SVG fit to inline in the page.

    The prolog, RDF metadata and the page-wide ``*{...}`` style go (the page CSS
    carries that rule, scoped); matplotlib names elements ``figure_1``,
    ``axes_1``… in every chart, so each chart's ids get their own prefix.
    """
    start = _SVG_START.search(svg)
    text = svg[start.start() if start else 0 :].decode("utf-8")
    text = _SVG_DROP.sub("", text)
    text = _SVG_ID.sub(lambda m: f'id="{prefix}{m.group(1)}"', text)
    text = _SVG_REF.sub(lambda m: f"{m.group(1)}{prefix}{m.group(2)}", text)
    text = text.replace("<svg ", f'<svg role="img" aria-label="{escape(label)}" ', 1)
    # matplotlib escapes every text node it writes; the label is escaped above.
    return Markup(text)  # noqa: S704


def render_html(card: CardInput, *, with_charts: bool = True) -> str:
    """Render a standalone HTML model card with inline CSS and SVG charts.

    Charts need matplotlib; without it (or with ``with_charts=False``) the page
    says so where the charts would be, and everything else is unchanged.

    Args:
        card: the gathered facts.
        with_charts: draw bias and trend charts when matplotlib is available.

    Returns:
        The HTML document.
    """
    context = build_context(card)
    if with_charts and charts.available():
        n = 0
        for audit in context["bias"]:
            n += 1
            label = f"{audit['metric']} by {audit['feature']} per group"
            audit["chart"] = _inline_svg(charts.bias_chart(audit["entry"]), f"c{n}-", label)
        for item in context["trend"]:
            points = [(str(v), float(x)) for v, x in card.trend[item["metric"]]]
            if len(points) < 2:  # one version is not a trend; the caption says it all
                continue
            n += 1
            svg = charts.trend_chart(points, metric=item["metric"])
            item["chart"] = _inline_svg(svg, f"c{n}-", f"{item['metric']} across versions")
    elif context["bias"] or context["trend"]:
        context["charts_note"] = (
            "Charts are not shown: install matplotlib (pip install 'charter-registry[charts]')."
            if with_charts
            else "Charts are turned off for this card."
        )
    return _environment(True).get_template("card.html.j2").render(**context)
