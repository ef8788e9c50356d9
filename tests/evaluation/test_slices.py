"""The slice-performance evaluator: per-slice metrics, bootstrap intervals, bad options."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, precision_score, recall_score, roc_auc_score
from sklearn.svm import LinearSVC

from _builders import evaluation_context
from charter.domain.errors import InvalidInputError
from charter.domain.profile import EvaluationEntry, ProfileDocument
from charter.evaluation.base import EvaluationContext, EvaluationOutcome
from charter.evaluation.slices import Rows, SlicePerformanceEvaluator, bootstrap_metrics

Run = Callable[..., EvaluationOutcome]
SKLEARN = {"accuracy": accuracy_score, "precision": precision_score, "recall": recall_score}


def make_context(artifact_dir: Path, options: dict[str, Any]) -> EvaluationContext:
    return evaluation_context(artifact_dir, options, name="triage")


def entry(outcome: EvaluationOutcome, name: str, slice_: str | None) -> EvaluationEntry:
    [found] = [e for e in outcome.document.evaluations if e.name == name and e.slice == slice_]
    return found


@pytest.fixture(scope="module")
def triage(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Accurate overall, wrong on a rare region where the signal runs the other way."""
    folder = tmp_path_factory.mktemp("triage")
    rng = np.random.default_rng(11)
    n = 4000
    region = rng.choice(["north", "south", "islands"], n, p=[0.6, 0.36, 0.04])
    x, z = rng.normal(size=n), rng.normal(size=n)
    signal = np.where(region == "islands", -x, x) + 0.35 * rng.normal(size=n)
    y = (signal > 0).astype(int)
    tier = np.where((y == 1) & (rng.random(n) < 0.05), "gold", "standard")  # gold: positives only
    age = rng.integers(20, 70, n)
    frame = pd.DataFrame(
        {
            "x": x,
            "z": z,
            "region": region,
            "tier": tier,
            "age": age,
            "age_f": np.where(rng.random(n) < 0.1, np.nan, age),
            "y": y,
        }
    )
    features = ["x", "z"]
    model = LogisticRegression().fit(frame[features], y)
    frame.to_csv(folder / "triage.csv", index=False)
    (folder / "art").mkdir()
    joblib.dump(model, folder / "art" / "model.joblib")
    return {
        "data": folder / "triage.csv",
        "artifact": folder / "art",
        "frame": frame,
        "model": model,
        "features": features,
    }


@pytest.fixture
def run(triage: dict[str, Any]) -> Run:
    def go(artifact: Path | None = None, **options: Any) -> EvaluationOutcome:
        merged = {
            "data": str(triage["data"]),
            "label": "y",
            "features": triage["features"],
            "bootstrap": 200,
            **options,
        }
        ctx = make_context(artifact or triage["artifact"], merged)
        return SlicePerformanceEvaluator().evaluate(ctx)

    return go


def test_a_rare_slice_that_regresses_shows_the_drop(run: Run, triage: dict[str, Any]) -> None:
    outcome = run(slices=["region"])
    overall = entry(outcome, "accuracy", None)
    islands = entry(outcome, "accuracy", "region=islands")
    assert overall.value > 0.85
    assert islands.value < 0.3
    assert islands.samples == int((triage["frame"]["region"] == "islands").sum())
    assert islands.ci is not None and overall.ci is not None
    assert islands.ci.high < overall.ci.low
    drop = outcome.summary["largest_drop"]["accuracy"]
    assert drop["slice"] == "region=islands"
    assert drop["drop"] == pytest.approx(overall.value - islands.value)
    assert {e.slice for e in outcome.document.evaluations} == {
        None,
        "region=islands",
        "region=north",
        "region=south",
    }


def test_point_estimates_equal_sklearns(run: Run, triage: dict[str, Any]) -> None:
    outcome = run(slices=["region", "tier=standard"], bootstrap=0)
    frame, model = triage["frame"], triage["model"]
    pred = model.predict(frame[triage["features"]])
    proba = model.predict_proba(frame[triage["features"]])[:, 1]
    masks = {
        None: np.ones(len(frame), bool),
        "tier=standard": frame["tier"] == "standard",
        **{f"region={r}": frame["region"] == r for r in ("north", "south", "islands")},
    }
    for name, mask in masks.items():
        y = frame["y"][mask]
        for metric, score in SKLEARN.items():
            assert entry(outcome, metric, name).value == pytest.approx(score(y, pred[mask]))
        assert entry(outcome, "roc_auc", name).value == pytest.approx(roc_auc_score(y, proba[mask]))
        assert entry(outcome, "accuracy", name).ci is None


