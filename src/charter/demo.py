"""``make run``: the registry's main job on a local home, with real models and data.

Trains two scikit-learn classifiers on the breast-cancer data set that ships
inside scikit-learn (569 rows; no download) and walks them through Charter:

1. registers ``demo-classifier`` 1.0.0 (200 training rows) and 1.1.0 (400 rows,
   a ``minor`` child — Charter reads the estimator classes out of the joblib
   file without unpickling it, sees the same architecture and new data, and
   accepts the bump), each with the held-out metrics measured in training;
2. runs the built-in ``slice-performance`` evaluator on the held-out split, per
   tumour-size slice, with bootstrap confidence intervals;
3. publishes both (sealing their baselines), renders a model card, gates 1.1.0
   for staging and promotes it;
4. shows the registry as a user would — list, lineage, profile, stages — and
   ends with ``charter audit verify --artifacts``.

Running it again reuses the home and registers nothing twice. Everything is
computed during the run.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from charter.cli import main as charter
from charter.domain.errors import NotFoundError
from charter.sdk import open_registry

MODEL = "demo-classifier"


def _split(seed: int = 7) -> tuple[Any, Any, Any, Any]:
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    # A DataFrame, so the fitted model records its feature names and evaluators
    # know which columns to feed it.
    data = load_breast_cancer(as_frame=True)
    split: tuple[Any, Any, Any, Any] = train_test_split(
        data.data, data.target, test_size=0.25, random_state=seed, stratify=data.target
    )
    return split


def _write_csv(path: Path, x: Any, y: Any) -> None:
    frame = x.copy()
    # A derived, human-readable slice column: tumour size by mean radius.
    frame["size"] = ["large" if r >= 17 else "small" for r in frame["mean radius"]]
    frame["target"] = y.to_numpy()
    frame.to_csv(path, index=False)


def _train(rows: int, folder: Path) -> tuple[Path, Path, Path, Path]:
    """Train on the first ``rows`` rows; return (model folder, train csv, eval csv, metrics)."""
    import joblib
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, roc_auc_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x_train, x_test, y_train, y_test = _split()
    x_train, y_train = x_train.iloc[:rows], y_train.iloc[:rows]
    model = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=1000))
    model.fit(x_train, y_train)
    out = folder / f"model-{rows}"
    out.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, out / "model.joblib")
    (out / "params.json").write_text('{"C": 1.0, "max_iter": 1000}\n')
    train_csv, eval_csv = folder / f"train-{rows}.csv", folder / "heldout.csv"
    _write_csv(train_csv, x_train, y_train)
    _write_csv(eval_csv, x_test, y_test)
    metrics = folder / f"metrics-{rows}.json"
    scores = model.predict_proba(x_test)[:, 1]
    metrics.write_text(json.dumps({
        "accuracy": round(float(accuracy_score(y_test, model.predict(x_test))), 4),
        "roc_auc": round(float(roc_auc_score(y_test, scores)), 4),
    }))  # fmt: skip
    return out, train_csv, eval_csv, metrics


def _exists(home: str, ref: str) -> bool:
    name, _, version = ref.partition("@")
    with open_registry(home) as reg:
        try:
            if version:
                reg.get_version(model=name, version=version)
            else:
                reg.get_model(name=name)
        except NotFoundError:
            return False
    return True


def _run(*args: str) -> int:
    print(f"\n$ charter {' '.join(a for a in args[2:])}", flush=True)
    return charter(list(args))


def _register(
    base: tuple[str, str], work: Path, version: str, rows: int, parent: str | None
) -> int:
    folder, train_csv, eval_csv, metrics = _train(rows, work)
    extra = ["--parent", parent, "--change", "minor"] if parent else []
    ref = f"{MODEL}@{version}"
    steps = [
        ["register", MODEL, str(folder), "--version", version, *extra,
         "--dataset", f"train={train_csv}", "--dataset", f"eval={eval_csv}",
         "--metrics", str(metrics), "--param", f"train_rows={rows}", "--run", f"demo-run-{rows}"],
        ["evaluate", ref, "--evaluator", "slice-performance", "--option", f"data={eval_csv}",
         "--option", "label=target", "--option", "slices=[size]", "--option", "bootstrap=300"],
        ["publish", ref],
    ]  # fmt: skip
    for step in steps:
        code = _run(*base, *step)
        if code != 0:
            return code
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the demo; return the exit code of the final verification."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--home", default=".charter-demo", help="registry home to use")
    home = parser.parse_args(argv).home
    base = ("--home", home)
    _run(*base, "init")
    if not _exists(home, MODEL):
        _run(*base, "model", "create", MODEL, "--risk-tier", "medium", "--owner", "ml-platform",
             "--description", "Breast-cancer screening classifier (scikit-learn demo)")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        for version, rows, parent in (("1.0.0", 200, None), ("1.1.0", 400, "1.0.0")):
            if _exists(home, f"{MODEL}@{version}"):
                print(f"\n{MODEL}@{version} is registered already: reusing the home")
                continue
            code = _register(base, Path(tmp), version, rows, parent)
            if code != 0:
                return code
    card = Path(home) / "demo-classifier-1.1.0-card.html"
    for step in (
        ["list"],
        ["lineage", f"{MODEL}@1.1.0"],
        ["profile", "show", f"{MODEL}@1.1.0"],
        ["card", f"{MODEL}@1.1.0", "--format", "html", "-o", str(card)],
        ["gate", f"{MODEL}@1.1.0", "--stage", "staging"],
    ):
        _run(*base, *step)
    with open_registry(home) as reg:
        in_staging = any(p["stage"] == "staging" for p in reg.stages(model=MODEL))
    if not in_staging:
        _run(*base, "promote", f"{MODEL}@1.1.0", "--stage", "staging")
    _run(*base, "stage", "list", MODEL)
    _run(*base, "audit", "checkpoint")
    code = _run(*base, "audit", "verify", "--artifacts")
    print(f"\nThe model card is at {card}; the registry home is {Path(home).resolve()}.")
    return code


if __name__ == "__main__":
    sys.exit(main())
