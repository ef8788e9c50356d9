"""Case 2 on a fresh home: monitoring flags 1.1.0, rollback restores 1.0.0, the gate refuses."""

from __future__ import annotations

from pathlib import Path

import pytest

from charter.cases import run
from charter.cases._common import Case
from charter.cases.heart import FEMALE, MODEL
from charter.sdk import open_registry

pytest.importorskip("sklego")


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("heart") / "home"
    assert run(root, cases=["heart"]).verified
    return root


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


def test_a_second_run_moves_nothing(home: Path) -> None:
    with open_registry(home) as reg:
        before = reg.stage_history(model=MODEL)
    assert run(home, cases=["heart"]).verified
    with open_registry(home) as reg:
        assert reg.stage_history(model=MODEL) == before
