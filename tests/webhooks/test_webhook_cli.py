"""`charter webhook add/list/rm/deliveries/dispatch`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from charter.cli import main
from charter.domain.webhooks import verify_signature
from webhooks._support import PROFILE, Receiver


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
def run(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Run:
    monkeypatch.delenv("CHARTER_DATABASE_URL", raising=False)
    r = Run(tmp_path / "home", capsys, monkeypatch)
    assert r("init")[0] == 0
    return r


def test_subscribe_publish_dispatch_and_read_the_log(
    run: Run, receiver: Receiver, artifact: Path, tmp_path: Path
) -> None:
    code, out, _ = run("webhook", "add", receiver.url, "--event", "version.published",
                       "--event", "stage.assigned", "--json")  # fmt: skip
    assert code == 0
    added = json.loads(out)
    assert added["events"] == ["stage.assigned", "version.published"]
    secret = added["secret"]
    code, out, _ = run("webhook", "add", "https://example.com/x", "--event", "gate.decided")
    assert code == 0 and "signing secret (shown only now)" in out
    profile = tmp_path / "p.yaml"
    profile.write_text(PROFILE)
    run("model", "create", "m")
    assert (
        run("register", "m", str(artifact), "--version", "1.0.0", "--profile", str(profile))[0] == 0
    )
    assert run("publish", "m@1.0.0")[0] == 0
    code, out, _ = run("webhook", "deliveries", "--status", "pending", "--json")
    assert code == 0 and json.loads(out) == []  # nothing queued until a dispatcher runs
    code, out, _ = run("webhook", "dispatch", "--once")
    assert code == 0 and "queued 1, attempted 1, delivered 1" in out
    (got,) = receiver.requests
    assert verify_signature(secret, body=got.body, timestamp=got.headers["Charter-Timestamp"],
                            signature=got.headers["Charter-Signature"])  # fmt: skip
    code, out, _ = run("webhook", "deliveries", "--json")
    (delivery,) = json.loads(out)
    assert delivery["status"] == "delivered" and delivery["log"][0]["status_code"] == 200
    code, out, _ = run("webhook", "deliveries", "--webhook", str(added["id"]))
    assert code == 0 and "delivered" in out and "version.published" in out
    code, out, _ = run("webhook", "list", "--json")
    assert [h["id"] for h in json.loads(out)] == [added["id"], added["id"] + 1]
    assert "secret" not in out
    assert run("webhook", "rm", str(added["id"]))[0] == 0
    code, out, _ = run("webhook", "list")
    assert code == 0 and "removed" in out


def test_mistakes_are_one_line_errors(run: Run) -> None:
    code, _, err = run("webhook", "add", "https://example.com/x", "--event", "model.created")
    assert code == 2 and "unknown webhook event 'model.created'" in err
    code, _, err = run("webhook", "add", "ftp://example.com/x", "--event", "gate.decided",
                       "--json")  # fmt: skip
    assert code == 2 and json.loads(err)["error"]["code"] == "invalid_input"
    assert run("webhook", "rm", "7")[0] == 2
    assert run("webhook", "deliveries", "--status", "lost")[0] == 2
    run("user", "add", "bob", "--role", "contributor")
    code, _, err = run("webhook", "list", user="bob")
    assert code == 1 and "admin" in err
