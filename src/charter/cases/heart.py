"""Case 2 — diagnostic assistant: a retrain that misses heart disease in women.

Data: the Cleveland heart-disease records shipped in scikit-lego
(``sklego.datasets.load_hearts``: 303 patients, 98 women, ``target`` 1 = disease),
split into training rows, a held-out evaluation set and "production" rows that
stand for the patients seen after deployment.

- ``heart-diagnosis@1.0.0``: logistic regression trained on the first 90
  training rows, re-weighted so that women and men (with and without disease)
  weigh the same.
- ``heart-diagnosis@1.1.0`` (``minor``): retrained on all 151 training rows,
  without the re-weighting. Accuracy overall goes up; sensitivity (recall) for
  women goes down.

The first policy looks at overall numbers only, so 1.1.0 is promoted. The
clinical safety board then adds a slice rule (sensitivity for women may not
drop against production, and must stay at least 0.75). Monitoring ingests the
production rows with ``charter observe``: 1.1.0 is flagged at risk;
``charter rollback`` puts 1.0.0 back in one command, with its reason; the
production gate now refuses 1.1.0 on the slice-regression rule.

303 rows leave a handful of positive women per split: the slice numbers are
small-sample (the bootstrap intervals in the profile say how small); the point
is what Charter does with them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from charter.cases._common import (
    Case,
    CaseError,
    Outcome,
    failed_finding,
    write_json,
    write_yaml,
)

__all__ = ["MODEL", "done", "run", "train"]

MODEL = "heart-diagnosis"
SEED = 14
FIRST_BATCH = 90
NUMERIC = ["age", "trestbps", "chol", "thalach", "oldpeak", "ca"]
CATEGORICAL = ["cp", "restecg", "slope", "thal"]
BINARY = ["sex", "fbs", "exang"]
SLICES = "[sex_group, thal=fixed]"
FEMALE = "sex_group=female"

_BASE = """\
schema: charter.policy/v1
stages: [staging, production]
defaults:
  high:
    fairness: []                      # group rates are audited per slice below
    redteam: {max_attack_success_rate: 0.05, if_missing: pass}   # no prompt surface
    evidence: {require: [evaluations]}
"""
POLICY_V1 = _BASE.replace("stages:", "description: Diagnostic models (overall metrics)\nstages:", 1)
POLICY_V1 += """\
rules:
  staging: {metrics: [{metric: accuracy, min: 0.75}]}
  production: {metrics: [{metric: accuracy, min: 0.8}, {metric: recall, min: 0.6}]}
"""
POLICY_V2 = _BASE.replace(
    "stages:", "description: Diagnostic models (overall and per-sex sensitivity)\nstages:", 1
)
POLICY_V2 += f"""\
rules:
  staging: {{metrics: [{{metric: accuracy, min: 0.75}}]}}
  production:
    metrics:
      - {{metric: accuracy, min: 0.8}}
      - {{metric: recall, min: 0.6}}
      - {{metric: recall, slice: "{FEMALE}", min: 0.75}}   # clinical safety board
    regression:
      - {{metric: recall, slice: "{FEMALE}", against: production, max_drop: 0.05}}
