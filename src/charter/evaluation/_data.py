"""Options and tabular data shared by the built-in evaluators.

Evaluator options arrive from YAML files, the CLI or the API, so every value is
checked here and every complaint is an :class:`InvalidInputError` (or
:class:`NotFoundError` for missing files) whose ``field`` names the option.

pandas, numpy and scikit-learn belong to the ``eval`` extra: they are imported
when an evaluation runs, never when plugins are listed.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from charter.artifacts.fingerprint import dataset_digest
from charter.domain.errors import CharterError, InvalidInputError, NotFoundError
from charter.domain.profile import DatasetInfo

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd  # type: ignore[import-untyped,unused-ignore]

__all__ = [
    "Table",
    "binary_target",
    "check_options",
    "load_table",
    "opt_columns",
    "opt_float",
    "opt_int",
    "opt_str",
    "require",
    "require_columns",
    "resolve_features",
    "same_value",
    "to_binary",
    "value_text",
]

_MISSING = "(missing)"
_CSV = (".csv", ".csv.gz", ".csv.bz2", ".csv.zip", ".csv.xz", ".csv.zst")
_PARQUET = (".parquet", ".pq")


def require(module: str) -> ModuleType:
    """Import an optional dependency of the built-in evaluators.

    Raises:
        CharterError: the module is not installed (says which extra installs it).
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise CharterError(
            f"{module} is needed to run this evaluator: pip install 'charter-registry[eval]'",
            missing=module,
            extra="eval",
        ) from exc


def check_options(options: Mapping[str, Any], allowed: Collection[str], *, evaluator: str) -> None:
    """Refuse option names an evaluator does not know (typos must not pass silently).

    Raises:
        InvalidInputError: naming the first unknown option and the valid ones.
    """
    for key in options:
        if key not in allowed:
            raise InvalidInputError(
                f"{evaluator}: unknown option {key!r} (valid: {', '.join(sorted(allowed))})",
                field=str(key),
                valid=sorted(allowed),
            )


def opt_str(options: Mapping[str, Any], key: str, *, required: bool = False) -> str | None:
    """Return a non-empty string option.

    Raises:
        InvalidInputError: the option is missing (when required) or not a non-empty string.
    """
    value = options.get(key)
    if value is None:
        if required:
            raise InvalidInputError(f"option {key!r} is required", field=key)
        return None
    if not isinstance(value, str) or not value.strip():
        raise InvalidInputError(f"option {key!r} must be a non-empty string", field=key)
    return value


def opt_columns(options: Mapping[str, Any], key: str) -> list[str] | None:
    """Return a column-list option: one name or a list of names (never split on commas).

    Raises:
        InvalidInputError: not a string or a non-empty list of distinct strings.
    """
    value = options.get(key)
    if value is None:
        return None
    names = [value] if isinstance(value, str) else value
    if (
        not isinstance(names, Sequence)
        or not names
        or not all(isinstance(n, str) and n for n in names)
    ):
        raise InvalidInputError(
            f"option {key!r} must be a column name or a non-empty list of column names",
            field=key,
        )
    if len(set(names)) != len(names):
        raise InvalidInputError(f"option {key!r} names a column twice", field=key)
    return list(names)


def opt_int(options: Mapping[str, Any], key: str, *, default: int, low: int, high: int) -> int:
    """Return an integer option in ``[low, high]`` (digit strings are accepted).

    Raises:
        InvalidInputError: not an integer or out of range.
    """
    value = options.get(key, default)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInputError(
            f"option {key!r} must be an integer from {low} to {high}, not {value!r}", field=key
        )
    return value


def opt_float(
    options: Mapping[str, Any],
    key: str,
    *,
    default: float | None,
    low: float,
    high: float,
    open_interval: bool = False,
) -> float | None:
    """Return a number option in ``[low, high]`` (or ``(low, high)``), or the default.

    Raises:
        InvalidInputError: not a finite number or out of range.
    """
    value = options.get(key, default)
    if value is None:
        return None
    try:
        number = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        number = math.nan
    inside = low < number < high if open_interval else low <= number <= high
    if not inside:
        span = f"({low}, {high})" if open_interval else f"[{low}, {high}]"
        raise InvalidInputError(f"option {key!r} must be a number in {span}", field=key)
    return number


@dataclass(frozen=True)
class Table:
    """A dataset read for an evaluation, with its identity.

    Attributes:
        frame: the rows.
        path: the resolved file path.
        digest: ``sha256:<hex>`` of the file's bytes.
    """

    frame: pd.DataFrame
    path: Path
    digest: str

    @property
    def info(self) -> DatasetInfo:
        """The dataset as profile entries cite it."""
        return DatasetInfo(name=self.path.name, digest=self.digest)

    def record(self) -> dict[str, str]:
        """The ``{"name", "digest"}`` mapping of :attr:`EvaluationOutcome.datasets`."""
        return {"name": self.path.name, "digest": self.digest}


