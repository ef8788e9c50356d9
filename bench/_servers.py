"""Server processes for ``compare_mlflow.py``: start, time, measure, stop.

Each server runs in a session (process group) of its own, so stopping it ends
every worker it forked or spawned; its output goes to a log file in the work
folder. Cold start is the wall time from just before ``Popen`` until the first
successful answer to a real API request. Memory is summed over the server's whole
process tree, read from ``/proc`` (RSS, and PSS, which shares pages fairly
between processes that share them).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import venv
from collections.abc import Callable
from contextlib import closing, suppress
from dataclasses import dataclass
from pathlib import Path

import httpx

MLFLOW_VERSION = "3.17.2"  # the version the README's figures were measured with
READY_TIMEOUT_S = 180.0  # MLflow's first start creates its schema: tens of seconds


def log(text: str) -> None:
    """Progress on stderr, so stdout holds only the report."""
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- process trees and their memory ----------------------------------------------------


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # The command name (field 2) is in parentheses and may hold spaces.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    return children


def tree_pids(root: int) -> list[int]:
    """``root`` and all its descendants that are alive."""
    children = _children_map()
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def _kib(path: str, field: str) -> int:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_cpu_seconds(root: int) -> float:
    """User + system CPU seconds of ``root``'s live process tree (and reaped children)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in tree_pids(root):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # utime, stime, cutime, cstime: fields 14-17 of stat(5), 12-15 after the name
        total += sum(int(x) for x in fields[11:15])
    return total / ticks


@dataclass(frozen=True)
class Memory:
    """Memory of a process tree, in bytes."""

    rss: int
    pss: int
    processes: int


def tree_memory(root: int) -> Memory:
    """RSS and PSS summed over ``root``'s process tree (zombies count zero)."""
    pids = tree_pids(root)
    rss = sum(_kib(f"/proc/{p}/status", "VmRSS:") for p in pids)
    pss = sum(_kib(f"/proc/{p}/smaps_rollup", "Pss:") for p in pids)
    alive = sum(1 for p in pids if _kib(f"/proc/{p}/status", "VmRSS:") > 0)
    return Memory(rss * 1024, pss * 1024, alive)


# -- one server --------------------------------------------------------------------------


@dataclass
class Server:
    """A server command and how to tell it is ready.

    ``probe`` is called with a client and returns True once the server answers a
    real request correctly (not merely accepts connections).
    """

    name: str
    command: list[str]
    port: int
    probe: Callable[[httpx.Client], bool]
    log_path: Path
    env: dict[str, str] | None = None
    cwd: Path | None = None
    process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> float:
        """Spawn the server and wait for its first good answer; return the seconds taken.

        Raises:
            RuntimeError: the server exited, or did not answer within the timeout.
        """
        out = self.log_path.open("ab")
        with httpx.Client(base_url=self.base_url, timeout=5.0) as client:
            t0 = time.perf_counter()
            self.process = subprocess.Popen(
                self.command,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,
            )
            out.close()
            while time.perf_counter() - t0 < READY_TIMEOUT_S:
                if self.process.poll() is not None:
                    raise RuntimeError(f"{self.name} exited: see {self.log_path}")
                try:
                    if self.probe(client):
                        return time.perf_counter() - t0
                except httpx.TransportError:
                    pass
                time.sleep(0.005)
        self.stop()
        raise RuntimeError(f"{self.name} did not answer in {READY_TIMEOUT_S:.0f} s")

    def memory(self) -> Memory:
        """Memory of the server's process tree now."""
        assert self.process is not None
        return tree_memory(self.process.pid)

    def cpu_seconds(self) -> float:
        """CPU time the server's process tree has used so far."""
        assert self.process is not None
        return tree_cpu_seconds(self.process.pid)

    def stop(self) -> None:
        """SIGTERM the server's process group; SIGKILL what is left after 15 s."""
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        pgid = os.getpgid(proc.pid)
        os.killpg(pgid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(pgid, signal.SIGKILL)
            proc.wait()
        # Workers may outlive the parent for a moment; the group is ours alone.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)
        with suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)


