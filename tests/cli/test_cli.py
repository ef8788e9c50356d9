"""The ``charter`` command end to end: outputs, --json, exit codes, no tracebacks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from charter.cli import main


class Cli:
    """Runs ``charter --home HOME …`` in-process and captures its output."""

    def __init__(self, home: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.home = home
        self.capsys = capsys

    def __call__(self, *args: str) -> tuple[int, str, str]:
        code = main(["--home", str(self.home), *args])
        out, err = self.capsys.readouterr()
        assert "Traceback" not in out + err
        return code, out, err

    def json(self, *args: str) -> object:
        code, out, err = self(*args, "--json")
        assert code == 0, err
        return json.loads(out)


@pytest.fixture
def cli(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.setenv("CHARTER_USER", "carol")
    runner = Cli(tmp_path / "home", capsys)
    assert runner("init")[0] == 0
    return runner


def test_init_creates_a_private_key(cli: Cli) -> None:
    key = cli.home / "keys" / "ledger-ed25519.pem"
    assert key.stat().st_mode & 0o777 == 0o600
    code, out, _ = cli("init")
    assert code == 0 and "already initialised" in out
    code, out, _ = cli("audit", "public-key")
    assert out.startswith("-----BEGIN PUBLIC KEY-----")


def test_register_publish_show_list(cli: Cli, artifact: Path, dataset: Path) -> None:
    assert cli("model", "create", "credit-risk", "--risk-tier", "high", "--owner", "risk")[0] == 0
    code, out, err = cli(
        "register",
        "credit-risk",
        str(artifact),
        "--version",
        "1.0.0",
        "--dataset",
        f"train={dataset}",
        "--param",
        "C=1.0",
        "--run",
        "r1",
        "--commit",
        "abc",
        "--tag",
        "team=risk",
    )
    assert code == 0, err
    assert "registered credit-risk@1.0.0" in out
    assert cli("publish", "credit-risk@1.0.0")[0] == 0
    shown = cli.json("show", "credit-risk@1.0.0")
    assert isinstance(shown, dict)
    assert shown["state"] == "published"
    assert shown["created_by"] == "carol"
    assert shown["params"] == {"C": "1.0"}
    assert shown["tags"] == {"team": "risk"}
    assert [f["path"] for f in shown["files"]] == ["config.json", "sub/vocab.txt", "weights.bin"]
    listed = cli.json("list")
    assert isinstance(listed, list) and listed[0]["latest"]["version"] == "1.0.0"
    code, out, _ = cli("list")
    assert "credit-risk" in out and "published" in out
    code, out, _ = cli("show", "credit-risk@1.0.0")
    assert code == 0 and "weights.bin" in out


def test_bump_refusal_exits_1_and_names_the_fingerprint(
    cli: Cli, artifact: Path, tmp_path: Path
) -> None:
    cli("model", "create", "m")
    d1, d2 = tmp_path / "a.csv", tmp_path / "b.csv"
    d1.write_text("1")
    d2.write_text("2")
    assert (
        cli("register", "m", str(artifact), "--version", "1.0.0", "--dataset", f"train={d1}")[0]
        == 0
    )
    code, _, err = cli(
        "register",
        "m",
        str(artifact),
        "--version",
        "1.0.1",
        "--parent",
        "1.0.0",
        "--dataset",
        f"train={d2}",
    )
    assert code == 1
    assert "data fingerprint changed" in err and "minor" in err
    code, _, err = cli(
        "register",
        "m",
        str(artifact),
        "--version",
        "1.0.1",
        "--parent",
        "1.0.0",
        "--dataset",
        f"train={d2}",
        "--force",
        "--reason",
        "hotfix on relabelled rows",
    )
    assert code == 0, err
    log = cli.json("audit", "log")
    assert isinstance(log, list)
    assert log[-1]["type"] == "bump.overridden"
    assert log[-1]["data"]["reason"] == "hotfix on relabelled rows"


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (["register", "m", "ARTIFACT", "--version", "1.0"], 2, "semantic versioning"),
        (["register", "nope", "ARTIFACT", "--version", "1.0.0"], 2, "unknown model"),
        (["register", "m", "/no/such/dir", "--version", "1.0.0"], 2, "/no/such/dir"),
        (["register", "m", "ARTIFACT", "--version", "1.0.0", "--param", "novalue"], 2, "KEY=VALUE"),
        (["show", "Bad_Name"], 2, "invalid model"),
        (["show", "m@9.9.9"], 2, "unknown version"),
        (["publish", "m"], 2, "NAME@VERSION"),
        (["model", "create", "m2", "--risk-tier", "extreme"], 2, "low, medium or high"),
        (["lineage"], 2, "NAME@VERSION"),
        (["audit", "proof", "999"], 2, "no ledger entry"),
        (["frobnicate"], 2, "No such command"),
    ],
)
def test_bad_input_gets_one_clear_error(
    cli: Cli, artifact: Path, args: list[str], code: int, needle: str
) -> None:
    cli("model", "create", "m")
    before = cli.json("audit", "log")
    args = [str(artifact) if a == "ARTIFACT" else a for a in args]
    got, out, err = cli(*args)
    assert got == code
    assert needle in out + err
    assert cli.json("audit", "log") == before


def test_json_errors_are_machine_readable(cli: Cli) -> None:
    code, out, err = cli("show", "missing", "--json")
    assert code == 2 and out == ""
    assert json.loads(err)["error"]["code"] == "not_found"


def test_missing_home_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--home", str(tmp_path / "nowhere"), "list"])
    _, err = capsys.readouterr()
    assert code == 2
    assert "charter init" in err


def test_diff_tag_download_verify_lineage(cli: Cli, artifact: Path, tmp_path: Path) -> None:
    cli("model", "create", "m")
    cli("register", "m", str(artifact), "--version", "1.0.0")
    (artifact / "weights.bin").write_bytes(b"changed")
    cli("register", "m", str(artifact), "--version", "1.0.1", "--parent", "1.0.0", "--param", "x=1")
    diff = cli.json("diff", "m@1.0.0", "m@1.0.1")
    assert isinstance(diff, dict)
    assert diff["files"]["changed"] == ["weights.bin"]
    code, out, _ = cli("diff", "m@1.0.0", "m@1.0.1")
    assert code == 0 and "weights.bin" in out
    assert cli.json("tag", "m@1.0.1", "owner=ops") == {"owner": "ops"}
    assert cli.json("tag", "m@1.0.1", "--remove", "owner") == {}
    out_dir = tmp_path / "dl"
    assert cli("download", "m@1.0.1", str(out_dir))[0] == 0
    assert (out_dir / "weights.bin").read_bytes() == b"changed"
    assert cli("verify", "m@1.0.1")[0] == 0
    code, out, _ = cli("lineage", "m@1.0.1", "--format", "json")
    assert json.loads(out)["ancestors"][0]["ref"] == "m@1.0.0"
    code, out, _ = cli("lineage", "m@1.0.0", "--format", "mermaid")
    assert out.startswith("flowchart TD") and "-->" in out
    code, out, _ = cli("lineage", "m@1.0.0", "--format", "dot")
    assert out.startswith("digraph lineage") and '"m@1.0.0" -> "m@1.0.1"' in out
    code, out, _ = cli("lineage", "m@1.0.0")
    assert "m@1.0.1" in out


def test_audit_commands(cli: Cli, artifact: Path) -> None:
    cli("model", "create", "m")
    cli("register", "m", str(artifact), "--version", "1.0.0")
    cp = cli.json("audit", "checkpoint")
    # init made carol the first admin (user.set), then model.created, version.registered
    assert isinstance(cp, dict) and cp["tree_size"] == 3
    code, out, _ = cli("audit", "proof", "1")
    proof = json.loads(out)
    assert proof["entry"]["type"] == "model.created"
    assert proof["checkpoint"]["tree_size"] == 3
    report = cli.json("audit", "verify")
    assert isinstance(report, dict) and report["ok"] is True
    code, out, _ = cli("audit", "verify", "--artifacts")
    assert code == 0 and "ledger verified" in out


def test_an_auditor_checks_a_proof_offline(cli: Cli, artifact: Path) -> None:
    """What `audit proof` prints is checkable with `charter.ledger` alone and the public key."""
    from charter.domain.canonical import canonical_bytes
    from charter.ledger import (
        Checkpoint,
        leaf_hash,
        load_public_key,
        verify_checkpoint,
        verify_inclusion,
    )

    cli("model", "create", "m")
    cli("register", "m", str(artifact), "--version", "1.0.0")
    cli("publish", "m@1.0.0")
    _, pem, _ = cli("audit", "public-key")
    _, out, _ = cli("audit", "proof", "2")
    proof = json.loads(out)
    checkpoint = Checkpoint.from_dict(proof["checkpoint"])
    assert verify_checkpoint(checkpoint, load_public_key(pem.encode()))
    leaf = leaf_hash(canonical_bytes(proof["entry"]))
    assert leaf.hex() == proof["leaf_hash"]
    path = [bytes.fromhex(h) for h in proof["inclusion_proof"]]
    args = {"leaf_hash": leaf, "tree_size": checkpoint.tree_size, "proof": path}
    assert verify_inclusion(index=2, root=checkpoint.root_hash, **args)
    assert not verify_inclusion(index=1, root=checkpoint.root_hash, **args)
    assert proof["entry"]["type"] == "version.registered"
