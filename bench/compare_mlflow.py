"""Charter next to MLflow, over REST, measured in one run. Prints a Markdown table.

Run::

    .venv/bin/python bench/compare_mlflow.py [--quick] [--only charter] [--work DIR]

MLflow is installed (once, pinned) into its own virtual environment,
``bench/.mlflow-venv``, never into the project's. Both servers run on loopback
with SQLite: ``mlflow server --serve-artifacts`` twice, with its default 4 uvicorn
workers and with 1 worker (each on a database of its own), and ``charter serve``
(one process). The same client code drives all of them (``_workloads.py``); each
row's ratio is Charter against the best MLflow configuration for that row. Then
Charter alone runs on a throwaway PostgreSQL cluster at 10k, 100k and 1M versions
(``_postgres_scale.py``). What each workload means on each server is in
``_mlflow_backend.py`` and ``_charter_backend.py``; README.md ("Against MLflow")
has the figures and the reasoning behind each choice.

``--quick``: 100 MiB artifact, 1k and 10k versions on PostgreSQL, fewer samples.
``--smoke``: tiny sizes, for the test suite (``tests/bench``; with ``--only charter``).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

from _charter_backend import CharterBackend
from _mlflow_backend import MlflowBackend
from _postgres_scale import measure_postgres
from _report import Report
from _scenario import MiB, Outcome, Sizes, make_big_file, run_server
from _servers import (
    MLFLOW_VERSION,
    charter_init,
    charter_server,
    ensure_mlflow_venv,
    free_port,
    idle_memory,
    log,
    mlflow_server,
)
from _verdicts import compare
from _workloads import Clients

HERE = Path(__file__).resolve().parent
MLFLOW_VENV = HERE / ".mlflow-venv"


def sizes_for(args: argparse.Namespace) -> tuple[Sizes, list[int]]:
    """The run's sizes and the PostgreSQL registry sizes."""
    if args.smoke:
        return Sizes(40, 4, 4, 10, 30, 4 * MiB, 1, 1, idle_settle_s=0.5), [200, 1_000]
    if args.quick:
        return Sizes(1_000, 8, 100, 100, 300, 100 * MiB, 2, 3), [1_000, 10_000]
    return Sizes(1_000, 8, 100, 100, 1_000, 1024 * MiB, 3, 3), [10_000, 100_000, 1_000_000]


def machine_note() -> str:
    """nproc, Python, SQLite, platform, load."""
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"machine: nproc {os.cpu_count()}, Python {platform.python_version()}, SQLite "
        f"{sqlite3.sqlite_version}, {platform.system()} {platform.release()}; load average "
        f"at start {load}"
    )


MLFLOW_CONFIGS = {"4 workers (default)": None, "1 worker": 1}


def run_mlflow(
    work: Path, sizes: Sizes, big: Path, rep: Report, clients: Clients
) -> dict[str, Outcome]:
    """Install (once) and measure MLflow in each configuration, on a database of its own."""
    installed = ensure_mlflow_venv(MLFLOW_VENV)
    if installed is not None:
        rep.note(f"MLflow {MLFLOW_VERSION} installed into bench/.mlflow-venv in {installed:.0f} s")
    else:
        rep.note(f"MLflow {MLFLOW_VERSION} already installed in bench/.mlflow-venv")
    outcomes = {}
    for label, workers in MLFLOW_CONFIGS.items():
        root = work / f"mlflow-{workers or 'default'}"
        server = mlflow_server(MLFLOW_VENV, root, free_port(), workers=workers)
        backend = MlflowBackend(server.base_url, name=f"MLflow ({label})")
        out = run_server(backend, server, sizes, big, _mlflow_prepare, clients)
        if workers is None:
            _default_config(root, sizes, out)
        outcomes[label] = out
    return outcomes


def _default_config(root: Path, sizes: Sizes, out: Outcome) -> None:
    """Cold start and idle memory of MLflow exactly as `mlflow server` starts by default.

    That is with job execution on (a job runner and its consumer processes beside
    the web workers), on the same populated database.
    """
    default = mlflow_server(MLFLOW_VENV, root, free_port(), jobs=True)
    starts, idle = [], []
    for _ in range(sizes.cold_starts):
        starts.append(default.start())
        try:
            idle.append(idle_memory(default, sizes.idle_settle_s))
        finally:
            default.stop()
    out.extra["default_cold_starts"] = starts
    out.extra["default_idle"] = min(idle, key=lambda m: m.rss)


def _mlflow_prepare(backend: object) -> None:
    assert isinstance(backend, MlflowBackend)
    with backend.client() as client:
        backend.prepare(client)


def run_charter(work: Path, sizes: Sizes, big: Path, clients: Clients) -> Outcome:
    """Make a home and measure ``charter serve`` on it."""
    home = work / "charter" / "home"
    home.parent.mkdir(parents=True)
    token = charter_init(home)
    server = charter_server(home, free_port(), token)
    backend = CharterBackend(server.base_url, token)
    return run_server(backend, server, sizes, big, lambda _b: None, clients)


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run, print the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="smaller sizes (~5 min)")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (test suite)")
    parser.add_argument("--only", choices=["mlflow", "charter"], help="one server only")
    parser.add_argument("--no-postgres", action="store_true", help="skip the PostgreSQL part")
    parser.add_argument("--work", type=Path, help="work folder (default: under bench/.work)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args(argv)
    sizes, pg_sizes = sizes_for(args)
    base = args.work or HERE / ".work"
    base.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="compare-mlflow-", dir=base))
    log(f"work folder {work}")
    rep = Report()
    rep.note(machine_note())
    start = time.perf_counter()
    try:
        big = work / "big" / "model.bin"
        make_big_file(big, sizes.big_bytes)
        with Clients(sizes.clients) as clients:
            ml = run_mlflow(work, sizes, big, rep, clients) if args.only != "charter" else {}
            ch = run_charter(work, sizes, big, clients) if args.only != "mlflow" else None
        big.unlink()
        compare(rep, sizes, ml, ch)
        if ch is not None and not args.no_postgres:
            measure_postgres(work, pg_sizes, sizes.samples, rep)
    finally:
        if args.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    rep.note(f"total wall time {time.perf_counter() - start:.0f} s; load at end {load}")
    print(rep.render())
    return 0


if __name__ == "__main__":
    sys.exit(main())
