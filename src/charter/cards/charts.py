"""Charts for model cards: bias audits per group and metric trends across versions.

matplotlib is an optional extra (``charter-registry[charts]``): without it,
:func:`available` is False, the chart functions raise
:class:`ChartsUnavailableError`, and HTML cards render with a note instead.
It is imported on first use, so importing this module stays cheap.

Figures are built with :class:`matplotlib.figure.Figure` directly, never
through pyplot, so no global figure registry or interactive backend is
involved. SVG output is deterministic: the same input gives the same bytes
(fixed ``svg.hashsalt`` for element ids, no ``Date`` metadata). Those two
settings are matplotlib rcParams, which are process-global, so rendering is
serialised by a lock.

Example:
    >>> svg = trend_chart([("1.0.0", 0.81), ("1.1.0", 0.84)], metric="accuracy")
    >>> svg.startswith(b"<?xml")
    True
"""

from __future__ import annotations

import importlib.util
import io
import threading
from collections.abc import Mapping, Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any, ClassVar

from charter.domain.errors import CharterError, InvalidInputError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["FORMATS", "ChartsUnavailableError", "available", "bias_chart", "trend_chart"]

FORMATS = ("svg", "png")
FOUR_FIFTHS = 0.8
_LOCK = threading.Lock()
_RC = {
    "svg.hashsalt": "charter-card",
    # Text stays <text> (searchable, styled by the page) instead of glyph paths.
    "svg.fonttype": "none",
    # Group names are user input: "$" must not switch on mathtext.
    "text.parse_math": False,
    "font.size": 9.0,
    "axes.spines.top": False,
    "axes.spines.right": False,
}
_INK, _MUTED, _ACCENT, _ALERT = "#1f2933", "#7b8794", "#2f6fdf", "#c2410c"
_DPI = 110


class ChartsUnavailableError(CharterError):
    """Charts were asked for but matplotlib (the ``charts`` extra) is not installed."""

    code: ClassVar[str] = "charts_unavailable"
    exit_code: ClassVar[int] = 2


def available() -> bool:
    """Whether matplotlib (the ``charts`` extra) can be imported.

    Returns:
        True when charts can be drawn.
    """
    try:
        return importlib.util.find_spec("matplotlib") is not None
    except ValueError:  # a stub module without a spec in sys.modules
        return False


def _matplotlib(fmt: str) -> tuple[ModuleType, type[Figure]]:
    """Check the format and import matplotlib (on first use only)."""
    if fmt not in FORMATS:
        raise InvalidInputError(
            f"unknown chart format {fmt!r}: use svg or png", field="fmt", value=fmt, valid=FORMATS
        )
    try:
        import matplotlib
        from matplotlib.figure import Figure
    except ImportError:
        raise ChartsUnavailableError(
            "charts need matplotlib: pip install 'charter-registry[charts]'", extra="charts"
        ) from None
    return matplotlib, Figure


def _save(fig: Figure, fmt: str) -> bytes:
    buffer = io.BytesIO()
    # Date/Software metadata would make identical charts differ byte for byte.
    metadata: dict[str, Any] = {"Date": None} if fmt == "svg" else {"Software": None}
    fig.savefig(buffer, format=fmt, metadata=metadata, dpi=_DPI, bbox_inches="tight")
    return buffer.getvalue()