def load_table(value: Any, *, option: str = "data") -> Table:
    """Read a CSV or Parquet file; relative paths are taken from the working directory.

    Raises:
        InvalidInputError: not a path, unknown format, unreadable or empty file.
        NotFoundError: the file does not exist.
    """
    if not isinstance(value, str | Path) or not str(value).strip():
        raise InvalidInputError(
            f"option {option!r} must be a path to a CSV or Parquet file", field=option
        )
    path = Path(value).expanduser()
    path = path if path.is_absolute() else Path.cwd() / path
    if not path.is_file():
        raise NotFoundError(f"{option}: file {path} not found", field=option, path=str(path))
    name = path.name.lower()
    if not name.endswith(_CSV + _PARQUET):
        raise InvalidInputError(
            f"{option}: {path.name} is neither CSV (.csv) nor Parquet (.parquet, .pq)",
            field=option,
        )
    pd = require("pandas")
    digest, _ = dataset_digest(path)
    try:
        frame = pd.read_parquet(path) if name.endswith(_PARQUET) else pd.read_csv(path)
    except Exception as exc:  # pandas/pyarrow raise many unrelated types
        raise InvalidInputError(f"{option}: cannot read {path.name}: {exc}", field=option) from exc
    frame.columns = [str(c) for c in frame.columns]  # Parquet allows non-string names
    if frame.empty:
        raise InvalidInputError(f"{option}: {path.name} has no rows", field=option)
    return Table(frame=frame, path=path, digest=digest)


def require_columns(frame: pd.DataFrame, columns: Sequence[str], *, option: str) -> None:
    """Check that every named column exists.

    Raises:
        InvalidInputError: naming the option and the missing column.
    """
    present = {str(c) for c in frame.columns}
    for column in columns:
        if column not in present:
            shown = ", ".join(sorted(present)[:20])
            raise InvalidInputError(
                f"option {option!r}: no column {column!r} in the data (columns: {shown})",
                field=option,
                value=column,
            )


def value_text(value: Any) -> str:
    """How a cell value is written in slices and group names.

    Integral floats lose their ``.0`` (pandas turns integer columns with gaps into
    floats), missing values become ``(missing)``, everything else is ``str()``.
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return _MISSING
    if hasattr(value, "item") and not isinstance(value, str):
        value = value.item()  # numpy scalar -> Python scalar
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return _MISSING if str(value) in ("nan", "NaT", "<NA>") else str(value)


def same_value(a: Any, b: Any) -> bool:
    """Whether two label values are the same (``1`` matches ``1.0`` and ``"1"``)."""
    try:
        if a == b:
            return True
    except (TypeError, ValueError):
        pass
    return value_text(a) == value_text(b)


def binary_target(
    frame: pd.DataFrame, label: str, positive_label: Any
) -> tuple[np.ndarray, list[Any]]:
    """Turn the label column into booleans (True = positive class).

    Returns:
        ``(y_true, distinct label values)``.

    Raises:
        InvalidInputError: missing labels, not exactly two classes, or a positive
            label that is not one of them (``field`` names ``label`` or ``positive_label``).
    """
    column = frame[label]
    if column.isna().any():
        raise InvalidInputError(
            f"option 'label': column {label!r} has {int(column.isna().sum())} missing values",
            field="label",
        )
    values = list(column.unique())
    if len(values) != 2:
        shown = ", ".join(repr(value_text(v)) for v in values[:10])
        raise InvalidInputError(
            f"option 'label': column {label!r} must hold exactly two classes, found "
            f"{len(values)} ({shown})",
            field="label",
        )
    matches = [v for v in values if same_value(v, positive_label)]
    if not matches:
        raise InvalidInputError(
            f"option 'positive_label': {positive_label!r} is not a value of column {label!r} "
            f"(values: {', '.join(repr(value_text(v)) for v in values)})",
            field="positive_label",
        )
    return (column == matches[0]).to_numpy(dtype=bool), values


def resolve_features(
    value: Any, frame: pd.DataFrame, *, label: str, exclude: Sequence[str], model: Any
) -> list[str]:
    """The columns to give the model (see the ``features`` option of the evaluators).

    Raises:
        InvalidInputError: an unknown column, the label among them, or none left.
    """
    columns = [str(c) for c in frame.columns]
    if value is None:
        trained_on = getattr(model, "feature_names_in_", None)
        if trained_on is not None:  # the model knows its columns: use them, in order
            features = [str(n) for n in trained_on]
            require_columns(frame, features, option="features")
            return features
        features = [c for c in columns if c != label and c not in exclude]
    elif value == "all":
        features = [c for c in columns if c != label]
    else:
        features = opt_columns({"features": value}, "features") or []
        require_columns(frame, features, option="features")
        if label in features:
            raise InvalidInputError(
                f"option 'features' includes the label {label!r}", field="features"
            )
    if not features:
        raise InvalidInputError(
            "option 'features': no columns left to predict from", field="features"
        )
    return features


def to_binary(raw: Any, classes: list[Any], positive: Any, *, option: str) -> np.ndarray:
    """Map predicted class values onto True/False.

    Raises:
        InvalidInputError: a predicted value the label never takes (``field`` = ``option``).
    """
    pd = require("pandas")
    series = pd.Series(list(raw) if not hasattr(raw, "ndim") else raw.ravel())
    predicted = list(series.unique())
    unknown = [v for v in predicted if not any(same_value(v, c) for c in classes)]
    if unknown:
        odd = ", ".join(repr(value_text(v)) for v in unknown[:5])
        known = ", ".join(repr(value_text(c)) for c in classes)
        raise InvalidInputError(
            f"option {option!r}: the model predicts {odd}, which the label never takes ({known})",
            field=option,
        )
    positives = [v for v in predicted if same_value(v, positive)]
    labels: np.ndarray = series.isin(positives).to_numpy(dtype=bool)
    return labels
