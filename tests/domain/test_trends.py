from __future__ import annotations

import pytest

from charter.domain.errors import InvalidInputError
from charter.domain.trends import TrendPoint, find_regression


def _points(values: list[float | None], direction: str = "higher_is_better") -> list[TrendPoint]:
    return [
        TrendPoint(f"1.{i}.0", v, f"eval-{i}" if v is not None else None, "baseline", direction)
        for i, v in enumerate(values)
    ]


def test_first_drop_beyond_tolerance_is_blamed() -> None:
    found = find_regression(_points([0.80, 0.82, 0.81, 0.70]), tolerance=0.02)
    assert found is not None
    assert (found.previous.version, found.culprit.version) == ("1.2.0", "1.3.0")
    assert found.delta == pytest.approx(-0.11)


def test_direction_matters_for_lower_is_better() -> None:
    rising = _points([0.01, 0.02, 0.05], direction="lower_is_better")
    found = find_regression(rising, tolerance=0.0)
    assert found is not None and found.culprit.version == "1.1.0"
    assert find_regression(_points([0.05, 0.02], "lower_is_better"), tolerance=0) is None


def test_versions_without_the_metric_are_skipped() -> None:
    found = find_regression(_points([0.9, None, 0.8]), tolerance=0.05)
    assert found is not None
    assert (found.previous.version, found.culprit.version) == ("1.0.0", "1.2.0")


def test_negative_tolerance_is_refused() -> None:
    with pytest.raises(InvalidInputError):
        find_regression(_points([0.9]), tolerance=-1)