def bias_chart(entry: Mapping[str, Any], *, fmt: str = "svg") -> bytes:
    """Bar chart of a bias audit's metric per group, with the four-fifths line.

    The dashed line sits at 0.8 x the highest group's value (29 CFR 1607.4(D));
    bars below it are drawn in the alert colour.

    Args:
        entry: a bias-audit entry body (``metric``, ``sensitive_feature``, ``groups``
            of ``{group, value, size}``).
        fmt: ``"svg"`` or ``"png"``.

    Returns:
        The encoded image.

    Raises:
        ChartsUnavailableError: matplotlib is not installed.
        InvalidInputError: unknown ``fmt``, or an entry without groups.
    """
    mpl, figure = _matplotlib(fmt)
    groups = list(entry.get("groups") or [])
    if not groups:
        raise InvalidInputError("a bias audit needs at least one group to chart", field="groups")
    names = [str(g["group"]) for g in groups]
    values = [float(g["value"]) for g in groups]
    threshold = FOUR_FIFTHS * max(values) if max(values) > 0 else 0.0
    colors = [_ALERT if v < threshold else _ACCENT for v in values]
    metric, feature = entry.get("metric", "value"), entry.get("sensitive_feature", "group")
    with _LOCK, mpl.rc_context(_RC):
        fig = figure(figsize=(min(2.2 + 0.55 * len(names), 11.0), 3.0), layout="constrained")
        ax = fig.add_subplot()
        bars = ax.bar(range(len(names)), values, color=colors, width=0.6)
        ax.bar_label(bars, labels=[f"{v:.3g}" for v in values], padding=2, color=_INK)
        ax.axhline(threshold, color=_INK, linestyle="--", linewidth=1,
                   label=f"4/5 of highest ({threshold:.3g})")  # fmt: skip
        rotate = len(names) > 6 or max(len(n) for n in names) > 12
        ax.set_xticks(range(len(names)), names, rotation=30 if rotate else 0,
                      ha="right" if rotate else "center")  # fmt: skip
        ax.set_ylim(0, max(values) * 1.18 if max(values) > 0 else 1.0)
        ax.set_ylabel(str(metric))
        ax.set_title(f"{metric} by {feature}", loc="left", color=_INK)
        # A legend below the axes: a second title collides with the first on narrow
        # charts, and a label on the line collides with the bars.
        fig.legend(loc="outside lower right", frameon=False, fontsize=8, labelcolor=_MUTED)
        return _save(fig, fmt)


def trend_chart(points: Sequence[tuple[str, float]], *, metric: str, fmt: str = "svg") -> bytes:
    """Line chart of one metric across versions (oldest first).

    Args:
        points: ``(version, value)`` pairs in lineage order.
        metric: the metric's name, used as title and axis label.
        fmt: ``"svg"`` or ``"png"``.

    Returns:
        The encoded image.

    Raises:
        ChartsUnavailableError: matplotlib is not installed.
        InvalidInputError: unknown ``fmt``, or no points.
    """
    mpl, figure = _matplotlib(fmt)
    if not points:
        raise InvalidInputError(f"no values of {metric} to chart", field="points")
    labels = [str(v) for v, _ in points]
    values = [float(x) for _, x in points]
    with _LOCK, mpl.rc_context(_RC):
        fig = figure(figsize=(min(2.6 + 0.7 * len(labels), 9.0), 2.6), layout="constrained")
        ax = fig.add_subplot()
        xs = range(len(labels))
        ax.plot(xs, values, color=_ACCENT, marker="o", linewidth=1.6)
        ax.plot([xs[-1]], [values[-1]], marker="o", markersize=9, color=_ACCENT, alpha=0.35)
        for x, v in zip(xs, values, strict=True):
            ax.annotate(f"{v:.3g}", (x, v), xytext=(0, 6), textcoords="offset points",
                        ha="center", color=_INK)  # fmt: skip
        ax.set_xticks(list(xs), labels, rotation=30 if len(labels) > 6 else 0)
        low, high = min(values), max(values)
        pad = (high - low) * 0.25 or abs(high) * 0.1 or 0.1
        ax.set_ylim(low - pad, high + pad)
        ax.set_ylabel(metric)
        ax.set_xlabel("version")
        ax.set_title(metric, loc="left", color=_INK)
        ax.grid(axis="y", color="#e4e7eb", linewidth=0.8)
        ax.set_axisbelow(True)
        return _save(fig, fmt)
