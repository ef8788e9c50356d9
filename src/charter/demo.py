"""``make run``: the registry's main job on a local home, with real models.

Trains two scikit-learn classifiers on the breast-cancer data set that ships
inside scikit-learn (569 rows; no download), registers them as
``demo-classifier`` 1.0.0 and 1.1.0 (retrained on more data, so a ``minor``
change that Charter checks against the fingerprints), publishes both, then
shows the registry the way a user would, through the ``charter`` command.
Running it again reuses the home and registers nothing twice.
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
from pathlib import Path

from charter.cli import main as charter
from charter.domain.errors import NotFoundError
from charter.sdk import open_registry

MODEL = "demo-classifier"


def _train(rows: int, folder: Path, *, seed: int = 7) -> tuple[Path, Path, float]:
    """Train on the first ``rows`` rows; return (model folder, dataset file, accuracy)."""
    import joblib
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    data = load_breast_cancer()
    x_train, x_test, y_train, y_test = train_test_split(
        data.data, data.target, test_size=0.25, random_state=seed, stratify=data.target
    )
    x_train, y_train = x_train[:rows], y_train[:rows]
    model = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=1000))
    model.fit(x_train, y_train)
    accuracy = float(model.score(x_test, y_test))
    out = folder / f"model-{rows}"
    out.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, out / "model.joblib")
    (out / "params.json").write_text('{"C": 1.0, "max_iter": 1000}\n')
    dataset = folder / f"train-{rows}.csv"
    with dataset.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow([*data.feature_names, "target"])
        writer.writerows([*x, y] for x, y in zip(x_train.tolist(), y_train.tolist(), strict=True))
    return out, dataset, accuracy


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
    print(f"\n$ charter {' '.join(args)}", flush=True)
    return charter(list(args))


def main(argv: list[str] | None = None) -> int:
    """Run the demo; return the exit code of the final verification."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--home", default=".charter-demo", help="registry home to use")
    home = parser.parse_args(argv).home
    base = ("--home", home)
    _run(*base, "init")
    if not _exists(home, MODEL):
        _run(
            *base,
            "model",
            "create",
            MODEL,
            "--risk-tier",
            "medium",
            "--owner",
            "ml-platform",
            "--description",
            "Breast-cancer screening classifier (scikit-learn demo)",
        )
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for version, rows, parent in (("1.0.0", 200, None), ("1.1.0", 400, "1.0.0")):
            if _exists(home, f"{MODEL}@{version}"):
                print(f"\n{MODEL}@{version} is registered already: reusing the home")
                continue
            folder, dataset, accuracy = _train(rows, work)
            print(f"trained {MODEL} {version} on {rows} rows: held-out accuracy {accuracy:.3f}")
            extra = ["--parent", parent, "--change", "minor"] if parent else []
            code = _run(
                *base,
                "register",
                MODEL,
                str(folder),
                "--version",
                version,
                *extra,
                "--dataset",
                f"train={dataset}",
                "--param",
                f"train_rows={rows}",
                "--run",
                f"demo-run-{rows}",
                "--tag",
                f"accuracy={accuracy:.3f}",
            )
            if code != 0 or _run(*base, "publish", f"{MODEL}@{version}") != 0:
                return code or 1
    _run(*base, "list")
    _run(*base, "lineage", f"{MODEL}@1.1.0")
    _run(*base, "audit", "checkpoint")
    return _run(*base, "audit", "verify", "--artifacts")


if __name__ == "__main__":
    sys.exit(main())
