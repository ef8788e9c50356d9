"""Charts: valid SVG and PNG, byte-for-byte deterministic, safe with odd labels."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from charter.cards import bias_chart, trend_chart
from charter.domain.errors import InvalidInputError

SVG = "{http://www.w3.org/2000/svg}"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
ENTRY: dict[str, Any] = {
    "metric": "selection_rate",
    "sensitive_feature": "sex",
    "groups": [
        {"group": "female", "value": 0.31, "size": 310},
        {"group": "male", "value": 0.45, "size": 690},
    ],
}
POINTS = [("1.0.0", 0.86), ("1.1.0", 0.89), ("2.0.0", 0.91)]


def _texts(svg: bytes) -> list[str]:
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    return ["".join(t.itertext()) for t in root.iter(f"{SVG}text")]


def test_bias_chart_svg_is_valid_with_groups_and_threshold() -> None:
    svg = bias_chart(ENTRY)
    texts = _texts(svg)
    assert {"female", "male", "selection_rate by sex"} <= set(texts)
    assert any("4/5 of highest (0.36)" in t for t in texts)
    assert b"stroke-dasharray" in svg  # the dashed four-fifths line
    assert b"#c2410c" in svg  # female (0.31 < 0.36) drawn in the alert colour


def test_trend_chart_svg_is_valid() -> None:
    texts = _texts(trend_chart(POINTS, metric="accuracy"))
    assert {"1.0.0", "1.1.0", "2.0.0", "accuracy", "0.91"} <= set(texts)


@pytest.mark.parametrize(
    "draw",
    [lambda fmt: bias_chart(ENTRY, fmt=fmt), lambda fmt: trend_chart(POINTS, metric="m", fmt=fmt)],
    ids=["bias", "trend"],
)
@pytest.mark.parametrize("fmt", ["svg", "png"])
def test_charts_are_deterministic(draw: Any, fmt: str) -> None:
    first = draw(fmt)
    assert first == draw(fmt)
    if fmt == "png":
        assert first.startswith(PNG_MAGIC)


def test_charts_are_deterministic_across_threads() -> None:
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = set(pool.map(lambda _: bias_chart(ENTRY), range(8)))
    assert len(results) == 1


def test_labels_are_plain_text() -> None:
    entry = {**ENTRY, "groups": [{"group": "$x$ <b>&", "value": 0.5, "size": 1}]}
    svg = bias_chart(entry)
    assert "$x$ <b>&" in _texts(svg)  # no mathtext, and escaped in the XML


def test_single_point_and_zero_values() -> None:
    _texts(trend_chart([("1.0.0", 0.0)], metric="m"))
    zeros = {**ENTRY, "groups": [{"group": "a", "value": 0.0, "size": 1}]}
    _texts(bias_chart(zeros))


@pytest.mark.parametrize(
    "call",
    [
        lambda: bias_chart(ENTRY, fmt="gif"),
        lambda: trend_chart(POINTS, metric="m", fmt="pdf"),
        lambda: bias_chart({**ENTRY, "groups": []}),
        lambda: trend_chart([], metric="m"),
    ],
)
def test_bad_requests_are_refused(call: Any) -> None:
    with pytest.raises(InvalidInputError):
        call()
