"""Run a case study on a fresh home, then again on the same home (it must reuse it)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from charter.cases import Summary, run
from charter.sdk import open_registry


@dataclass
class Runs:
    """A fresh home after the case ran, and what a second run on it changed."""

    home: Path
    second: Summary
    ledger: tuple[Any, Any]  # (entries, latest checkpoint) before the second run
    ledger_after: tuple[Any, Any]


def _ledger(home: Path) -> tuple[Any, Any]:
    with open_registry(home) as reg:
        return reg.audit_log(), reg.checkpoint(sign=False)


def run_twice(root: Path, case: str, **options: Any) -> Runs:
    """Run ``case`` on ``root`` (it must verify), note the ledger, run it again."""
    assert run(root, cases=[case], **options).verified
    before = _ledger(root)
    second = run(root, cases=[case], **options)
    return Runs(root, second, before, _ledger(root))