"""


def _splits() -> tuple[Any, Any, Any]:
    from sklearn.model_selection import train_test_split
    from sklego.datasets import load_hearts

    data = load_hearts(as_frame=True)
    data["sex_group"] = data["sex"].map({0: "female", 1: "male"})
    strata = data["target"].astype(str) + data["sex"].astype(str)
    train, rest = train_test_split(data, test_size=0.5, random_state=SEED, stratify=strata)
    evaluation, production = train_test_split(
        rest, test_size=0.5, random_state=SEED, stratify=strata[rest.index]
    )
    return train, evaluation, production


def _fit(rows: Any, *, reweight: bool) -> Any:
    from sklearn.compose import make_column_transformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    encode = make_column_transformer(
        (StandardScaler(), NUMERIC),
        (OneHotEncoder(handle_unknown="ignore"), CATEGORICAL),
        ("passthrough", BINARY),
    )
    model = make_pipeline(encode, LogisticRegression(max_iter=3000))
    weights = None
    if reweight:  # every (sex, diagnosis) cell weighs the same in total
        cell = rows["sex"].astype(str) + rows["target"].astype(str)
        weights = (1.0 / cell.map(cell.value_counts())).to_numpy()
        weights = weights / weights.mean()
    return model.fit(rows[NUMERIC + CATEGORICAL + BINARY], rows["target"],
                     logisticregression__sample_weight=weights)  # fmt: skip


def train(folder: Path, version: str) -> dict[str, Path]:
    """Train 1.0.0 or 1.1.0; write the model folder, datasets and held-out metrics."""
    import joblib
    from sklearn.metrics import accuracy_score, recall_score

    train_rows, evaluation, production = _splits()
    first = version == "1.0.0"
    rows = train_rows.iloc[:FIRST_BATCH] if first else train_rows
    model = _fit(rows, reweight=first)
    out = folder / f"model-{version}"
    out.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, out / "model.joblib")
    write_json(out / "params.json", {"reweight_sex_by_outcome": first, "rows": len(rows)})
    paths = {"model": out, "train": folder / f"train-{version}.csv"}
    rows.to_csv(paths["train"], index=False)
    paths["eval"] = folder / "eval.csv"
    evaluation.to_csv(paths["eval"], index=False)
    paths["production"] = folder / "production.csv"
    production.to_csv(paths["production"], index=False)
    predicted = model.predict(evaluation[NUMERIC + CATEGORICAL + BINARY])
    paths["metrics"] = write_json(folder / f"metrics-{version}.json", {
        "accuracy": round(float(accuracy_score(evaluation["target"], predicted)), 4),
        "recall": round(float(recall_score(evaluation["target"], predicted)), 4),
    })  # fmt: skip
    return paths


def observations(folder: Path, version: str) -> Path:
    """Production monitoring: the deployed version's results on the production rows.

    Written as a profile document (overall and per sex, with sample counts), the
    shape ``charter observe --profile`` takes.
    """
    import joblib
    from sklearn.metrics import accuracy_score, recall_score

    _, _, production = _splits()
    model = joblib.load(folder / f"model-{version}" / "model.joblib")
    x, y = production[NUMERIC + CATEGORICAL + BINARY], production["target"]
    predicted = model.predict(x)
    entries: list[dict[str, Any]] = []
    for name, mask in (("", production["sex"].notna()), (FEMALE, production["sex"] == 0),
                       ("sex_group=male", production["sex"] == 1)):  # fmt: skip
        yt, yp = y[mask], predicted[mask.to_numpy()]
        positives = int(yt.sum())
        entry = {"name": "accuracy", "value": round(float(accuracy_score(yt, yp)), 4),
                 "samples": len(yt), "unit": "ratio"}  # fmt: skip
        entries.append({**entry, **({"slice": name} if name else {})})
        if positives:
            recall = round(float(recall_score(yt, yp)), 4)
            entries.append({"name": "recall", "value": recall, "samples": positives,
                            "unit": "ratio", **({"slice": name} if name else {})})  # fmt: skip
    return write_json(folder / f"observed-{version}.json", {"evaluations": entries})


def _version(case: Case, version: str) -> None:
    ref = f"{MODEL}@{version}"
    if not case.has_version(MODEL, version):
        paths = train(case.work, version)
        lineage = ["--parent", "1.0.0", "--change", "minor"] if version == "1.1.0" else []
        recipe = "first 90 rows, sex x outcome re-weighted" if version == "1.0.0" else (
            "all 151 rows, unweighted")  # fmt: skip
        case.run("register", MODEL, str(paths["model"]), "--version", version, *lineage,
                 "--dataset", f"train={paths['train']}", "--dataset", f"eval={paths['eval']}",
                 "--metrics", str(paths["metrics"]), "--param", f"recipe={recipe}",
                 "--run", f"heart-train-{version}")  # fmt: skip
    if not case.evaluated(MODEL, version, "slice-performance"):
        if not (case.work / "eval.csv").exists():
            train(case.work, version)
        case.run("evaluate", ref, "--evaluator", "slice-performance",
                 "--option", f"data={case.work / 'eval.csv'}", "--option", "label=target",
                 "--option", f"slices={SLICES}", "--option", "bootstrap=500")  # fmt: skip
    if not case.is_published(MODEL, version):
        case.run("publish", ref)
    case.render_card(MODEL, version)


def _promote(case: Case, version: str) -> None:
    ref = f"{MODEL}@{version}"
    for stage, approvers in (("staging", ["clinical-lead"]),
                             ("production", ["clinical-lead", "model-validator"])):  # fmt: skip
        if not case.ever_held(MODEL, stage, version):
            case.approve(ref, stage, approvers, "Reviewed the held-out evaluation")
            case.run("promote", ref, "--stage", stage)


def done(case: Case) -> bool:
    """Whether the case is recorded in full: rolled back, 1.1.0 flagged and refused."""
    if not case.has_model(MODEL) or not case.policy_in_force(POLICY_V2, MODEL):
        return False
    if case.holder(MODEL, "production") != "1.0.0" or not case.ever_held(
        MODEL, "production", "1.1.0"
    ):
        return False
    if not all(case.cards_current(MODEL, v) for v in ("1.0.0", "1.1.0")):
        return False
    with case.registry() as reg:
        if not reg.at_risk(model=MODEL):
            return False
    return (
        failed_finding(case.last_decision(MODEL, "1.1.0", "production"), "regression") is not None
    )


def run(case: Case) -> Outcome:
    """Run the diagnostic case on ``case.home`` (or reuse it, recorded); return what it showed.

    Raises:
        CaseError: an outcome other than the one the case is about.
    """
    if done(case):
        case.reuse()
    else:
        _steps(case)
    return _summary(case)


def _steps(case: Case) -> None:
    if not case.has_model(MODEL):
        case.run("model", "create", MODEL, "--risk-tier", "high", "--owner", "cardiology-ai",
                 "--description", "Flags likely coronary artery disease from a work-up "
                 "(Cleveland data); a clinician decides")  # fmt: skip
    v1 = write_yaml(case.work / "policy-v1.yaml", POLICY_V1)
    if not case.ever_held(MODEL, "production", "1.1.0"):
        case.set_policy(v1, MODEL)  # the old policy: overall numbers only
    _version(case, "1.0.0")
    _promote(case, "1.0.0")
    _version(case, "1.1.0")
    _promote(case, "1.1.0")  # passes the old policy: overall it is the better model
    case.set_policy(write_yaml(case.work / "policy-v2.yaml", POLICY_V2), MODEL)
    if case.holder(MODEL, "production") == "1.1.0":
        observed = observations(case.work, "1.1.0")
        case.run("observe", f"{MODEL}@1.1.0", "--profile", str(observed), "--reason",
                 "production monitoring: outcomes of the patients seen since 1.1.0 went live",
                 expect=1)  # fmt: skip
        case.run("rollback", MODEL, "--stage", "production", "--reason",
                 "1.1.0 misses heart disease in women in production (recall below 0.75 "
                 "on observed outcomes); back to 1.0.0")  # fmt: skip
    if case.holder(MODEL, "production") != "1.0.0":
        raise CaseError("heart-diagnosis production should be back on 1.0.0")
    case.render_card(MODEL, "1.1.0")  # the observations made its card stale
    decision = case.gate(f"{MODEL}@1.1.0", "production", expect=1)
    if failed_finding(decision, "regression") is None:
        raise CaseError("the production gate was expected to refuse 1.1.0 on the slice rule")


def _summary(case: Case) -> Outcome:
    """The case's outcome, read back from the registry (the same on every run)."""
    out = case.outcome
    regression = failed_finding(case.last_decision(MODEL, "1.1.0", "production"), "regression")
    if regression is None:
        raise CaseError("the production gate was expected to refuse 1.1.0 on the slice rule")
    with case.registry() as reg:
        at_risk = [r["ref"] for r in reg.at_risk(model=MODEL)]
        moves = reg.stage_history(model=MODEL, stage="production")
    overall = {v: case.metric(MODEL, v, "accuracy") for v in ("1.0.0", "1.1.0")}
    out.add(f"heart-diagnosis@1.1.0 accuracy {overall['1.1.0']:.3f} vs "
            f"{overall['1.0.0']:.3f} for 1.0.0 (held-out)")  # fmt: skip
    out.add(f"flagged at risk by monitoring: {', '.join(at_risk) or 'none'}")
    out.add(f"rolled back: {moves[-1].version} holds production ({moves[-1].reason})")
    out.add(f"production gate refuses 1.1.0: {regression['message']}")
    return out
