"""The fairness evaluator agrees with fairlearn and refuses bad options by name."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import (
    MetricFrame,
    count,
    demographic_parity_difference,
    demographic_parity_ratio,
    equalized_odds_difference,
    equalized_odds_ratio,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from _builders import evaluation_context
from charter.domain.errors import CharterError, InvalidInputError, NotFoundError
from charter.domain.profile import BiasAuditEntry, EvaluationEntry, ProfileDocument
from charter.evaluation.base import EvaluationContext, EvaluationOutcome
from charter.evaluation.fairness import FairnessEvaluator

Run = Callable[..., EvaluationOutcome]


def make_context(artifact_dir: Path, options: dict[str, Any]) -> EvaluationContext:
    return evaluation_context(artifact_dir, options, name="credit")


def expected_frame(y: Any, pred: Any, groups: Any) -> MetricFrame:
    return MetricFrame(
        metrics={
            "selection_rate": selection_rate,
            "true_positive_rate": true_positive_rate,
            "false_positive_rate": false_positive_rate,
            "accuracy": accuracy_score,
            "count": count,
        },
        y_true=y,
        y_pred=pred,
        sensitive_features=groups,
    )


def audit(outcome: EvaluationOutcome, feature: str, metric: str) -> BiasAuditEntry:
    [entry] = [
        b
        for b in outcome.document.bias_audits
        if b.sensitive_feature == feature and b.metric == metric
    ]
    return entry


def evaluation(outcome: EvaluationOutcome, name: str, slice_: str | None) -> EvaluationEntry:
    [entry] = [e for e in outcome.document.evaluations if e.name == name and e.slice == slice_]
    return entry


@pytest.fixture(scope="module")
def credit(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Synthetic lending data where income is a proxy for sex, and a rare region."""
    folder = tmp_path_factory.mktemp("credit")
    rng = np.random.default_rng(7)
    n = 3000
    sex = rng.choice(["female", "male"], n, p=[0.35, 0.65])
    region = rng.choice(["north", "south", "islands"], n, p=[0.6, 0.37, 0.03])
    income = rng.normal(40, 12, n) + np.where(sex == "male", 9, 0)  # historical pay gap
    debt = rng.gamma(2.0, 6.0, n)
    years = rng.integers(0, 30, n)
    score = 0.09 * income - 0.08 * debt + 0.03 * years + rng.normal(0, 1, n)
    frame = pd.DataFrame(
        {
            "income": income,
            "debt": debt,
            "years": years,
            "sex": sex,
            "region": region,
            "approved": (score > 3.2).astype(int),
        }
    )
    features = ["income", "debt", "years"]
    model = LogisticRegression(max_iter=1000).fit(frame[features], frame["approved"])
    data = folder / "credit.csv"
    frame.to_csv(data, index=False)
    artifact = folder / "artifact"
    artifact.mkdir()
    joblib.dump(model, artifact / "model.joblib")
    (artifact / "config.json").write_text("{}")
    return {
        "data": data,
        "artifact": artifact,
        "frame": frame,
        "model": model,
        "pred": model.predict(frame[features]),
        "features": features,
    }


@pytest.fixture
def run(credit: dict[str, Any]) -> Run:
    def go(artifact: Path | None = None, **options: Any) -> EvaluationOutcome:
        merged = {"data": str(credit["data"]), "label": "approved", "sensitive": "sex", **options}
        merged = {k: v for k, v in merged.items() if v is not None}
        ctx = make_context(artifact or credit["artifact"], merged)
        return FairnessEvaluator().evaluate(ctx)

    return go


def test_numbers_equal_fairlearns_on_synthetic_lending_data(
    credit: dict[str, Any], run: Run
) -> None:
    outcome = run(sensitive=["sex", "region"])
    frame, pred = credit["frame"], credit["pred"]
    y = frame["approved"]
    for feature in ("sex", "region"):
        expected = expected_frame(y, pred, frame[feature]).by_group
        for metric in ("selection_rate", "true_positive_rate", "false_positive_rate", "accuracy"):
            entry = audit(outcome, feature, metric)
            got = {g.group: (g.value, g.size) for g in entry.groups}
            want = {
                str(k): (expected.at[k, metric], int(expected.at[k, "count"]))
                for k in expected.index
            }
            assert got.keys() == want.keys()
            for group, (value, size) in want.items():
                assert got[group][0] == pytest.approx(value, abs=1e-12)
                assert got[group][1] == size
        on = f"feature={feature}"
        s = frame[feature]
        dpr = demographic_parity_ratio(y, pred, sensitive_features=s)
        assert evaluation(outcome, "demographic_parity_ratio", on).value == pytest.approx(dpr)
        # fairlearn's ratio is the schema's min/max ratio of the selection rates.
        assert audit(outcome, feature, "selection_rate").ratio == pytest.approx(dpr)
        assert evaluation(outcome, "demographic_parity_difference", on).value == pytest.approx(
            demographic_parity_difference(y, pred, sensitive_features=s)
        )
        assert evaluation(outcome, "equalized_odds_difference", on).value == pytest.approx(
            equalized_odds_difference(y, pred, sensitive_features=s)
        )
        assert evaluation(outcome, "equalized_odds_ratio", on).value == pytest.approx(
            equalized_odds_ratio(y, pred, sensitive_features=s)
        )
    assert evaluation(outcome, "accuracy", None).value == pytest.approx(accuracy_score(y, pred))
    # The proxy shows: women are approved less often, enough to fail the four-fifths rule.
    assert outcome.summary["features"]["sex"]["four_fifths_rule"] == "adverse impact"


