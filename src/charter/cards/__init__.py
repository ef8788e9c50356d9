"""Model cards: a version's metadata and effective profile as Markdown or HTML.

Rendering is pure: the caller gathers the facts into a :class:`CardInput`
(model, version, files, lineage, current and baseline profile, optional
metric trend, gate decisions and approvals) and gets text back. The Markdown
card carries Hugging Face front matter (``model-index``); the HTML card is a
standalone page with inline CSS and, when matplotlib is installed, inline SVG
charts.

Example:
    >>> from charter.cards import CardInput, render_markdown  # doctest: +SKIP
    >>> text = render_markdown(CardInput(model=m, version=v, files=files,  # doctest: +SKIP
    ...     lineage=lineage, profile=profile, baseline=baseline,
    ...     rendered_at="2026-03-03T12:00:00.000000Z"))
"""

from __future__ import annotations

from charter.cards._context import FOUR_FIFTHS, CardInput
from charter.cards.charts import ChartsUnavailableError, bias_chart, trend_chart
from charter.cards.charts import available as charts_available
from charter.cards.render import front_matter, render_html, render_markdown

__all__ = [
    "FOUR_FIFTHS",
    "CardInput",
    "ChartsUnavailableError",
    "bias_chart",
    "charts_available",
    "front_matter",
    "render_html",
    "render_markdown",
    "trend_chart",
]
