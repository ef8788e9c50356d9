"""Getting predictions for a dataset: from the version's model file or a predictor function.

**Evaluating a model runs it.** A scikit-learn model is a pickle (``.joblib``,
``.pkl``, ``.pickle``), and loading a pickle executes whatever code it names;
a ``predictor`` option imports and calls Python code. So only evaluate
artifacts and predictors you trust — the same bargain as MLflow's
``load_model``. Registration is different: it scans pickles statically and
never unpickles them (:mod:`charter.artifacts.fingerprint`).
"""

from __future__ import annotations

import importlib
import importlib.util
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from charter.domain.errors import InvalidInputError, NotFoundError
from charter.evaluation._data import (
    Table,
    binary_target,
    load_table,
    opt_float,
    opt_str,
    require,
    require_columns,
    resolve_features,
    same_value,
    to_binary,
    value_text,
)

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd  # type: ignore[import-untyped,unused-ignore]

__all__ = [
    "MODEL_OPTIONS",
    "MODEL_SUFFIXES",
    "Labelled",
    "Predictions",
    "Prepared",
    "find_model_file",
    "predict",
    "prepare",
    "read_labelled",
]

MODEL_SUFFIXES = (".joblib", ".pkl", ".pickle")
#: Options every model-based built-in evaluator understands.
MODEL_OPTIONS = frozenset(
    {"data", "label", "features", "predictor", "model_file", "positive_label", "threshold"}
)


@dataclass(frozen=True)
class Predictions:
    """A model's answers on every row.

    Attributes:
        labels: True where the positive class is predicted.
        scores: the positive class's score (probability or decision value), if the
            model gives one; ranking metrics such as ROC AUC need it.
        score_source: ``predict_proba``, ``decision_function`` or ``predictor``.
    """

    labels: np.ndarray
    scores: np.ndarray | None
    score_source: str | None


@dataclass(frozen=True)
class Prepared:
    """Data, truth and predictions, ready for metrics.

    Attributes:
        table: the dataset read.
        y_true: True where the label is the positive class.
        predictions: the model's answers.
        features: the columns given to the model.
        config: every option as resolved (enough to re-run the evaluation).
    """

    table: Table
    y_true: np.ndarray
    predictions: Predictions
    features: list[str]
    config: dict[str, Any]


def find_model_file(artifact_dir: Path, model_file: str | None) -> Path:
    """Locate the model file: the one named, or the single pickle in the artifact.

    Raises:
        NotFoundError: the named file does not exist, or no model file is present.
        InvalidInputError: the name leaves the artifact folder, or several model
            files are present and ``model_file`` does not choose one.
    """
    root = artifact_dir.resolve()
    if model_file is not None:
        path = (root / model_file).resolve()
        if not path.is_relative_to(root):
            raise InvalidInputError(
                f"option 'model_file': {model_file!r} leaves the artifact folder",
                field="model_file",
            )
        if not path.is_file():
            raise NotFoundError(
                f"option 'model_file': no file {model_file!r} in the artifact", field="model_file"
            )
        return path
    found = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in MODEL_SUFFIXES)
    if not found:
        raise NotFoundError(
            f"no model file ({', '.join('*' + s for s in MODEL_SUFFIXES)}) in the artifact: "
            "set option 'model_file' or 'predictor'",
            field="model_file",
        )
    if len(found) > 1:
        names = [p.relative_to(root).as_posix() for p in found]
        raise InvalidInputError(
            f"option 'model_file': the artifact has {len(found)} model files "
            f"({', '.join(names[:10])}); name one",
            field="model_file",
            valid=names,
        )
    return found[0]


def _load_model(path: Path, root: Path) -> Any:
    joblib = require("joblib")
    try:
        model = joblib.load(path)  # runs the pickle: see the module docstring
    except Exception as exc:
        rel = path.relative_to(root.resolve()).as_posix()
        raise InvalidInputError(
            f"option 'model_file': cannot load {rel}: {exc}", field="model_file"
        ) from exc
    if not callable(getattr(model, "predict", None)):
        raise InvalidInputError(
            f"option 'model_file': {path.name} holds a {type(model).__name__}, "
            "which has no predict method",
            field="model_file",
        )
    return model


