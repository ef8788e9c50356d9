"""The last step of `make run`: serve the home and print a working login token."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from charter.cases._common import APPROVERS
from charter.sdk import init_registry
from charter.settings import Settings


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_prints_a_token_that_logs_in(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with init_registry(settings=Settings(home=home)) as reg:
        reg.add_user(name=next(iter(APPROVERS)), role="approver")
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "charter.cases.serve", "--home", str(home), "--port", str(port)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        for line in proc.stdout:  # up to the token line; the server prints nothing after it
            lines.append(line)
            if line.strip().startswith("chr_"):
                break
        token = lines[-1].strip()
        assert token.startswith("chr_"), lines
        assert any(f"http://127.0.0.1:{port}/ui/" in line for line in lines)
        deadline, me = time.monotonic() + 60, None
        while time.monotonic() < deadline:
            try:
                me = httpx.get(f"http://127.0.0.1:{port}/api/v1/me",
                               headers={"Authorization": f"Bearer {token}"})  # fmt: skip
                break
            except httpx.TransportError:
                time.sleep(0.2)
        assert me is not None and me.status_code == 200, me
        assert me.json()["user"] == next(iter(APPROVERS))
    finally:
        proc.terminate()
        proc.wait(timeout=30)
