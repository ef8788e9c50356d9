"""``bench/compare_mlflow.py`` still runs: its Charter half at tiny sizes (no MLflow).

The benchmark is a script, not a test; this only keeps it from rotting as the
REST API changes. It starts ``charter serve`` (and, when PostgreSQL is among the
selected test backends, a throwaway cluster), drives every workload through the
same code the full run uses, and checks the report's rows are there.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from _postgres import selected_backends

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "compare_mlflow.py"


@pytest.mark.slow
def test_charter_half_runs_and_reports_every_row(tmp_path: Path) -> None:
    args = [sys.executable, str(SCRIPT), "--only", "charter", "--smoke", "--work", str(tmp_path)]
    with_pg = "postgresql" in selected_backends()
    if not with_pg:
        args.append("--no-postgres")
    done = subprocess.run(args, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-4000:]
    report = done.stdout
    for row in (
        "| W1 register 40 versions, 1 client | — | ",
        "| W1 register 40 versions, 4 client processes |",
        "| (Charter only) register + publish 40 versions, 1 client |",
        "| W2 search versions of one model (4 models x 10 versions) |",
        "| W3 set alias / stage |",
        "| W3 read alias / stage |",
        "| cold start (median of 1, populated database) |",
        "| idle memory, whole process tree (ratio on RSS) |",
        "| artifact upload, 4 MiB (best of 1) |",
        "| artifact download, 4 MiB (best of 1) |",
    ):
        assert row in report, f"missing row {row!r} in:\n{report}"
    assert "versions/s" in report and "MB/s" in report
    if with_pg:
        assert "| 1,000 versions (10 models x 100) |" in report
    assert list(tmp_path.iterdir()) == [], "the work folder is left behind"
