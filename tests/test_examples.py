"""The CI examples in examples/ are run for real: their steps, in order, with bash."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

EXAMPLES = Path(__file__).parents[1] / "examples"
# Steps the test stands in for: installing (the venv has Charter) and training.
SKIPPED = {"Install Charter", "Train"}


def _github_steps() -> list[str]:
    workflow = yaml.safe_load((EXAMPLES / "github-actions.yml").read_text())
    steps = workflow["jobs"]["gate"]["steps"]
    return [s["run"] for s in steps if "run" in s and s.get("name") not in SKIPPED]


def _gitlab_steps() -> list[str]:
    return list(yaml.safe_load((EXAMPLES / "gitlab-ci.yml").read_text())["gate"]["script"])


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """What the training step leaves behind: a model folder, its data and metrics."""
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "weights.bin").write_bytes(b"\x01" * 64)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "train.csv").write_text("x,y\n1,0\n2,1\n")
    (tmp_path / "metrics.json").write_text('{"accuracy": 0.91, "loss": 0.3}')
    return tmp_path


def _run(script: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-e", "-c", script], cwd=cwd, env=env, capture_output=True,
                          text=True, check=False)  # fmt: skip


def _env(home: Path, version: str, parent: str = "") -> dict[str, str]:
    bin_dir = str(Path(sys.executable).parent)
    return {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "CHARTER_HOME": str(home),
            "CHARTER_USER": "ci-bot", "MODEL": "credit-risk", "VERSION": version,
            "PARENT": parent}  # fmt: skip


@pytest.mark.parametrize("steps", [_github_steps, _gitlab_steps], ids=["github", "gitlab"])
def test_the_workflow_registers_gates_and_promotes(steps: object, workspace: Path) -> None:
    env = _env(workspace / "home", "2.4.0")
    for script in steps():  # type: ignore[operator]
        done = _run(script, workspace, env)
        assert done.returncode == 0, (script, done.stdout, done.stderr)
    suite = ET.parse(workspace / "gate.xml").getroot()
    assert suite.get("name") == "charter.gate.staging" and suite.get("failures") == "0"
    listed = _run("charter stage list credit-risk --json", workspace, env)
    assert '"version": "2.4.0"' in listed.stdout


def test_a_failing_gate_stops_the_pipeline(workspace: Path) -> None:
    env = _env(workspace / "home", "2.4.0")
    policy = workspace / "policy.yaml"
    policy.write_text("schema: charter.policy/v1\nstages: [staging]\n"
                      "rules: {staging: {metrics: [{metric: accuracy, min: 0.95}]}}\n")  # fmt: skip
    steps = _github_steps()
    assert _run(steps[0], workspace, env).returncode == 0  # set up the registry
    assert _run(f"charter policy set {policy}", workspace, env).returncode == 0
    assert _run(steps[1], workspace, env).returncode == 0  # register and publish
    gate = _run(steps[2], workspace, env)
    assert gate.returncode == 1  # the job fails here
    suite = ET.parse(workspace / "gate.xml").getroot()
    assert suite.get("failures") != "0"
    assert "accuracy" in ET.tostring(suite, encoding="unicode")
    promote = _run(steps[3], workspace, env)
    assert promote.returncode == 1 and "may not enter staging" in promote.stderr
