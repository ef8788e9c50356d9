"""The curated public API: every ``__all__`` name exists, and the SDK entry works."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import charter

PUBLIC = [
    "charter",
    "charter.ledger",
    "charter.artifacts",
    "charter.store",
    "charter.domain.errors",
    "charter.domain.entities",
    "charter.domain.versioning",
    "charter.service",
    "charter.sdk",
    "charter.settings",
    "charter.exports",
    "charter.domain.profile",
    "charter.domain.folding",
    "charter.domain.policy",
    "charter.domain.gate",
    "charter.domain.stages",
    "charter.evaluation.plugins",
    "charter.evaluation.fairness",
    "charter.evaluation.slices",
    "charter.evaluation.detectors",
    "charter.evaluation.packs",
    "charter.evaluation.targets",
    "charter.evaluation.guard",
    "charter.evaluation.redteam",
    "charter.evaluation.importers",
    "charter.evaluation.constraints_eval",
    "charter.client",
    "charter.wire",
    "charter.api",
    "charter.web",
    "charter.webhooks",
    "charter.domain.webhooks",
    "charter.domain.access",
    "charter.domain.monitoring",
]


@pytest.mark.parametrize("module", PUBLIC)
def test_all_names_exist(module: str) -> None:
    mod = importlib.import_module(module)
    for name in mod.__all__:
        assert getattr(mod, name) is not None, f"{module}.{name}"


def test_open_registry_from_the_top_package(tmp_path: Path) -> None:
    reg = charter.init_registry(tmp_path / "h")
    reg.close()
    with charter.open_registry(tmp_path / "h") as again:
        assert again.list_models() == []


def test_importing_the_ledger_does_not_load_the_database_layer() -> None:
    code = "import sys, charter.ledger; print('sqlalchemy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