def _load_predictor(spec: str) -> Callable[[pd.DataFrame], Any]:
    """Import ``module:function`` or ``path/to/file.py:function``."""
    target, _, attr = spec.rpartition(":")
    if not target or not attr.isidentifier():
        raise InvalidInputError(
            f"option 'predictor': {spec!r} is not module:function or file.py:function",
            field="predictor",
        )
    try:
        if target.endswith(".py"):
            path = Path(target).expanduser()
            path = path if path.is_absolute() else Path.cwd() / path
            module_spec = importlib.util.spec_from_file_location(
                f"_charter_predictor_{path.stem}", path
            )
            if module_spec is None or module_spec.loader is None or not path.is_file():
                raise FileNotFoundError(f"no file {path}")
            module = importlib.util.module_from_spec(module_spec)
            module_spec.loader.exec_module(module)
        else:
            module = importlib.import_module(target)
    except Exception as exc:  # the module's own code may raise anything
        raise InvalidInputError(
            f"option 'predictor': cannot import {target}: {exc}", field="predictor"
        ) from exc
    function = getattr(module, attr, None)
    if not callable(function):
        raise InvalidInputError(
            f"option 'predictor': {target} has no function {attr!r}", field="predictor"
        )
    predictor: Callable[[pd.DataFrame], Any] = function
    return predictor


def _class_index(model: Any, positive: Any, width: int) -> int | None:
    """Column of the positive class in ``predict_proba`` (None: the model cannot tell)."""
    classes = getattr(model, "classes_", None)
    if classes is None or width != 2 or len(classes) != 2:
        return None
    matches = [i for i, c in enumerate(classes) if same_value(c, positive)]
    if not matches:
        raise InvalidInputError(
            f"option 'positive_label': {positive!r} is not one of the model's classes "
            f"({', '.join(value_text(c) for c in classes)})",
            field="positive_label",
        )
    return matches[0]


def _from_model(
    model: Any, x: pd.DataFrame, *, classes: list[Any], positive: Any, threshold: float | None
) -> Predictions:
    import numpy as np

    has_proba = callable(getattr(model, "predict_proba", None))
    if threshold is not None and not has_proba:
        raise InvalidInputError(
            "option 'threshold' needs a model with predict_proba", field="threshold"
        )
    with warnings.catch_warnings():
        # Models fitted on arrays warn when given a DataFrame; the columns are still right.
        warnings.filterwarnings("ignore", message="X has feature names", category=UserWarning)
        try:
            scores, source = None, None
            if has_proba:
                proba = np.asarray(model.predict_proba(x))
                index = _class_index(model, positive, proba.shape[1] if proba.ndim == 2 else 0)
                if index is not None:
                    scores, source = proba[:, index].astype(float), "predict_proba"
            elif callable(getattr(model, "decision_function", None)):
                decision = np.asarray(model.decision_function(x), dtype=float)
                index = _class_index(model, positive, 2) if decision.ndim == 1 else None
                if index is not None:  # positive decisions mean classes_[1]
                    scores, source = (decision if index == 1 else -decision), "decision_function"
            raw = None if threshold is not None else model.predict(x)
        except InvalidInputError:
            raise
        except Exception as exc:  # the model's own code may raise anything
            raise InvalidInputError(
                f"the model failed to predict on the data ({exc}); check option 'features'",
                field="features",
            ) from exc
    if threshold is not None:
        if scores is None:
            raise InvalidInputError(
                "option 'threshold': the model's predict_proba does not name its two classes "
                "(no classes_)",
                field="threshold",
            )
        return Predictions(labels=scores >= threshold, scores=scores, score_source=source)
    labels = to_binary(raw, classes, positive, option="model_file")
    return Predictions(labels=labels, scores=scores, score_source=source)


def _from_predictor(
    function: Callable[[pd.DataFrame], Any],
    x: pd.DataFrame,
    *,
    classes: list[Any],
    positive: Any,
    threshold: float | None,
    spec: str,
) -> Predictions:
    import numpy as np

    try:
        out = np.asarray(function(x))
    except Exception as exc:  # the predictor's own code may raise anything
        raise InvalidInputError(
            f"option 'predictor': {spec} failed: {exc}", field="predictor"
        ) from exc
    if out.ndim == 2 and out.shape[1] == 1:
        out = out.ravel()
    if out.ndim != 1 or len(out) != len(x):
        raise InvalidInputError(
            f"option 'predictor': {spec} returned shape {out.shape}, expected ({len(x)},)",
            field="predictor",
        )
    if threshold is None:
        labels = to_binary(out, classes, positive, option="predictor")
        return Predictions(labels=labels, scores=None, score_source=None)
    try:  # with a threshold, the predictor returns positive-class probabilities
        scores = out.astype(float)
    except (TypeError, ValueError):
        scores = np.full(len(out), np.nan)
    if not np.all((scores >= 0) & (scores <= 1)):
        raise InvalidInputError(
            f"option 'threshold': {spec} must return probabilities in [0, 1] when a "
            "threshold is set",
            field="threshold",
        )
    return Predictions(labels=scores >= threshold, scores=scores, score_source="predictor")


