"""Several processes register into one SQLite home at once.

SQLite allows one writer at a time; write transactions begin IMMEDIATE and wait
for the lock (busy timeout), and the ledger head serialises appends. Whatever
the interleaving, every version must exist exactly once, with exactly one
ledger entry per state change, and the whole home must verify.
"""

from __future__ import annotations

import multiprocessing
import queue
import time
import traceback
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

import pytest

from charter.domain.errors import AlreadyExistsError
from charter.sdk import init_registry, open_registry
from charter.settings import Settings

WORKERS = 4
VERSIONS_EACH = 15
RACERS = 2
RACED_VERSION = "99.0.0"
# Only a guard against a hung child; nothing is asserted about elapsed time.
JOIN_TIMEOUT_S = 120


@pytest.fixture(autouse=True)
def _importable_in_children(monkeypatch: pytest.MonkeyPatch) -> None:
    """Spawned children import this module by name to find the worker functions.

    Under ``--import-mode=importlib`` pytest leaves ``sys.path`` alone, so put the
    folder the module name is relative to on it (children inherit ``sys.path``).
    """
    root = Path(__file__).resolve().parents[__name__.count(".")]
    monkeypatch.syspath_prepend(str(root))


def _settings(home: Path, user: str) -> Settings:
    return Settings(home=home, user=user)


def _version(worker: int, index: int) -> str:
    return f"{worker + 1}.{index}.0"


def _publishes(index: int) -> bool:
    return index % 2 == 0


def _worker(home: Path, worker: int, start: Barrier, race: Barrier, results: Any) -> None:
    """Register (and publish every other) version of model m; then the first
    ``RACERS`` workers register the same version number at the same moment.

    Reports ``(worker, outcome, detail)``: outcome ``won`` / ``exists`` for racers,
    ``done`` for the others, ``error`` with a traceback for anything unexpected.
    """
    try:
        source = home.parent / f"src-{worker}"
        source.mkdir()
        with open_registry(settings=_settings(home, f"worker-{worker}")) as reg:
            start.wait()
            for index in range(VERSIONS_EACH):
                artifact = source / f"weights-{index}.bin"
                artifact.write_bytes(f"worker {worker} version {index}".encode())
                version = _version(worker, index)
                reg.register(model="m", path=artifact, version=version)
                if _publishes(index):
                    reg.publish(model="m", version=version)
            if worker >= RACERS:
                results.put((worker, "done", ""))
                return
            artifact = source / "raced.bin"
            artifact.write_bytes(f"racer {worker}".encode())
            race.wait()
            try:
                reg.register(model="m", path=artifact, version=RACED_VERSION)
            except AlreadyExistsError as exc:
                results.put((worker, "exists", exc.message))
                return
        results.put((worker, "won", ""))
    except BaseException:  # report everything: a hung parent helps nobody
        results.put((worker, "error", traceback.format_exc()))


def _run(home: Path) -> list[tuple[int, str, str]]:
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    start, race = ctx.Barrier(WORKERS), ctx.Barrier(RACERS)
    procs = [
        ctx.Process(target=_worker, args=(home, i, start, race, results)) for i in range(WORKERS)
    ]
    for proc in procs:
        proc.start()
    # Read before joining: a child blocks on exit until its queued data is consumed.
    outcomes: list[tuple[int, str, str]] = []
    deadline = time.monotonic() + JOIN_TIMEOUT_S
    while len(outcomes) < WORKERS:
        try:
            outcomes.append(results.get(timeout=0.5))
        except queue.Empty:
            if not any(p.is_alive() for p in procs):
                codes = [p.exitcode for p in procs]
                pytest.fail(f"workers exited without reporting back (exit codes {codes})")
            if time.monotonic() > deadline:
                pytest.fail("workers did not finish")
    for proc in procs:
        proc.join(JOIN_TIMEOUT_S)
        assert proc.exitcode == 0, f"process {proc.name} exited with {proc.exitcode}"
    errors = [text for _, status, text in outcomes if status == "error"]
    assert not errors, "\n".join(errors)
    return sorted(outcomes)


# Slow because of interpreter start-up, not the registry: each spawned child
# imports charter afresh (seconds on a loaded 2-CPU machine, most of it the
# jsonschema import); the concurrent registration itself takes about a second.
@pytest.mark.slow
def test_processes_register_into_one_home(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with init_registry(settings=_settings(home, "admin")) as reg:
        reg.create_model(name="m")

    outcomes = _run(home)
    assert [status for w, status, _ in outcomes if w >= RACERS] == ["done"] * (WORKERS - RACERS)
    race = [(w, status, text) for w, status, text in outcomes if w < RACERS]
    assert sorted(status for _, status, _ in race) == ["exists", "won"]
    loser = next(text for _, status, text in race if status == "exists")
    assert f"m@{RACED_VERSION}" in loser
    winner = next(racer for racer, status, _ in race if status == "won")

    with open_registry(settings=_settings(home, "auditor")) as reg:
        versions = reg.list_versions(model="m")
        numbers = [v.version for v in versions]
        expected = {_version(w, i) for w in range(WORKERS) for i in range(VERSIONS_EACH)}
        assert len(numbers) == len(set(numbers)) == len(expected) + 1
        assert set(numbers) == expected | {RACED_VERSION}

        published = {v.version for v in versions if v.published_at is not None}
        assert published == {
            _version(w, i) for w in range(WORKERS) for i in range(VERSIONS_EACH) if _publishes(i)
        }
        raced = reg.get_version(model="m", version=RACED_VERSION)
        assert raced.created_by == f"worker-{winner}"
        for v in versions:
            if v.version != RACED_VERSION:
                assert v.created_by == f"worker-{int(v.version.split('.')[0]) - 1}"

        log = reg.audit_log()
        assert [r.seq for r in log] == list(range(len(log)))
        types = [r.type for r in log]
        assert types.count("model.created") == 1
        assert types.count("version.registered") == len(expected) + 1
        assert types.count("version.published") == len(published)
        # user.set (init makes the first admin) + model.created + registrations + publishes
        assert types.count("user.set") == 1
        assert len(log) == 2 + len(expected) + 1 + len(published)
        registered = [r.subject for r in log if r.type == "version.registered"]
        assert len(registered) == len(set(registered))

        report = reg.verify(artifacts=True)
        assert report.ok, report.problems
        assert report.entries == len(log)
        assert report.blobs == len(expected) + 1