IDLE_SETTLE_S = 10.0  # MLflow's job runner starts its consumers a few seconds after ready


def idle_memory(server: Server, settle_s: float = IDLE_SETTLE_S) -> Memory:
    """The server's memory after ``settle_s`` of no requests."""
    time.sleep(settle_s)
    return server.memory()


# -- MLflow ------------------------------------------------------------------------------


def ensure_mlflow_venv(path: Path, version: str = MLFLOW_VERSION) -> float | None:
    """Create ``path`` with ``mlflow==version`` unless present; return the install seconds.

    Returns None when the environment already had that version (nothing installed).
    """
    python = path / "bin" / "python"
    mlflow = path / "bin" / "mlflow"
    if mlflow.exists():
        check = subprocess.run(
            [str(python), "-c", "import importlib.metadata as m; print(m.version('mlflow'))"],
            capture_output=True,
            text=True,
            check=False,
        )
        if check.stdout.strip() == version:
            return None
    log(f"installing mlflow=={version} into {path} (pip; a few hundred MB)")
    t0 = time.perf_counter()
    if not python.exists():
        venv.create(path, with_pip=True)
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, f"mlflow=={version}"], check=True)
    return time.perf_counter() - t0


def mlflow_server(
    venv_path: Path, root: Path, port: int, *, workers: int | None = None, jobs: bool = False
) -> Server:
    """``mlflow server`` on a SQLite file in ``root``, serving artifacts from ``root``.

    ``workers`` None keeps MLflow's default (4 uvicorn workers in 3.x). ``jobs``
    False turns off MLflow's job execution (``MLFLOW_SERVER_ENABLE_JOB_EXECUTION``),
    which by default starts a job runner and seven Huey consumer processes beside
    the web workers: the registry needs none of them, so the workloads run without
    them (fewer processes competing for the CPU: the harder baseline for Charter).
    """
    root.mkdir(parents=True, exist_ok=True)
    command = [
        str(venv_path / "bin" / "mlflow"),
        "server",
        "--backend-store-uri",
        f"sqlite:///{root / 'mlflow.db'}",
        "--serve-artifacts",
        "--artifacts-destination",
        str(root / "mlartifacts"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    if workers is not None:
        command += ["--workers", str(workers)]

    def probe(client: httpx.Client) -> bool:
        r = client.get("/api/2.0/mlflow/registered-models/search", params={"max_results": 1})
        return r.status_code == 200

    env = dict(os.environ, MLFLOW_SERVER_ENABLE_JOB_EXECUTION=str(jobs).lower())
    return Server("mlflow", command, port, probe, root / "server.log", env=env, cwd=root)


# -- Charter -----------------------------------------------------------------------------


def charter_bin() -> str:
    """The ``charter`` entry point of the interpreter running this script."""
    return str(Path(sys.executable).parent / "charter")


def charter_env(home: Path, database_url: str | None = None) -> dict[str, str]:
    """Environment of a Charter process on ``home`` (and an optional database URL)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHARTER_")}
    env["CHARTER_HOME"] = str(home)
    env["CHARTER_USER"] = "bench"
    if database_url is not None:
        env["CHARTER_DATABASE_URL"] = database_url
    return env


def charter_init(home: Path, database_url: str | None = None) -> str:
    """``charter init`` a home and create an admin token for user ``bench``; return it."""
    env = charter_env(home, database_url)
    subprocess.run([charter_bin(), "init"], env=env, check=True, capture_output=True)
    made = subprocess.run(
        [charter_bin(), "token", "create", "bench", "--json"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    data = json.loads(made.stdout)
    return str(data["token"])


def charter_server(home: Path, port: int, token: str, database_url: str | None = None) -> Server:
    """``charter serve`` on ``home`` (SQLite unless ``database_url``)."""
    command = [charter_bin(), "serve", "--host", "127.0.0.1", "--port", str(port)]
    headers = {"Authorization": f"Bearer {token}"}

    def probe(client: httpx.Client) -> bool:
        return client.get("/api/v1/models", headers=headers).status_code == 200

    env = charter_env(home, database_url)
    return Server("charter", command, port, probe, home.parent / "charter-server.log", env=env)