def test_the_outcome_is_a_valid_profile_with_provenance_of_the_data(
    credit: dict[str, Any], run: Run
) -> None:
    outcome = run(sensitive=["sex", "region"])
    doc = outcome.document
    assert ProfileDocument.model_validate(doc.model_dump(by_alias=True)) == doc
    # The registry records config and summary as canonical JSON: no NaN, no numpy types.
    json.dumps([outcome.config, outcome.summary, outcome.datasets], allow_nan=False)
    digest = "sha256:" + hashlib.sha256(credit["data"].read_bytes()).hexdigest()
    assert outcome.datasets == ({"name": "credit.csv", "digest": digest},)
    assert all(e.dataset is not None and e.dataset.digest == digest for e in doc.entries())
    assert len(doc.bias_audits) == 2 * 4
    assert {e.slice for e in doc.evaluations} == {None, "feature=sex", "feature=region"}
    assert all(e.samples == 3000 for e in doc.evaluations)
    assert evaluation(outcome, "demographic_parity_difference", "feature=sex").direction == (
        "lower_is_better"
    )
    assert outcome.config == {
        "data": str(credit["data"]),
        "label": "approved",
        "positive_label": 1,
        "threshold": None,
        "model_file": "model.joblib",
        "sensitive": ["sex", "region"],
        "features": ["income", "debt", "years"],
    }


def test_small_groups_are_reported_with_their_size(run: Run) -> None:
    outcome = run(sensitive="region")
    groups = {g.group: g.size for g in audit(outcome, "region", "selection_rate").groups}
    assert 50 < groups["islands"] < 150
    assert outcome.summary["features"]["region"]["smallest_group"] == {
        "group": "islands",
        "size": groups["islands"],
    }


def test_breast_cancer_with_a_derived_attribute_parquet_and_a_pipeline(tmp_path: Path) -> None:
    data = load_breast_cancer(as_frame=True)
    frame = data.frame
    features = list(data.feature_names)
    # A derived attribute with a rare group: tumours in the top 5% of mean area.
    frame["size_band"] = pd.cut(
        frame["mean area"],
        [0, 500, frame["mean area"].quantile(0.95), np.inf],
        labels=["small", "medium", "large"],
    )
    frame["size_band"] = frame["size_band"].astype(str)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    model.fit(frame[features], frame["target"])
    (tmp_path / "art").mkdir()
    joblib.dump(model, tmp_path / "art" / "clf.pkl")
    frame.to_parquet(tmp_path / "cancer.parquet")
    # positive_label 0: malignant is the class this screen must find.
    ctx = make_context(
        tmp_path / "art",
        {
            "data": str(tmp_path / "cancer.parquet"),
            "label": "target",
            "sensitive": ["size_band"],
            "positive_label": 0,
        },
    )
    outcome = FairnessEvaluator().evaluate(ctx)
    assert outcome.config["features"] == features  # from the pipeline's feature_names_in_
    y = (frame["target"] == 0).astype(int)
    pred = (model.predict(frame[features]) == 0).astype(int)
    expected = expected_frame(y, pred, frame["size_band"]).by_group
    for metric in ("selection_rate", "accuracy", "true_positive_rate"):
        got = {g.group: g.value for g in audit(outcome, "size_band", metric).groups}
        for group in got:
            assert got[group] == pytest.approx(expected.at[group, metric])
    dpr = demographic_parity_ratio(y, pred, sensitive_features=frame["size_band"])
    assert evaluation(outcome, "demographic_parity_ratio", "feature=size_band").value == (
        pytest.approx(dpr)
    )
    sizes = {g.group: g.size for g in audit(outcome, "size_band", "selection_rate").groups}
    assert sum(sizes.values()) == len(frame)
    # Every large tumour is malignant: no negatives, so no false positive rate there.
    assert (frame.loc[frame["size_band"] == "large", "target"] == 0).all()
    fpr_groups = {g.group for g in audit(outcome, "size_band", "false_positive_rate").groups}
    assert fpr_groups == {"small", "medium"}
    assert any("left out large" in note for note in outcome.summary["notes"])