@dataclass(frozen=True)
class Labelled:
    """The dataset with its truth, before any model runs.

    Attributes:
        table: the dataset read.
        label: the label column.
        positive: the positive class as given.
        y_true: True where the label is the positive class.
        classes: the label's two values.
    """

    table: Table
    label: str
    positive: Any
    y_true: np.ndarray
    classes: list[Any]


def read_labelled(options: Mapping[str, Any]) -> Labelled:
    """Read ``data`` and its ``label`` (check an evaluator's own options before predicting).

    Raises:
        InvalidInputError: a bad ``data``, ``label`` or ``positive_label``.
        NotFoundError: the data file is missing.
    """
    if options.get("data") is None:
        raise InvalidInputError("option 'data' is required", field="data")
    table = load_table(options["data"])
    label = opt_str(options, "label", required=True)
    assert label is not None  # required=True
    require_columns(table.frame, [label], option="label")
    positive = options.get("positive_label", 1)
    if not isinstance(positive, str | int | float) or isinstance(positive, bool):
        raise InvalidInputError(
            "option 'positive_label' must be a string or a number", field="positive_label"
        )
    y_true, classes = binary_target(table.frame, label, positive)
    return Labelled(table=table, label=label, positive=positive, y_true=y_true, classes=classes)


def predict(
    options: Mapping[str, Any], data: Labelled, artifact_dir: Path, *, exclude: Sequence[str] = ()
) -> Prepared:
    """Run the model (or the predictor) on the data, as the options say.

    Args:
        options: the evaluator's options (``features``, ``predictor``,
            ``model_file``, ``threshold``).
        data: what :func:`read_labelled` returned.
        artifact_dir: the version's files, where the model is looked for.
        exclude: columns left out of the default feature set (sensitive features).

    Returns:
        Data, truth and predictions, with the resolved configuration.

    Raises:
        InvalidInputError: a bad option, naming it, or a model that fails.
        NotFoundError: the model file is missing.
    """
    frame, label = data.table.frame, data.label
    threshold = opt_float(options, "threshold", default=None, low=0.0, high=1.0)
    spec, model_file = opt_str(options, "predictor"), opt_str(options, "model_file")
    config: dict[str, Any] = {
        "data": str(data.table.path),
        "label": label,
        "positive_label": data.positive,
        "threshold": threshold,
    }
    if spec is not None and model_file is not None:
        raise InvalidInputError(
            "options 'predictor' and 'model_file' exclude each other", field="predictor"
        )
    answer = {"classes": data.classes, "positive": data.positive, "threshold": threshold}
    if spec is not None:
        function = _load_predictor(spec)
        features = resolve_features(
            options.get("features"), frame, label=label, exclude=exclude, model=None
        )
        predictions = _from_predictor(function, frame[features], spec=spec, **answer)
        config["predictor"] = spec
    else:
        path = find_model_file(artifact_dir, model_file)
        model = _load_model(path, artifact_dir)
        features = resolve_features(
            options.get("features"), frame, label=label, exclude=exclude, model=model
        )
        predictions = _from_model(model, frame[features], **answer)
        config["model_file"] = path.relative_to(artifact_dir.resolve()).as_posix()
    config["features"] = features
    return Prepared(
        table=data.table,
        y_true=data.y_true,
        predictions=predictions,
        features=features,
        config=config,
    )


def prepare(
    options: Mapping[str, Any], artifact_dir: Path, *, exclude: Sequence[str] = ()
) -> Prepared:
    """:func:`read_labelled` then :func:`predict`.

    Raises:
        InvalidInputError: a bad option, naming it.
        NotFoundError: the data file or the model file is missing.
    """
    return predict(options, read_labelled(options), artifact_dir, exclude=exclude)
