"""Case 2 on a fresh home: monitoring flags 1.1.0, rollback restores 1.0.0, the gate refuses."""

from __future__ import annotations

from pathlib import Path

import pytest

from cases._twice import Runs, run_twice
from charter.cases._common import Case
from charter.cases.heart import FEMALE, MODEL
from charter.sdk import open_registry

pytest.importorskip("sklego")


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    root = tmp_path_factory.mktemp("heart") / "home"
    return run_twice(root, "heart")


@pytest.fixture(scope="module")
def home(runs: Runs) -> Path:
    return runs.home


def test_better_overall_worse_for_women_on_held_out_data(home: Path) -> None:
    case = Case(home, "heart")
    assert case.metric(MODEL, "1.1.0", "accuracy") > case.metric(MODEL, "1.0.0", "accuracy")
    assert case.metric(MODEL, "1.1.0", "recall", FEMALE) < case.metric(
        MODEL, "1.0.0", "recall", FEMALE
    )


def test_monitoring_flagged_and_rollback_restored(home: Path) -> None:
    with open_registry(home) as reg:
        flagged = reg.at_risk(model=MODEL)
        moves = reg.stage_history(model=MODEL, stage="production")
        sources = {
            e["provenance"]["source"]
            for e in reg.profile(model=MODEL, version="1.1.0").section("evaluations")
        }
    assert [f["ref"] for f in flagged] == [f"{MODEL}@1.1.0"]
    assert [(m.version, m.action) for m in moves] == [
        ("1.0.0", "promote"),
        ("1.1.0", "promote"),
        ("1.0.0", "rollback"),
    ]
    assert moves[-1].reason and "women" in moves[-1].reason
    assert "monitoring" in sources


def test_production_gate_refuses_on_the_slice_regression(home: Path) -> None:
    with open_registry(home) as reg:
        _, decision = reg.gate(model=MODEL, version="1.1.0", stage="production")
    rules = [f.rule for f in decision.failures]
    assert any("regression" in r and FEMALE in r for r in rules)
    assert decision.reference == f"{MODEL}@1.0.0"


def test_a_second_run_is_reused_and_writes_nothing(runs: Runs) -> None:
    assert runs.second.verified
    assert runs.ledger_after == runs.ledger  # no gate decision, move or checkpoint recorded
    (outcome,) = runs.second.outcomes
    assert outcome.skipped and "reused" in runs.second.text()
    assert any("production gate refuses 1.1.0" in line for line in outcome.lines)


def test_monitoring_judged_the_holder_against_the_version_it_replaced(home: Path) -> None:
    # 1.1.0 was in production when observed: its regression rule compared it with
    # 1.0.0, the version it replaced, not with itself.
    with open_registry(home) as reg:
        (flag,) = reg.at_risk(model=MODEL)
    rules = [f["rule"] for f in flag["findings"]["production"]]
    assert any("regression" in r for r in rules), rules
