"""Trend and blame across a lineage: 'which training run introduced this?'"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from charter.cli import main
from charter.domain.errors import NotFoundError
from charter.domain.profile import parse_document
from charter.service import Registry


def _doc(overall: float, rare: float) -> object:
    return parse_document(
        f"evaluations: [{{name: accuracy, value: {overall}}},"
        f" {{name: accuracy, value: {rare}, slice: 'thal=fixed'}}]"
    )


@pytest.fixture
def lineage(registry: Registry, artifact: Path, tmp_path: Path) -> Registry:
    registry.create_model(name="dx")
    steps = [("1.0.0", None, 0.80, 0.75), ("1.1.0", "1.0.0", 0.82, 0.74),
             ("1.2.0", "1.1.0", 0.85, 0.55), ("1.3.0", "1.2.0", 0.86, 0.56)]  # fmt: skip
    for i, (version, parent, overall, rare) in enumerate(steps):
        data = tmp_path / f"train-{i}.csv"
        data.write_text("x\n" * (i + 1))
        registry.register(
            model="dx",
            path=artifact,
            version=version,
            parent=parent,
            datasets=[("train", str(data))],
            params={"rows": str(100 * (i + 1))},
            commit=f"c{i}",
            profile=_doc(overall, rare),  # type: ignore[arg-type]
        )
        registry.publish(model="dx", version=version)
    return registry


def test_trend_follows_the_ancestry(lineage: Registry) -> None:
    points = lineage.trend(model="dx", metric="accuracy", slice_="thal=fixed", version="1.3.0")
    assert [p.version for p in points] == ["1.0.0", "1.1.0", "1.2.0", "1.3.0"]
    assert [p.value for p in points] == [0.75, 0.74, 0.55, 0.56]
    overall = lineage.trend(model="dx", metric="accuracy")
    assert [p.value for p in overall] == [0.80, 0.82, 0.85, 0.86]
    with pytest.raises(NotFoundError):
        lineage.trend(model="dx", metric="f1")


def test_blame_names_the_step_and_its_diff(lineage: Registry) -> None:
    blame = lineage.blame(
        model="dx", version="1.3.0", metric="accuracy", slice_="thal=fixed", tolerance=0.02
    )
    assert blame.regression is not None
    assert blame.regression.culprit.version == "1.2.0"
    assert blame.regression.previous.version == "1.1.0"
    assert blame.diff is not None
    assert [c.name for c in blame.diff.params] == ["rows"]
    assert blame.diff.datasets_added and blame.diff.datasets_removed
    assert {c.name for c in blame.diff.other} == {"commit"}
    clean = lineage.blame(model="dx", version="1.3.0", metric="accuracy")
    assert clean.regression is None


def test_an_amendment_changes_the_trend(lineage: Registry) -> None:
    doc = parse_document(
        "evaluations: [{name: accuracy, value: 0.60, slice: 'thal=fixed', supersedes: eval-2}]"
    )
    lineage.amend_profile(model="dx", version="1.3.0", document=doc, reason="larger eval set")
    last = lineage.trend(model="dx", metric="accuracy", slice_="thal=fixed")[-1]
    assert (last.value, last.entry_id, last.origin) == (0.60, "eval-3", "am-1")


def test_cli_trend_and_blame(
    lineage: Registry, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    home = ["--home", str(lineage.settings.home)]
    code = main([*home, "lineage", "blame", "dx@1.3.0", "--metric", "accuracy",
                 "--slice", "thal=fixed", "--tolerance", "0.02", "--format", "json"])  # fmt: skip
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert out["regression"]["version"] == "1.2.0"
    assert main([*home, "lineage", "blame", "dx@1.3.0", "--metric", "accuracy"]) == 0
    assert "no step worsened" in capsys.readouterr().out
    assert main([*home, "profile", "trend", "dx", "--metric", "accuracy"]) == 0
    assert "0.86" in capsys.readouterr().out
    assert main([*home, "lineage", "blame", "dx@1.3.0"]) == 2
    svg = tmp_path / "trend.svg"
    assert main([*home, "profile", "trend", "dx@1.3.0", "--metric", "accuracy",
                 "--format", "svg", "-o", str(svg)]) == 0  # fmt: skip
    assert svg.read_text().lstrip().startswith("<?xml")
