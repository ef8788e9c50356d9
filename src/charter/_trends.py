"""Trend and blame use cases: a metric along a lineage, and where it regressed.

Mixed into :class:`charter.service.Registry`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from charter.domain.entities import Version
from charter.domain.errors import NotFoundError
from charter.domain.folding import EffectiveProfile
from charter.domain.lineage import Lineage, VersionDiff
from charter.domain.trends import Regression, TrendPoint, find_regression, pick_value

__all__ = ["Blame", "TrendUseCases"]


class _Host(Protocol):
    def get_version(self, *, model: str, version: str) -> Version: ...

    def list_versions(self, *, model: str) -> list[Version]: ...

    def lineage(self, *, model: str, version: str) -> Lineage: ...

    def profile(
        self, *, model: str, version: str, as_of: str | None = None, baseline: bool = False
    ) -> EffectiveProfile: ...

    def diff(self, *, model: str, a: str, b: str, model_b: str | None = None) -> VersionDiff: ...

    def trend(
        self, *, model: str, metric: str, slice_: str | None = None, version: str | None = None
    ) -> list[TrendPoint]: ...


@dataclass(frozen=True)
class Blame:
    """Where a metric first regressed along a version's ancestry, and what changed there."""

    metric: str
    slice: str | None
    tolerance: float
    points: tuple[TrendPoint, ...]
    regression: Regression | None
    diff: VersionDiff | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        reg = self.regression
        return {
            "metric": self.metric,
            "slice": self.slice,
            "tolerance": self.tolerance,
            "points": [p.to_dict() for p in self.points],
            "regression": None
            if reg is None
            else {
                "version": reg.culprit.version,
                "previous": reg.previous.version,
                "before": reg.previous.value,
                "after": reg.culprit.value,
                "delta": reg.delta,
                "evidence": [reg.previous.entry_id, reg.culprit.entry_id],
            },
            "diff": self.diff.to_dict() if self.diff else None,
        }


class TrendUseCases:
    """Trends of a metric across versions, and blame for a regression."""

    def trend(
        self: _Host,
        *,
        model: str,
        metric: str,
        slice_: str | None = None,
        version: str | None = None,
    ) -> list[TrendPoint]:
        """A metric's value per version, oldest first.

        Args:
            model: the model line.
            metric: evaluation name, e.g. ``accuracy``.
            slice_: the slice (``thal=fixed``), or None for the overall value.
            version: follow this version's ancestry; None: every version in semver order.
        """
        if version is None:
            chain = self.list_versions(model=model)
        else:
            lin = self.lineage(model=model, version=version)
            chain = [*reversed(lin.ancestors), lin.version]
        points = []
        for v in chain:
            profile = self.profile(model=v.model, version=v.version)
            origins = {e.id: e.amendment_id or "baseline" for e in profile.entries}
            found = pick_value(
                profile.section("evaluations"), metric=metric, slice_=slice_, origins=origins
            )
            if found is None:
                points.append(TrendPoint(v.version, None))
            else:
                value, entry_id, origin, direction = found
                points.append(TrendPoint(v.version, value, entry_id, origin, direction))
        if all(p.value is None for p in points):
            where = f" on slice {slice_}" if slice_ else ""
            raise NotFoundError(
                f"no version of {model} has an evaluation named {metric!r}{where}",
                metric=metric,
                slice=slice_,
            )
        return points

    def blame(
        self: _Host,
        *,
        model: str,
        version: str,
        metric: str,
        slice_: str | None = None,
        tolerance: float = 0.0,
    ) -> Blame:
        """Name the first version along the ancestry where ``metric`` regressed."""
        points = self.trend(model=model, metric=metric, slice_=slice_, version=version)
        regression = find_regression(points, tolerance=tolerance)
        diff = None
        if regression is not None:
            diff = self.diff(
                model=model, a=regression.previous.version, b=regression.culprit.version
            )
        return Blame(metric, slice_, tolerance, tuple(points), regression, diff)