def test_resampled_metrics_equal_sklearns_with_ties() -> None:
    rng = np.random.default_rng(3)
    n = 300
    y = rng.random(n) < 0.4
    pred = rng.random(n) < 0.5
    scores = rng.integers(0, 6, n).astype(float)  # heavy ties
    picks = rng.integers(0, n, (5, n))
    got = bootstrap_metrics(Rows.of(y, pred, scores), picks)
    for i, rows in enumerate(picks):
        w = np.bincount(rows, minlength=n)  # a resample is the data weighted by counts
        assert got["accuracy"][i] == pytest.approx(accuracy_score(y, pred, sample_weight=w))
        assert got["precision"][i] == pytest.approx(precision_score(y, pred, sample_weight=w))
        assert got["recall"][i] == pytest.approx(recall_score(y, pred, sample_weight=w))
        assert got["roc_auc"][i] == pytest.approx(roc_auc_score(y, scores, sample_weight=w))
    positives = int(y.sum())
    one_class = bootstrap_metrics(Rows.of(y[y], pred[y], scores[y]), np.arange(positives)[None])
    assert np.isnan(one_class["roc_auc"][0])
    no_scores = bootstrap_metrics(Rows.of(y, pred, None), picks)
    assert "roc_auc" not in no_scores


def test_intervals_contain_the_point_and_are_deterministic_for_a_seed(run: Run) -> None:
    first = run(slices=["region"], seed=5, confidence=0.9)
    again = run(slices=["region"], seed=5, confidence=0.9)
    other = run(slices=["region"], seed=6, confidence=0.9)
    assert first.document == again.document
    assert first.document != other.document
    for e in first.document.evaluations:
        assert e.ci is not None
        assert e.ci.level == 0.9
        assert e.ci.low <= e.value <= e.ci.high, (e.name, e.slice)
        assert e.ci.low < e.ci.high
    assert first.config["seed"] == 5 and first.config["bootstrap"] == 200


def test_a_slice_interval_does_not_depend_on_the_other_slices_asked_for(run: Run) -> None:
    alone = run(slices="region=islands")
    together = run(slices=["tier", "region"])
    for metric in ("accuracy", "precision", "recall", "roc_auc"):
        assert entry(alone, metric, "region=islands") == entry(together, metric, "region=islands")


def test_roc_auc_is_left_out_where_a_slice_has_one_class(run: Run) -> None:
    outcome = run(slices=["tier"])
    names = {e.name for e in outcome.document.evaluations if e.slice == "tier=gold"}
    assert names == {"accuracy", "precision", "recall"}
    assert "roc_auc: left out on tier=gold (only one class present)" in outcome.summary["notes"]
    assert entry(outcome, "roc_auc", "tier=standard").value > 0.5


def test_numeric_values_match_as_text(run: Run, triage: dict[str, Any]) -> None:
    frame = triage["frame"]
    outcome = run(slices=["age=30", "age_f=30", "age_f=(missing)", "age_f=41.0"], bootstrap=0)
    assert entry(outcome, "accuracy", "age=30").samples == int((frame["age"] == 30).sum())
    assert entry(outcome, "accuracy", "age_f=30").samples == int((frame["age_f"] == 30).sum())
    assert entry(outcome, "accuracy", "age_f=41.0").samples == int((frame["age_f"] == 41).sum())
    missing = entry(outcome, "accuracy", "age_f=(missing)").samples
    assert missing == int(frame["age_f"].isna().sum())


def test_the_outcome_is_a_valid_profile(run: Run, triage: dict[str, Any]) -> None:
    outcome = run(slices=["region", "tier"])
    doc = outcome.document
    assert ProfileDocument.model_validate(doc.model_dump(by_alias=True)) == doc
    # The registry records config and summary as canonical JSON: no NaN, no numpy types.
    json.dumps([outcome.config, outcome.summary, outcome.datasets], allow_nan=False)
    assert outcome.config["slices"] == [
        "region=islands",
        "region=north",
        "region=south",
        "tier=gold",
        "tier=standard",
    ]
    assert outcome.datasets[0]["name"] == "triage.csv"
    assert outcome.summary["slices"] == 5
    assert all(e.unit == "ratio" and e.direction == "higher_is_better" for e in doc.evaluations)


def test_a_model_with_only_a_decision_function_still_gets_roc_auc(
    triage: dict[str, Any], tmp_path: Path, run: Run
) -> None:
    frame = triage["frame"]
    svm = LinearSVC().fit(frame[triage["features"]], frame["y"])
    (tmp_path / "svm").mkdir()
    joblib.dump(svm, tmp_path / "svm" / "svm.joblib")
    outcome = run(artifact=tmp_path / "svm", bootstrap=0)
    expected = roc_auc_score(frame["y"], svm.decision_function(frame[triage["features"]]))
    assert entry(outcome, "roc_auc", None).value == pytest.approx(expected)


