"""Small text helpers shared by the card context and the templates.

Markdown has no autoescape, so every user-supplied string that reaches the
Markdown card goes through :func:`md` (or :func:`md_cell` inside a table):
HTML-significant characters become entities, so a renderer that passes raw
HTML through (most do) never runs a ``<script>`` from a model description.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

__all__ = [
    "digest_prefix",
    "human_size",
    "md",
    "md_cell",
    "number",
    "scalar",
    "summarize",
    "truncate",
]

_MD_SPECIAL = re.compile(r"([\\`*_\[\]|#])")
_HTML_SPECIAL = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}


def md(value: object) -> str:
    """Escape free text for Markdown, keeping line breaks.

    Args:
        value: any value; ``None`` becomes an empty string.

    Returns:
        Text whose Markdown and HTML specials are escaped.
    """
    if value is None:
        return ""
    text = "".join(_HTML_SPECIAL.get(ch, ch) for ch in str(value))
    return _MD_SPECIAL.sub(r"\\\1", text)


def md_cell(value: object) -> str:
    """Escape text for one Markdown table cell (line breaks become spaces).

    Args:
        value: any value; ``None`` becomes an empty string.

    Returns:
        Escaped single-line text; a pipe can no longer end the cell.
    """
    return " ".join(md(value).split())


def number(value: object, unit: str | None = None) -> str:
    """Format a measured value for people: a few significant digits, with its unit.

    Args:
        value: an int or float (anything else is shown as text).
        unit: the profile unit (``ratio``, ``percent``, ``count``, ``seconds``…).

    Returns:
        ``"0.912"``, ``"12.5%"``, ``"1,024"``, ``"35 ms"``…
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "" if value is None else str(value)
    if not math.isfinite(value):
        return str(value)
    if unit in ("count", "tokens") and float(value).is_integer():
        text = f"{int(value):,}"
    elif isinstance(value, int):
        text = f"{value:,}"
    else:
        text = f"{value:.4g}" if abs(value) < 1e6 else f"{value:,.0f}"
    suffix = {"percent": "%", "seconds": " s", "milliseconds": " ms", "tokens": " tokens"}
    return text + suffix.get(unit or "", "")


def human_size(size: int) -> str:
    """Format a byte count: ``"812 B"``, ``"1.5 KiB"``, ``"3.2 GiB"``.

    Args:
        size: bytes (non-negative).

    Returns:
        The size with a binary unit.
    """
    amount = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if amount < 1024 or unit == "TiB":
            return f"{int(amount)} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def digest_prefix(digest: str | None, length: int = 12) -> str:
    """The first hex characters of a ``sha256:<hex>`` digest, for tables.

    Args:
        digest: a digest with or without the ``sha256:`` prefix, or None.
        length: how many hex characters to keep.

    Returns:
        The shortened hex digest, or an empty string.
    """
    if not digest:
        return ""
    return digest.removeprefix("sha256:")[:length]


def truncate(text: object, limit: int = 280) -> str:
    """Shorten text to ``limit`` characters, marking the cut with an ellipsis.

    Args:
        text: the text (converted with ``str``).
        limit: the most characters to keep, ellipsis included.

    Returns:
        The text, shortened when longer than ``limit``.
    """
    value = str(text)
    return value if len(value) <= limit else value[: limit - 1].rstrip() + "…"


def scalar(value: object) -> str:
    """Render any JSON-ish value on one line (used for free-form decision rows).

    Args:
        value: a scalar, list or mapping.

    Returns:
        Plain text for scalars, compact JSON for containers, empty for None.
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        return number(value)
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)


def summarize(body: Mapping[str, Any]) -> str:
    """One line saying what a profile entry measured (for the amendment log).

    Args:
        body: a stored entry body (with ``section``).

    Returns:
        E.g. ``"accuracy [thal=fixed] = 0.7"`` or ``"selection_rate by sex (ratio 0.75)"``.
    """
    section = body.get("section")
    if section == "evaluations":
        where = f" [{body['slice']}]" if body.get("slice") else ""
        return f"{body.get('name')}{where} = {number(body.get('value'), body.get('unit'))}"
    if section == "bias_audits":
        ratio = number(body.get("ratio"))
        return f"{body.get('metric')} by {body.get('sensitive_feature')} (ratio {ratio})"
    if section == "adversarial":
        pack = body.get("pack") or {}
        hits, attempts = body.get("hits"), body.get("attempts")
        return (
            f"{pack.get('name')}@{pack.get('version')} on {body.get('target')}: {hits}/{attempts}"
        )
    if section == "constraints":
        return "guardrails and intended use"
    return str(body.get("id", "entry"))
