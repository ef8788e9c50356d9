"""Metric trends along a lineage, and finding the step that regressed.

Pure functions: values in, the first regressing step out. Direction matters:
for a lower-is-better metric (toxicity, leakage) a rise is the regression.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from charter.domain.errors import InvalidInputError

__all__ = ["Regression", "TrendPoint", "find_regression", "pick_value"]


@dataclass(frozen=True)
class TrendPoint:
    """A metric's value on one version (None: the version has no such entry)."""

    version: str
    value: float | None
    entry_id: str | None = None
    origin: str | None = None
    direction: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "version": self.version,
            "value": self.value,
            "entry_id": self.entry_id,
            "origin": self.origin,
        }


@dataclass(frozen=True)
class Regression:
    """The first step whose metric moved the wrong way by more than the tolerance."""

    previous: TrendPoint
    culprit: TrendPoint
    delta: float


def pick_value(
    entries: Sequence[dict[str, Any]], *, metric: str, slice_: str | None, origins: dict[str, str]
) -> tuple[float, str, str, str] | None:
    """Return (value, entry id, origin, direction) of the newest matching evaluation."""
    found = None
    for entry in entries:
        if entry["name"] == metric and entry.get("slice") == slice_:
            found = entry  # entries come in time order: the last one is in force
    if found is None:
        return None
    origin = origins.get(found["id"], "baseline")
    return float(found["value"]), found["id"], origin, str(found["direction"])


def find_regression(points: Sequence[TrendPoint], *, tolerance: float) -> Regression | None:
    """Walk ``points`` (oldest first) and return the first regression beyond ``tolerance``.

    Versions without the metric are skipped: each value is compared with the
    nearest earlier version that has one.

    Raises:
        InvalidInputError: when ``tolerance`` is negative.
    """
    if tolerance < 0:
        raise InvalidInputError("tolerance must be zero or positive", field="tolerance")
    previous: TrendPoint | None = None
    for point in points:
        if point.value is None:
            continue
        if previous is not None and previous.value is not None:
            delta = point.value - previous.value
            worse = delta if point.direction == "lower_is_better" else -delta
            if worse > tolerance:
                return Regression(previous=previous, culprit=point, delta=delta)
        previous = point
    return None