def test_a_predictor_gives_scores_only_with_a_threshold(
    triage: dict[str, Any], tmp_path: Path, run: Run
) -> None:
    (tmp_path / "p.py").write_text(
        "import numpy as np\n"
        "def label(frame):\n    return (frame['x'] > 0).astype(int)\n"
        "def proba(frame):\n    return 1 / (1 + np.exp(-3 * frame['x']))\n"
    )
    (tmp_path / "empty").mkdir()
    labels = run(artifact=tmp_path / "empty", predictor=f"{tmp_path}/p.py:label", bootstrap=0)
    assert "roc_auc" not in {e.name for e in labels.document.evaluations}
    assert any("no scores" in note for note in labels.summary["notes"])
    probs = run(
        artifact=tmp_path / "empty", predictor=f"{tmp_path}/p.py:proba", threshold=0.5, bootstrap=0
    )
    frame = triage["frame"]
    assert entry(probs, "accuracy", None).value == entry(labels, "accuracy", None).value
    expected = roc_auc_score(frame["y"], frame["x"])
    assert entry(probs, "roc_auc", None).value == pytest.approx(expected)


def test_progress_counts_the_whole_data_and_each_slice(triage: dict[str, Any]) -> None:
    calls: list[tuple[int, int]] = []
    options = {
        "data": str(triage["data"]),
        "label": "y",
        "features": triage["features"],
        "slices": "region",
        "bootstrap": 10,
    }
    base = make_context(triage["artifact"], options)
    ctx = EvaluationContext(
        model=base.model,
        version=base.version,
        artifact_dir=base.artifact_dir,
        profile=base.profile,
        options=options,
        progress=lambda done, total: calls.append((done, total)),
    )
    SlicePerformanceEvaluator().evaluate(ctx)
    assert calls == [(1, 4), (2, 4), (3, 4), (4, 4)]


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"slices": "=north"}, "slices"),
        ({"slices": "region=north=south"}, "slices"),
        ({"slices": "region="}, "slices"),
        ({"slices": " region=north"}, "slices"),
        ({"slices": "continent=europe"}, "slices"),
        ({"slices": "continent"}, "slices"),
        ({"slices": "region=atlantis"}, "slices"),
        ({"slices": ["region=north", "region=north"]}, "slices"),
        ({"slices": 5}, "slices"),
        ({"slices": ["x"]}, "slices"),  # a continuous column: thousands of slices
        ({"bootstrap": -1}, "bootstrap"),
        ({"bootstrap": "many"}, "bootstrap"),
        ({"seed": -3}, "seed"),
        ({"confidence": 1.0}, "confidence"),
        ({"confidence": "high"}, "confidence"),
        ({"label": "region"}, "label"),
        ({"label": "tier", "positive_label": "platinum"}, "positive_label"),
        ({"features": ["x", "w"]}, "features"),
        ({"slice": "region"}, "slice"),
    ],
)
def test_bad_options_are_refused_by_name(options: dict[str, Any], field: str, run: Run) -> None:
    with pytest.raises(InvalidInputError) as caught:
        run(**options)
    assert caught.value.details["field"] == field
    assert field in caught.value.message


@pytest.mark.slow
def test_bootstrap_on_many_rows_stays_quick(tmp_path: Path) -> None:
    import time

    rng = np.random.default_rng(0)
    n = 100_000
    frame = pd.DataFrame({"x": rng.normal(size=n), "g": rng.choice(list("abcd"), n)})
    frame["y"] = (frame["x"] + rng.normal(size=n) > 0).astype(int)
    frame.to_parquet(tmp_path / "big.parquet")
    (tmp_path / "art").mkdir()
    joblib.dump(LogisticRegression().fit(frame[["x"]], frame["y"]), tmp_path / "art" / "m.joblib")
    ctx = make_context(
        tmp_path / "art",
        {"data": str(tmp_path / "big.parquet"), "label": "y", "features": ["x"], "slices": "g"},
    )
    started = time.perf_counter()
    outcome = SlicePerformanceEvaluator().evaluate(ctx)
    assert len(outcome.document.evaluations) == 5 * 4
    assert time.perf_counter() - started < 60


def test_slices_are_checked_before_the_model_runs(tmp_path: Path, run: Run) -> None:
    (tmp_path / "empty").mkdir()  # no model: any model error would come first otherwise
    with pytest.raises(InvalidInputError) as caught:
        run(artifact=tmp_path / "empty", slices="region=atlantis")
    assert caught.value.details["field"] == "slices"
