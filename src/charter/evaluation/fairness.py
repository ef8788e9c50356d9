"""The ``fairness`` evaluator: group fairness of a binary classifier, with fairlearn.

For each sensitive feature it measures, per group, the selection rate, true and
false positive rates and accuracy (fairlearn's :class:`MetricFrame`), and
records them as bias audits — every group with its size, however small — plus
demographic parity and equalized odds as evaluations on the slice
``feature=<name>``.

Options:
    data: CSV or Parquet file (relative to the working directory).
    label: the column holding the true class.
    sensitive: one column or a list of columns (the protected attributes).
    features: the model's input columns; default: the columns the model was fitted
        on (``feature_names_in_``) if it records them, else every column except the
        label and the sensitive ones; ``all``: every column except the label (for
        models trained with the sensitive columns).
    predictor: ``module:function`` or ``file.py:function`` taking a DataFrame and
        returning predictions; default: the version's model file.
    model_file: the model file in the artifact when it holds several.
    positive_label: the favourable class (default ``1``).
    threshold: decision threshold on the positive class's probability.

Evaluating runs the model: see :mod:`charter.evaluation._predictor`.

A true positive rate is undefined for a group without positive labels (and a
false positive rate for one without negatives). fairlearn reports 0 there,
which would make a group nobody can judge look maximally unfair; this
evaluator leaves such groups out of that one metric (and out of equalized odds)
and says so in the summary. Elsewhere the numbers are fairlearn's.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from charter.domain.errors import InvalidInputError
from charter.domain.profile import BiasAuditEntry, EvaluationEntry, GroupValue, ProfileDocument
from charter.evaluation._data import (
    check_options,
    opt_columns,
    require,
    require_columns,
    value_text,
)
from charter.evaluation._predictor import (
    MODEL_OPTIONS,
    Labelled,
    Prepared,
    predict,
    read_labelled,
)
from charter.evaluation.base import EvaluationContext, EvaluationOutcome, Evaluator
from charter.evaluation.plugins import hookimpl

if TYPE_CHECKING:
    import pandas as pd  # type: ignore[import-untyped,unused-ignore]

__all__ = ["FOUR_FIFTHS", "FairnessEvaluator", "charter_evaluators"]

#: 29 CFR 1607.4(D): a selection rate under 80% of the highest group's is
#: evidence of adverse impact.
FOUR_FIFTHS = 0.8
_MAX_GROUPS = 1000  # the profile schema's limit per bias audit
_RATES = ("selection_rate", "true_positive_rate", "false_positive_rate", "accuracy")
_LOWER = "lower_is_better"
_HIGHER = "higher_is_better"


class FairnessEvaluator(Evaluator):
    """Selection rate, TPR, FPR and accuracy per group; demographic parity; equalized odds."""

    name = "fairness"
    version = "1.0"
    description = (
        "Group fairness of a binary classifier (fairlearn): per-group rates as bias "
        "audits, demographic parity and equalized odds as evaluations."
    )

    def evaluate(self, context: EvaluationContext) -> EvaluationOutcome:
        """Measure the model's group fairness on ``options.data``.

        Args:
            context: the version, its artifact folder and the options above.

        Returns:
            Bias audits per sensitive feature and metric, fairness evaluations,
            overall accuracy, the resolved configuration and the dataset digest.

        Raises:
            InvalidInputError: a bad option (``field`` names it).
            NotFoundError: the data file or the model file is missing.
        """
        options = context.options
        check_options(options, MODEL_OPTIONS | {"sensitive"}, evaluator=self.name)
        sensitive = opt_columns(options, "sensitive")
        if not sensitive:
            raise InvalidInputError("option 'sensitive' is required", field="sensitive")
        for column in sensitive:
            if "=" in column or len(column) > 200 or column != column.strip():
                raise InvalidInputError(
                    f"option 'sensitive': column name {column!r} cannot name a slice "
                    "(no '=', no surrounding spaces, at most 200 characters)",
                    field="sensitive",
                )
        data = read_labelled(options)
        _check_sensitive(data, sensitive)  # before the model runs: fail fast
        prepared = predict(options, data, context.artifact_dir, exclude=sensitive)
        audits: list[BiasAuditEntry] = []
        evaluations: list[EvaluationEntry] = []
        notes: list[str] = []
        summary: dict[str, Any] = {"rows": len(prepared.y_true), "features": {}}
        try:
            evaluations.append(_overall_accuracy(prepared))
            for done, feature in enumerate(sensitive):
                entries = _audit(prepared, feature, notes)
                audits.extend(entries.values())
                evaluations.extend(_disparities(prepared, feature, entries))
                summary["features"][feature] = _headline(entries)
                if context.progress is not None:
                    context.progress(done + 1, len(sensitive))
            document = ProfileDocument(evaluations=evaluations, bias_audits=audits)
        except ValidationError as exc:  # a group name or value the schema refuses
            raise InvalidInputError(
                f"fairness results do not fit the profile schema: {exc}", field="sensitive"
            ) from exc
        summary["accuracy"] = evaluations[0].value
        if notes:
            summary["notes"] = notes
        return EvaluationOutcome(
            document=document,
            config={**prepared.config, "sensitive": sensitive},
            datasets=(prepared.table.record(),),
            summary=summary,
        )


def _check_sensitive(data: Labelled, sensitive: list[str]) -> None:
    frame, label = data.table.frame, data.label
    require_columns(frame, sensitive, option="sensitive")
    for column in sensitive:
        if column == label:
            raise InvalidInputError(
                f"option 'sensitive' includes the label {label!r}", field="sensitive"
            )
        count = frame[column].nunique(dropna=False)
        if count > _MAX_GROUPS:
            raise InvalidInputError(
                f"option 'sensitive': column {column!r} has {count} distinct values "
                f"(at most {_MAX_GROUPS}); bin it into groups first",
                field="sensitive",
            )


def _groups(prepared: Prepared, feature: str) -> pd.Series:
    """The sensitive column as group names: strings, missing values as a group of their own."""
    return prepared.table.frame[feature].map(value_text).rename(feature)


def _audit(prepared: Prepared, feature: str, notes: list[str]) -> dict[str, BiasAuditEntry]:
    metrics_module = require("fairlearn.metrics")
    skm = require("sklearn.metrics")
    pd = require("pandas")
    y_true = prepared.y_true.astype(int)
    y_pred = prepared.predictions.labels.astype(int)
    groups = _groups(prepared, feature)
    frame = metrics_module.MetricFrame(
        metrics={
            "selection_rate": metrics_module.selection_rate,
            "true_positive_rate": functools.partial(metrics_module.true_positive_rate, pos_label=1),
            "false_positive_rate": functools.partial(
                metrics_module.false_positive_rate, pos_label=1
            ),
            "accuracy": skm.accuracy_score,
            "count": metrics_module.count,
        },
        y_true=y_true,
        y_pred=y_pred,
        sensitive_features=groups,
    )
    table = frame.by_group
    positives = pd.Series(y_true, index=groups.index).groupby(groups).sum()
    # A rate is undefined for a group without the rows it divides by.
    defined = {
        "selection_rate": table.index,
        "accuracy": table.index,
        "true_positive_rate": positives[positives > 0].index,
        "false_positive_rate": positives[positives < table["count"]].index,
    }
    entries: dict[str, BiasAuditEntry] = {}
    for metric in _RATES:
        keep = [g for g in table.index if g in set(defined[metric])]
        dropped = [g for g in table.index if g not in set(defined[metric])]
        if dropped:
            why = "positive" if metric == "true_positive_rate" else "negative"
            notes.append(
                f"{metric} of {feature}: left out {', '.join(map(str, dropped))} "
                f"(no {why} labels, so the rate is undefined)"
            )
        entries[metric] = BiasAuditEntry(
            sensitive_feature=feature,
            metric=metric,
            groups=[
                GroupValue(
                    group=str(g)[:500],
                    value=float(table.at[g, metric]),
                    size=int(table.at[g, "count"]),
                )
                for g in keep
            ],
            dataset=prepared.table.info,
        )
    return entries


def _disparities(
    prepared: Prepared, feature: str, entries: dict[str, BiasAuditEntry]
) -> list[EvaluationEntry]:
    """Demographic parity and equalized odds, from the very group values audited."""
    selection = entries["selection_rate"]
    tpr, fpr = entries["true_positive_rate"], entries["false_positive_rate"]
    values = {
        "demographic_parity_difference": (selection.difference, _LOWER),
        "demographic_parity_ratio": (selection.ratio, _HIGHER),
        "equalized_odds_difference": (max(_num(tpr.difference), _num(fpr.difference)), _LOWER),
        "equalized_odds_ratio": (min(_num(tpr.ratio), _num(fpr.ratio)), _HIGHER),
    }
    return [
        EvaluationEntry(
            name=name,
            value=_num(value),
            unit="ratio",
            direction=direction,  # "difference" would otherwise be guessed higher-is-better
            slice=f"feature={feature}",
            samples=len(prepared.y_true),
            dataset=prepared.table.info,
        )
        for name, (value, direction) in values.items()
    ]


def _overall_accuracy(prepared: Prepared) -> EvaluationEntry:
    accuracy = float((prepared.y_true == prepared.predictions.labels).mean())
    return EvaluationEntry(
        name="accuracy",
        value=accuracy,
        unit="ratio",
        samples=len(prepared.y_true),
        dataset=prepared.table.info,
    )


def _headline(entries: dict[str, BiasAuditEntry]) -> dict[str, Any]:
    selection = entries["selection_rate"]
    smallest = min(selection.groups, key=lambda g: g.size)
    ratio = _num(selection.ratio)
    return {
        "groups": len(selection.groups),
        "demographic_parity_ratio": ratio,
        "four_fifths_rule": "pass" if ratio >= FOUR_FIFTHS else "adverse impact",
        "smallest_group": {"group": smallest.group, "size": smallest.size},
    }


def _num(value: float | None) -> float:
    # The schema fills difference and ratio on every entry; None cannot reach here.
    return float(value) if value is not None else 0.0


@hookimpl
def charter_evaluators() -> list[type[Evaluator]]:
    """Register the ``fairness`` evaluator."""
    return [FairnessEvaluator]
