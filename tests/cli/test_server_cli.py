"""`charter token`, `observe` and `at-risk`: the shared registry's commands."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from charter.cli import main

PROFILE = """
evaluations:
  - {name: accuracy, value: 0.91}
"""
POLICY = """
schema: charter.policy/v1
stages: [staging, production]
rules:
  production:
    metrics: [{metric: accuracy, min: 0.85}]
"""


@pytest.fixture
def run(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    home = tmp_path / "home"

    def call(*args: str, user: str = "alice") -> tuple[int, str, str]:
        monkeypatch.setenv("CHARTER_USER", user)
        code = main(["--home", str(home), *args])
        out, err = capsys.readouterr()
        assert "Traceback" not in out + err
        return code, out, err

    assert call("init")[0] == 0
    return call


def test_token_create_list_revoke(run) -> None:  # type: ignore[no-untyped-def]
    assert run("user", "add", "bob", "--role", "viewer")[0] == 0
    code, out, err = run("token", "create", "bob", "--expires", "30d", "--label", "laptop")
    token = out.strip()
    assert code == 0 and token.startswith("chr_") and "not shown again" in err
    code, out, _ = run("token", "list", "--json")
    (listed,) = json.loads(out)
    assert listed["user"] == "bob" and listed["status"] == "active" and token not in out
    assert run("token", "revoke", listed["token_id"])[0] == 0
    assert json.loads(run("token", "list", "--json")[1])[0]["status"] == "revoked"
    code, _, err = run("token", "create", "bob", "--expires", "soon")
    assert code == 2 and "90d" in err
    code, _, err = run("token", "create", "alice", user="bob")
    assert code == 1 and "admin" in err


def test_observe_exits_1_when_the_version_is_at_risk(run, tmp_path: Path, artifact: Path) -> None:  # type: ignore[no-untyped-def]
    policy, profile = tmp_path / "policy.yaml", tmp_path / "p.yaml"
    policy.write_text(POLICY)
    profile.write_text(PROFILE)
    assert run("policy", "set", str(policy))[0] == 0
    run("model", "create", "m")
    run("register", "m", str(artifact), "--version", "1.0.0", "--profile", str(profile))
    run("publish", "m@1.0.0")
    assert run("promote", "m@1.0.0", "--stage", "production")[0] == 0
    live = tmp_path / "live.yaml"
    live.write_text("accuracy: 0.7\n")
    code, out, _ = run("observe", "m@1.0.0", "--metrics", str(live), "--reason", "week 3")
    assert code == 1 and "AT RISK" in out and "0.7" in out
    code, out, _ = run("at-risk", "--json")
    assert code == 0 and json.loads(out)[0]["ref"] == "m@1.0.0"
    code, _, err = run("observe", "m@1.0.0", "--reason", "x")
    assert code == 2 and "exactly one" in err


def test_gc_removes_stale_temporaries_and_unreferenced_blobs(
    run, tmp_path: Path, artifact: Path
) -> None:  # type: ignore[no-untyped-def]
    from charter.artifacts import ArtifactStore

    run("model", "create", "m")
    assert run("register", "m", str(artifact), "--version", "1.0.0")[0] == 0
    store = ArtifactStore(str(tmp_path / "home" / "artifacts"))
    orphan = store.put_bytes(b"uploaded, never registered")
    (tmp_path / "home" / "artifacts" / "tmp").mkdir(parents=True, exist_ok=True)
    leftover = tmp_path / "home" / "artifacts" / "tmp" / "crashed-put"
    leftover.write_bytes(b"half a file")
    code, out, _ = run("gc", "--older-than", "0", "--blobs", "--dry-run", "--json")
    planned = json.loads(out)
    assert code == 0 and planned["dry_run"] and planned["temporaries"] == 1
    assert orphan.digest.removeprefix("sha256:") in "".join(planned["blobs"])
    assert leftover.exists()
    code, out, _ = run("gc", "--older-than", "0", "--blobs")
    assert code == 0 and "removed 1 temporary" in out and not leftover.exists()
    code, _, err = run("gc", user="bob")
    assert code == 1 and "admin" in err
    assert run("audit", "verify", "--artifacts")[0] == 0
    assert run("download", "m@1.0.0", str(tmp_path / "out"))[0] == 0
