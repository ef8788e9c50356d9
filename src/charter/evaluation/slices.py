"""The ``slice-performance`` evaluator: metrics overall and per data slice, with bootstrap CIs.

A model can be better overall and worse on a rare subgroup; an average hides
that, a slice shows it. For the whole dataset and each slice this evaluator
records accuracy, precision, recall and ROC AUC with the slice size and a
percentile bootstrap confidence interval, so a policy can compare slices with
the overall value and see how sure each number is.

Options:
    data, label, features, predictor, model_file, positive_label, threshold:
        as for the ``fairness`` evaluator (:mod:`charter.evaluation.fairness`).
    slices: a list of ``column=value`` (rows whose value, written as text, is
        ``value``: ``age=30`` matches 30 and 30.0) or ``column`` (one slice per
        value of the column). Missing values are the value ``(missing)``.
    bootstrap: number of resamples for confidence intervals (default 1000; 0: none).
    seed: random seed (default 0). Each slice draws from its own stream keyed by
        the seed and the slice's name, so its interval does not depend on which
        other slices were asked for.
    confidence: the intervals' level (default 0.95).

A metric that is undefined on a slice is left out and the summary says why:
precision without positive predictions, recall without positive labels, ROC AUC
without both classes or without model scores (``predict_proba`` or
``decision_function``).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from charter.domain.errors import InvalidInputError
from charter.domain.profile import ConfidenceInterval, EvaluationEntry, ProfileDocument
from charter.evaluation._data import (
    check_options,
    opt_float,
    opt_int,
    require_columns,
    value_text,
)
from charter.evaluation._predictor import MODEL_OPTIONS, Prepared, predict, read_labelled
from charter.evaluation.base import EvaluationContext, EvaluationOutcome, Evaluator
from charter.evaluation.plugins import hookimpl

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd  # type: ignore[import-untyped,unused-ignore]

__all__ = [
    "METRICS",
    "Rows",
    "Slice",
    "SlicePerformanceEvaluator",
    "bootstrap_metrics",
    "charter_evaluators",
    "parse_slices",
]

METRICS = ("accuracy", "precision", "recall", "roc_auc")
_MAX_SLICES = 1000
_CELLS_PER_CHUNK = 1_000_000  # resampled rows held at once (cache-friendly; measured)
_WHY = {
    "precision": "no positive predictions",
    "recall": "no positive labels",
    "roc_auc": "only one class present",
}


@dataclass(frozen=True)
class Slice:
    """A named subset of the rows.

    Attributes:
        name: ``column=value``, as written in profile entries.
        mask: True for the rows in the slice.
    """

    name: str
    mask: np.ndarray


class SlicePerformanceEvaluator(Evaluator):
    """Accuracy, precision, recall and ROC AUC overall and per slice, with bootstrap CIs."""

    name = "slice-performance"
    version = "1.0"
    description = (
        "Accuracy, precision, recall and ROC AUC of a binary classifier overall and per "
        "data slice, with sizes and bootstrap confidence intervals."
    )

    def evaluate(self, context: EvaluationContext) -> EvaluationOutcome:
        """Measure the model overall and on every slice of ``options.data``.

        Args:
            context: the version, its artifact folder and the options above.

        Returns:
            One evaluation per metric and slice (``slice`` unset for overall), the
            resolved configuration, the dataset digest and a summary naming the
            largest drop from the overall value per metric.

        Raises:
            InvalidInputError: a bad option (``field`` names it).
            NotFoundError: the data file or the model file is missing.
        """
        import numpy as np

        options = context.options
        allowed = MODEL_OPTIONS | {"slices", "bootstrap", "seed", "confidence"}
        check_options(options, allowed, evaluator=self.name)
        resamples = opt_int(options, "bootstrap", default=1000, low=0, high=100_000)
        seed = opt_int(options, "seed", default=0, low=0, high=2**63 - 1)
        level = opt_float(options, "confidence", default=0.95, low=0, high=1, open_interval=True)
        assert level is not None  # a default is given
        data = read_labelled(options)
        slices = parse_slices(options.get("slices"), data.table.frame)  # before the model runs
        prepared = predict(options, data, context.artifact_dir)
        overall = Slice(name="", mask=np.ones(len(prepared.y_true), dtype=bool))
        entries: list[EvaluationEntry] = []
        notes: list[str] = []
        if prepared.predictions.scores is None:
            notes.append("roc_auc: left out everywhere (the model gives no scores)")
        for done, part in enumerate([overall, *slices]):
            stream = np.random.default_rng([seed, zlib.crc32(part.name.encode())])
            entries.extend(_measure(prepared, part, resamples, level, stream, notes))
            if context.progress is not None:
                context.progress(done + 1, len(slices) + 1)
        try:
            document = ProfileDocument(evaluations=entries)
        except ValidationError as exc:
            raise InvalidInputError(
                f"slice results do not fit the profile schema: {exc}", field="slices"
            ) from exc
        config = {
            **prepared.config,
            "slices": [s.name for s in slices],
            "bootstrap": resamples,
            "seed": seed,
            "confidence": level,
        }
        return EvaluationOutcome(
            document=document,
            config=config,
            datasets=(prepared.table.record(),),
            summary=_summary(entries, len(slices), notes),
        )


def parse_slices(value: Any, frame: pd.DataFrame) -> list[Slice]:
    """Resolve the ``slices`` option into named row masks.

    Args:
        value: ``None``, one string or a list of ``column=value`` / ``column`` strings.
        frame: the dataset.

    Returns:
        The slices in the order asked (a bare column expands to its values, sorted).

    Raises:
        InvalidInputError: bad syntax, unknown column, a value matching no rows, a
            name the profile schema cannot hold, duplicates or too many slices.
    """
    if value is None:
        return []
    specs = [value] if isinstance(value, str) else value
    if not isinstance(specs, list | tuple) or not all(isinstance(s, str) for s in specs):
        raise InvalidInputError(
            "option 'slices' must be a list of column=value or column", field="slices"
        )
    slices: list[Slice] = []
    for spec in specs:
        column, has_value, wanted = spec.partition("=")
        if not column or column != column.strip() or "=" in wanted or (has_value and not wanted):
            raise InvalidInputError(
                f"option 'slices': {spec!r} is not column=value or column", field="slices"
            )
        require_columns(frame, [column], option="slices")
        text = frame[column].map(value_text)
        if has_value:
            mask = (text == wanted) | (frame[column].astype(str) == wanted)
            if not mask.any():
                shown = ", ".join(sorted(text.unique())[:10])
                raise InvalidInputError(
                    f"option 'slices': no row has {column}={wanted} (values: {shown})",
                    field="slices",
                )
            slices.append(Slice(name=spec, mask=mask.to_numpy(dtype=bool)))
        else:
            for v in sorted(text.unique()):
                slices.append(Slice(name=f"{column}={v}", mask=(text == v).to_numpy(dtype=bool)))
        if len(slices) > _MAX_SLICES:
            raise InvalidInputError(
                f"option 'slices': more than {_MAX_SLICES} slices; name values explicitly",
                field="slices",
            )
    seen: set[str] = set()
    for name in (s.name for s in slices):
        if name in seen:
            raise InvalidInputError(f"option 'slices': {name!r} appears twice", field="slices")
        seen.add(name)
        try:
            EvaluationEntry(name="accuracy", value=0.0, slice=name)
        except ValidationError:
            raise InvalidInputError(
                f"option 'slices': {name!r} cannot name a slice (column up to 100 and value "
                "up to 200 characters, no '=' in either)",
                field="slices",
            ) from None
    return slices


@dataclass(frozen=True)
class Rows:
    """The rows of one slice, coded for fast resampling.

    Attributes:
        code: per row, bit 0 = correct, 1 = true positive, 2 = predicted positive,
            3 = labelled positive.
        key: per row, ``2 * rank of its score among the distinct scores + label``
            (ties share a rank), or None without scores.
        blocks: the number of distinct scores.
    """

    code: np.ndarray
    key: np.ndarray | None
    blocks: int

    @classmethod
    def of(cls, y_true: np.ndarray, y_pred: np.ndarray, scores: np.ndarray | None) -> Rows:
        """Code the rows (booleans for truth and prediction, scores optional)."""
        import numpy as np

        y_true, y_pred = y_true.astype(bool), y_pred.astype(bool)
        code = ((y_true == y_pred) | (y_true & y_pred) << 1 | y_pred << 2 | y_true << 3).astype(
            np.uint8
        )
        if scores is None:
            return cls(code=code, key=None, blocks=0)
        distinct, rank = np.unique(scores, return_inverse=True)
        return cls(code=code, key=2 * rank.ravel() + y_true, blocks=len(distinct))


def bootstrap_metrics(rows: Rows, picks: np.ndarray) -> dict[str, np.ndarray]:
    """Compute every metric on many resamples of the same rows at once.

    Args:
        rows: the slice's rows (:meth:`Rows.of`).
        picks: row indices, shape ``(resamples, size)``; one row of
            ``arange(n)`` is the data as is.

    Returns:
        Metric name -> values, shape ``(resamples,)``; NaN where undefined
        (precision without predicted positives, recall without positives, ROC
        AUC without both classes). ``roc_auc`` only when the rows have scores.
    """
    import numpy as np

    resamples = picks.shape[0]
    offsets = (np.arange(resamples, dtype=np.int64) * 16)[:, None]
    # One 16-bin histogram of row codes per resample; each count is a sum over bins.
    histogram = np.bincount((rows.code[picks] + offsets).ravel(), minlength=resamples * 16)
    histogram = histogram.reshape(resamples, 16)
    codes = np.arange(16)
    correct, tp = histogram[:, codes & 1 > 0].sum(axis=1), histogram[:, codes & 2 > 0].sum(axis=1)
    predicted = histogram[:, codes & 4 > 0].sum(axis=1)
    positive = histogram[:, codes & 8 > 0].sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = {
            "accuracy": correct / picks.shape[1],
            "precision": np.where(predicted > 0, tp / predicted, np.nan),
            "recall": np.where(positive > 0, tp / positive, np.nan),
        }
    if rows.key is not None:
        out["roc_auc"] = _auc(rows.key[picks], rows.blocks)
    return out


def _auc(keys: np.ndarray, blocks: int) -> np.ndarray:
    """Mann-Whitney AUC per resample (ties count half) from ``2 * score rank + label`` keys."""
    import numpy as np

    resamples = keys.shape[0]
    offsets = (np.arange(resamples, dtype=np.int64) * 2 * blocks)[:, None]
    counts = np.bincount((keys + offsets).ravel(), minlength=resamples * 2 * blocks)
    counts = counts.reshape(resamples, blocks, 2)  # one histogram per resample
    neg, pos = counts[:, :, 0], counts[:, :, 1]
    below = np.cumsum(neg, axis=1) - neg  # negatives scored strictly lower
    pairs = pos.sum(axis=1) * neg.sum(axis=1)
    wins = (pos * (below + 0.5 * neg)).sum(axis=1)
    return np.where(pairs > 0, wins / np.maximum(pairs, 1), np.nan)


def _resampled(n: int, resamples: int, stream: np.random.Generator) -> Iterator[np.ndarray]:
    """Yield bootstrap row indices (resamples x n), in chunks that bound memory."""
    import numpy as np

    left, size = resamples, max(1, _CELLS_PER_CHUNK // n)
    while left > 0:
        count = min(size, left)
        kind = np.int32 if n < 2**31 else np.int64  # int32 draws are ~6x faster
        yield stream.integers(0, n, size=(count, n), dtype=kind)
        left -= count


def _measure(
    prepared: Prepared,
    part: Slice,
    resamples: int,
    level: float,
    stream: np.random.Generator,
    notes: list[str],
) -> list[EvaluationEntry]:
    import numpy as np

    y_true, y_pred = prepared.y_true[part.mask], prepared.predictions.labels[part.mask]
    scores = prepared.predictions.scores
    scores = None if scores is None else scores[part.mask]
    n = len(y_true)
    rows = Rows.of(y_true, y_pred, scores)
    point = bootstrap_metrics(rows, np.arange(n)[None, :])
    draws: dict[str, list[np.ndarray]] = {m: [] for m in point}
    if resamples:
        for picks in _resampled(n, resamples, stream):
            for metric, values in bootstrap_metrics(rows, picks).items():
                draws[metric].append(values)
    entries = []
    for metric in METRICS:
        if metric not in point:
            continue
        value = float(point[metric][0])
        if np.isnan(value):
            notes.append(f"{metric}: left out on {part.name or 'the whole data'} ({_WHY[metric]})")
            continue
        ci = None
        if resamples:
            sample = np.concatenate(draws[metric])
            sample = sample[~np.isnan(sample)]
            if len(sample):
                tail = (1 - level) / 2 * 100
                low, high = np.percentile(sample, [tail, 100 - tail])
                ci = ConfidenceInterval(low=_unit(low), high=_unit(high), level=level)
        entries.append(
            EvaluationEntry(
                name=metric,
                value=_unit(value),
                unit="ratio",
                slice=part.name or None,
                samples=n,
                ci=ci,
                dataset=prepared.table.info,
            )
        )
    return entries


def _unit(value: float) -> float:
    return min(1.0, max(0.0, float(value)))  # float rounding must not leave [0, 1]


def _summary(entries: list[EvaluationEntry], count: int, notes: list[str]) -> dict[str, Any]:
    overall = {e.name: e.value for e in entries if e.slice is None}
    summary: dict[str, Any] = {"overall": overall, "slices": count}
    drops: dict[str, Any] = {}
    for e in entries:
        if e.slice is None or e.name not in overall:
            continue
        drop = overall[e.name] - e.value
        if drop > drops.get(e.name, {}).get("drop", 0.0):
            drops[e.name] = {"slice": e.slice, "value": e.value, "samples": e.samples, "drop": drop}
    if drops:
        summary["largest_drop"] = drops
    if notes:
        summary["notes"] = notes
    return summary


@hookimpl
def charter_evaluators() -> list[type[Evaluator]]:
    """Register the ``slice-performance`` evaluator."""
    return [SlicePerformanceEvaluator]
