"""A real ``charter serve`` process for the proof suites: start, kill, restart.

The server runs in a session of its own (so a signal reaches every process it
forked) with its output in a log file whose tail is quoted when it fails to
start. ``charter`` is the entry point of the interpreter running the tests.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import closing, suppress
from dataclasses import dataclass, field
from pathlib import Path

import httpx

# Only a guard against a server that never comes up; nothing is asserted on time.
READY_TIMEOUT_S = 60.0


def charter_bin() -> str:
    """The ``charter`` console script next to the running interpreter."""
    return str(Path(sys.executable).parent / "charter")


def charter_env(home: Path, database_url: str | None, user: str = "alice") -> dict[str, str]:
    """The environment of a local Charter process on ``home`` (no ``CHARTER_URL``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHARTER_")}
    env["CHARTER_HOME"] = str(home)
    env["CHARTER_USER"] = user
    if database_url is not None:
        env["CHARTER_DATABASE_URL"] = database_url
    return env


def charter(
    home: Path, database_url: str | None, *args: str, user: str = "alice"
) -> subprocess.CompletedProcess[str]:
    """Run one local ``charter`` command; the caller checks the exit code."""
    return subprocess.run(
        [charter_bin(), *args],
        env=charter_env(home, database_url, user),
        capture_output=True,
        text=True,
        timeout=300,
    )


def create_token(home: Path, database_url: str | None, user: str) -> str:
    """``charter token create USER`` run by the home's admin (alice); the secret."""
    done = charter(home, database_url, "token", "create", user, "--json")
    if done.returncode != 0:
        raise RuntimeError(f"token create {user} failed: {done.stderr or done.stdout}")
    return str(json.loads(done.stdout)["token"])


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ServedRegistry:
    """``charter serve`` on ``home`` (SQLite unless ``database_url``), restartable."""

    home: Path
    database_url: str | None
    token: str  # used to probe readiness with a real authenticated request
    log_path: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Spawn the server and wait for an authenticated 200 from it."""
        command = [charter_bin(), "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        with self.log_path.open("ab") as out:
            self.process = subprocess.Popen(
                command,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=charter_env(self.home, self.database_url),
                start_new_session=True,
            )
        headers = {"Authorization": f"Bearer {self.token}"}
        deadline = time.monotonic() + READY_TIMEOUT_S
        with httpx.Client(base_url=self.url, timeout=5.0) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"charter serve exited:\n{self.log_tail()}")
                with suppress(httpx.TransportError):
                    if client.get("/api/v1/models", headers=headers).status_code == 200:
                        return
                time.sleep(0.02)
        self.kill()
        raise RuntimeError(f"charter serve did not answer in {READY_TIMEOUT_S:.0f} s")

    def kill(self, sig: signal.Signals = signal.SIGKILL) -> None:
        """Send ``sig`` to the server's whole session and reap it."""
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def stop(self) -> None:
        """A graceful stop (SIGTERM), SIGKILL if it lingers."""
        self.kill(signal.SIGTERM)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"
