"""The test suite's PostgreSQL harness cleans up after runs that were killed."""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest

from _postgres import reap_orphans


def test_a_cluster_left_by_a_killed_run_is_stopped_and_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    dead = subprocess.Popen(["true"])
    dead.wait()
    server = subprocess.Popen(["sleep", "60"])  # stands in for the orphaned postmaster
    orphan = tmp_path / "charter-pg-orphan"
    (orphan / "data").mkdir(parents=True)
    (orphan / "owner.pid").write_text(str(dead.pid))
    (orphan / "data" / "postmaster.pid").write_text(f"{server.pid}\n{orphan / 'data'}\n")
    live = tmp_path / "charter-pg-live"  # another worker's, running
    live.mkdir()
    (live / "owner.pid").write_text(str(os.getpid()))
    starting = tmp_path / "charter-pg-starting"  # its maker has not named itself yet
    starting.mkdir()
    try:
        reap_orphans()
        assert server.wait(timeout=10) == -signal.SIGQUIT
    finally:
        server.kill()
    assert not orphan.exists()
    assert live.exists() and starting.exists()
