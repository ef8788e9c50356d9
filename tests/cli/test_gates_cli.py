"""`charter gate/approve/promote/rollback/stage/policy/user`: the CI/CD contract."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from charter.cli import main

PROFILE = """
evaluations: [{name: accuracy, value: 0.91}]
"""


class Run:
    def __init__(self, home: Path, capsys: pytest.CaptureFixture[str], mp: pytest.MonkeyPatch):
        self.home, self.capsys, self.mp = home, capsys, mp

    def __call__(self, *args: str, user: str = "alice") -> tuple[int, str, str]:
        self.mp.setenv("CHARTER_USER", user)
        code = main(["--home", str(self.home), *args])
        out, err = self.capsys.readouterr()
        assert "Traceback" not in out + err
        return code, out, err


@pytest.fixture
def run(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        artifact: Path) -> Run:  # fmt: skip
    r = Run(tmp_path / "home", capsys, monkeypatch)
    assert r("init")[0] == 0
    assert r("user", "add", "bob", "--role", "approver")[0] == 0
    profile = tmp_path / "p.yaml"
    profile.write_text(PROFILE)
    r("model", "create", "m", "--risk-tier", "medium")
    for v, parent in (("1.0.0", None), ("1.1.0", "1.0.0")):
        extra = ["--parent", parent] if parent else []
        assert r("register", "m", str(artifact), "--version", v, "--profile", str(profile),
                 *extra)[0] == 0  # fmt: skip
        assert r("publish", f"m@{v}")[0] == 0
    return r


def test_gate_formats_and_exit_codes(run: Run) -> None:
    code, out, _ = run("gate", "m@1.0.0", "--stage", "staging", "--format", "json")
    doc = json.loads(out)
    assert code == (0 if doc["passed"] else 1)
    assert doc["schema"] == "charter.gate/v1" and doc["stage"] == "staging"
    code, out, _ = run("gate", "m@1.0.0", "--stage", "production", "--format", "junit")
    assert code == 1  # medium tier: production needs a current card and one approval
    suite = ET.fromstring(out.split("\n", 1)[1])
    assert suite.tag == "testsuite" and suite.get("name") == "charter.gate.production"
    assert int(suite.get("failures") or 0) >= 1
    assert suite.find("testcase/failure") is not None
    code, out, _ = run("gate", "m@1.0.0", "--stage", "production")
    assert code == 1 and "FAIL" in out


def test_sign_off_promote_history_and_rollback(run: Run, tmp_path: Path) -> None:
    assert run("promote", "m@1.0.0", "--stage", "staging")[0] == 0
    code, _, err = run("promote", "m@1.0.0", "--stage", "production")
    assert code == 1 and "may not enter production" in err
    assert run("card", "m@1.0.0", "-o", str(tmp_path / "c.md"))[0] == 0
    code, _, err = run("approve", "m@1.0.0", "--stage", "production", "--comment", "self")
    assert code == 1 and "separation of duties" in err
    pending = json.loads(run("approvals", "--pending", "--json")[1])
    assert pending and pending[0]["ref"] == "m@1.0.0"
    assert run("approve", "m@1.0.0", "--stage", "production", "--comment", "ok", user="bob")[0] == 0
    assert run("promote", "m@1.0.0", "--stage", "production")[0] == 0
    assert run("card", "m@1.1.0", "-o", str(tmp_path / "d.md"))[0] == 0
    run("approve", "m@1.1.0", "--stage", "production", "--comment", "ok", user="bob")
    assert run("promote", "m@1.1.0", "--stage", "production")[0] == 0
    history = json.loads(run("stage", "history", "m", "--stage", "production", "--json")[1])
    assert [h["version"] for h in history] == ["1.0.0", "1.1.0"]
    assert run("rollback", "m", "--stage", "production", "--reason", "incident 42")[0] == 0
    at = json.loads(run("stage", "at", "m", "--stage", "production",
                        "--time", history[1]["at"])[1])  # fmt: skip
    assert at["version"] == "1.1.0" and at["proof"]["entry"]["type"] == "stage.assigned"
    listed = json.loads(run("stage", "list", "m", "--json")[1])
    assert {(r["stage"], r["version"]) for r in listed} == {
        ("staging", "1.0.0"),
        ("production", "1.0.0"),
    }
    assert run("audit", "verify")[0] == 0


def test_policy_and_user_errors(run: Run, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("schema: charter.policy/v1\nstages: [staging\n")
    code, _, err = run("policy", "validate", str(bad))
    assert code == 2 and "line" in err
    good = tmp_path / "good.yaml"
    good.write_text("schema: charter.policy/v1\nstages: [staging]\n"
                    "rules: {staging: {metrics: [{metric: accuracy, min: 0.9}]}}\n")  # fmt: skip
    assert run("policy", "validate", str(good))[0] == 0
    code, _, err = run("policy", "set", str(good), user="bob")
    assert code == 1 and "admin" in err
    assert run("policy", "set", str(good))[0] == 0
    shown = json.loads(run("policy", "show", "--json")[1])
    assert shown["scope"] == "registry default"
    code, _, err = run("user", "add", "eve", "--role", "root")
    assert code == 2 and "viewer, contributor, approver or admin" in err
    users = json.loads(run("user", "list", "--json")[1])
    assert {u["name"]: u["role"] for u in users} == {"alice": "admin", "bob": "approver"}
    assert run("deprecate", "m@1.0.0", "--reason", "superseded")[0] == 0
    code, _, err = run("promote", "m@1.0.0", "--stage", "staging")
    assert code == 1 and "deprecated" in err