def test_non_string_groups_and_missing_values_become_named_groups(
    credit: dict[str, Any], tmp_path: Path, run: Run
) -> None:
    frame = credit["frame"].copy()
    frame["band"] = (frame["years"] // 10).astype(float)
    frame.loc[frame.index[:40], "band"] = np.nan
    frame.to_csv(tmp_path / "bands.csv", index=False)
    outcome = run(data=str(tmp_path / "bands.csv"), sensitive="band")
    groups = {g.group: g.size for g in audit(outcome, "band", "accuracy").groups}
    assert groups["(missing)"] == 40
    assert {"0", "1", "2"} <= groups.keys()


def test_an_undefined_true_positive_rate_is_left_out_not_reported_as_zero(
    credit: dict[str, Any], tmp_path: Path, run: Run
) -> None:
    frame = credit["frame"].copy()
    frame["cohort"] = np.where(frame["approved"] == 1, "a", "b")
    frame.loc[frame.index[:5], "cohort"] = "a"
    frame.to_csv(tmp_path / "cohort.csv", index=False)
    outcome = run(data=str(tmp_path / "cohort.csv"), sensitive="cohort")
    tpr_groups = {g.group for g in audit(outcome, "cohort", "true_positive_rate").groups}
    assert tpr_groups == {"a"}  # cohort b has no approved rows
    assert {g.group for g in audit(outcome, "cohort", "selection_rate").groups} == {"a", "b"}
    assert any("true_positive_rate of cohort" in n for n in outcome.summary["notes"])


def test_features_all_for_a_model_trained_with_the_sensitive_column(
    credit: dict[str, Any], tmp_path: Path, run: Run
) -> None:
    frame = credit["frame"][["income", "debt", "years", "approved"]].copy()
    frame["female"] = (credit["frame"]["sex"] == "female").astype(int)
    columns = ["income", "debt", "years", "female"]
    model = LogisticRegression(max_iter=1000).fit(frame[columns].to_numpy(), frame["approved"])
    (tmp_path / "art").mkdir()
    joblib.dump(model, tmp_path / "art" / "model.joblib")
    frame[[*columns, "approved"]].to_csv(tmp_path / "d.csv", index=False)
    common = {"artifact": tmp_path / "art", "data": str(tmp_path / "d.csv"), "sensitive": "female"}
    with pytest.raises(InvalidInputError) as caught:  # default leaves 'female' out
        run(**common)
    assert caught.value.details["field"] == "features"
    outcome = run(**common, features="all")
    assert outcome.config["features"] == columns
    expected = expected_frame(
        frame["approved"], model.predict(frame[columns].to_numpy()), frame["female"]
    ).by_group
    got = {g.group: g.value for g in audit(outcome, "female", "selection_rate").groups}
    assert got == pytest.approx(
        {"0": expected.at[0, "selection_rate"], "1": expected.at[1, "selection_rate"]}
    )


def test_a_threshold_on_probabilities(credit: dict[str, Any], run: Run) -> None:
    outcome = run(threshold=0.8)
    frame = credit["frame"]
    proba = credit["model"].predict_proba(frame[credit["features"]])[:, 1]
    expected = expected_frame(frame["approved"], (proba >= 0.8).astype(int), frame["sex"])
    got = {g.group: g.value for g in audit(outcome, "sex", "selection_rate").groups}
    assert got == pytest.approx(expected.by_group["selection_rate"].to_dict())
    assert outcome.config["threshold"] == 0.8


def test_a_predictor_function_instead_of_a_model_file(
    credit: dict[str, Any], tmp_path: Path, run: Run
) -> None:
    (tmp_path / "predict.py").write_text(
        "def approve(frame):\n    return (frame['income'] > 45).astype(int)\n"
    )
    (tmp_path / "empty").mkdir()
    outcome = run(artifact=tmp_path / "empty", predictor=f"{tmp_path / 'predict.py'}:approve")
    frame = credit["frame"]
    expected = selection_rate(frame["approved"], (frame["income"] > 45).astype(int))
    overall = sum(g.value * g.size for g in audit(outcome, "sex", "selection_rate").groups)
    assert overall / len(frame) == pytest.approx(expected)
    assert "model_file" not in outcome.config


def test_progress_is_reported_per_sensitive_feature(credit: dict[str, Any]) -> None:
    calls: list[tuple[int, int]] = []
    options = {"data": str(credit["data"]), "label": "approved", "sensitive": ["sex", "region"]}
    ctx = make_context(credit["artifact"], options)
    ctx = EvaluationContext(
        model=ctx.model,
        version=ctx.version,
        artifact_dir=ctx.artifact_dir,
        profile=ctx.profile,
        options=options,
        progress=lambda done, total: calls.append((done, total)),
    )
    FairnessEvaluator().evaluate(ctx)
    assert calls == [(1, 2), (2, 2)]


def _two_models(tmp: Path, credit: dict[str, Any]) -> Path:
    folder = tmp / "two"
    folder.mkdir()
    shutil.copy(credit["artifact"] / "model.joblib", folder / "a.joblib")
    shutil.copy(credit["artifact"] / "model.joblib", folder / "b.pkl")
    return folder


@pytest.mark.parametrize(
    ("options", "error", "field"),
    [
        ({"data": "missing.csv"}, NotFoundError, "data"),
        ({"data": "{tmp}/data.txt"}, InvalidInputError, "data"),
        ({"data": None}, InvalidInputError, "data"),
        ({"label": "nope"}, InvalidInputError, "label"),
        ({"label": "region"}, InvalidInputError, "label"),  # three classes
        ({"label": None}, InvalidInputError, "label"),
        ({"positive_label": "yes"}, InvalidInputError, "positive_label"),
        ({"sensitive": "gender"}, InvalidInputError, "sensitive"),
        ({"sensitive": None}, InvalidInputError, "sensitive"),
        ({"sensitive": ["sex", "sex"]}, InvalidInputError, "sensitive"),
        ({"sensitive": "approved"}, InvalidInputError, "sensitive"),
        ({"sensitive": "income"}, InvalidInputError, "sensitive"),  # continuous: too many groups
        ({"features": ["income", "wealth"]}, InvalidInputError, "features"),
        ({"features": ["income", "approved"]}, InvalidInputError, "features"),
        ({"threshold": 1.5}, InvalidInputError, "threshold"),
        ({"model_file": "../credit.csv"}, InvalidInputError, "model_file"),
        ({"model_file": "other.joblib"}, NotFoundError, "model_file"),
        ({"model_file": "config.json"}, InvalidInputError, "model_file"),
        ({"predictor": "no_colon"}, InvalidInputError, "predictor"),
        ({"predictor": "charter_no_such_module:f"}, InvalidInputError, "predictor"),
        ({"predictor": "os:f", "model_file": "model.joblib"}, InvalidInputError, "predictor"),
        ({"sensitve": "sex"}, InvalidInputError, "sensitve"),
        ({"artifact": "empty"}, NotFoundError, "model_file"),
        ({"artifact": "two"}, InvalidInputError, "model_file"),
    ],
)
def test_bad_options_are_refused_by_name(
    options: dict[str, Any],
    error: type[CharterError],
    field: str,
    credit: dict[str, Any],
    tmp_path: Path,
    run: Run,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data.txt").write_text("x\n1\n")
    (tmp_path / "empty").mkdir()
    _two_models(tmp_path, credit)
    options = {k: (v.format(tmp=tmp_path) if isinstance(v, str) else v) for k, v in options.items()}
    artifact = options.pop("artifact", None)
    with pytest.raises(error) as caught:
        run(artifact=tmp_path / artifact if artifact else None, **options)
    assert caught.value.details["field"] == field
    assert field in caught.value.message


def test_relative_data_paths_are_read_from_the_working_directory(
    credit: dict[str, Any], tmp_path: Path, run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copy(credit["data"], tmp_path / "here.csv")
    monkeypatch.chdir(tmp_path)
    outcome = run(data="here.csv")
    assert outcome.config["data"] == str(tmp_path / "here.csv")


def test_predictions_the_label_never_takes_are_refused(
    credit: dict[str, Any], tmp_path: Path, run: Run
) -> None:
    frame = credit["frame"].copy()
    frame["approved"] = np.where(frame["approved"] == 1, "yes", "no")
    frame.to_csv(tmp_path / "words.csv", index=False)
    with pytest.raises(InvalidInputError) as caught:  # the model's classes are 0/1
        run(data=str(tmp_path / "words.csv"), positive_label="yes")
    assert caught.value.details["field"] == "positive_label"
    assert "model's classes" in caught.value.message
    (tmp_path / "p.py").write_text("def f(frame):\n    return ['maybe'] * len(frame)\n")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidInputError) as caught:
        run(
            artifact=tmp_path / "empty",
            data=str(tmp_path / "words.csv"),
            positive_label="yes",
            predictor=f"{tmp_path / 'p.py'}:f",
        )
    assert caught.value.details["field"] == "predictor"
    assert "'maybe', which the label never takes" in caught.value.message


def test_options_are_checked_before_the_model_runs(tmp_path: Path, run: Run) -> None:
    (tmp_path / "empty").mkdir()  # no model: any model error would come first otherwise
    with pytest.raises(InvalidInputError) as caught:
        run(artifact=tmp_path / "empty", sensitive="gender")
    assert caught.value.details["field"] == "sensitive"
