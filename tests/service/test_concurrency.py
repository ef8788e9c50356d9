"""Several processes write into one registry at once, on every backend.

SQLite allows one writer at a time: write transactions begin IMMEDIATE and wait
for the lock (busy timeout). PostgreSQL writers serialise on an advisory lock
taken first thing in each write transaction (see ``charter.store.engine``).
Either way the ledger stays linear: whatever the interleaving, every version
must exist exactly once, with exactly one ledger entry per state change; stage
moves are compare-and-set, so racing promotions leave a gap-free history; and
the whole registry must verify.
"""

from __future__ import annotations

import multiprocessing
import queue
import runpy
import time
import traceback
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

import pytest

from charter.domain.errors import AlreadyExistsError, ConflictError
from charter.sdk import init_registry, open_registry
from charter.settings import Settings

WORKERS = 4
VERSIONS_EACH = 15
RACERS = 2
RACED_VERSION = "99.0.0"
STAGE = "staging"
# Only a guard against a hung child; nothing is asserted about elapsed time.
JOIN_TIMEOUT_S = 120
# Set in a spawned child's module globals by ``_spawn`` (see the end of the file).
CHILD_NAME = "__concurrency_worker__"


def _settings(home: Path, user: str, database_url: str | None) -> Settings:
    return Settings(home=home, user=user, database_url=database_url)


def _version(worker: int, index: int) -> str:
    return f"{worker + 1}.{index}.0"


def _publishes(index: int) -> bool:
    return index % 2 == 0


def _promoted(worker: int) -> list[str]:
    """The versions a worker promotes to ``STAGE``, racing the others."""
    return [_version(worker, i) for i in range(VERSIONS_EACH) if _publishes(i)][:3]


def _worker(
    home: Path,
    database_url: str | None,
    worker: int,
    start: Barrier,
    race: Barrier,
    results: Any,
) -> None:
    """Register (and publish every other) version of model m, then promote three of
    them to staging while the others do the same; then the first ``RACERS`` workers
    register the same version number at the same moment.

    Reports ``(worker, outcome, detail, conflicts)``: outcome ``won`` / ``exists``
    for racers, ``done`` for the others, ``error`` with a traceback for anything
    unexpected; ``conflicts`` counts the promotions another worker beat.
    """
    conflicts = 0
    try:
        source = home.parent / f"src-{worker}"
        source.mkdir()
        with open_registry(settings=_settings(home, f"worker-{worker}", database_url)) as reg:
            start.wait()
            for index in range(VERSIONS_EACH):
                artifact = source / f"weights-{index}.bin"
                artifact.write_bytes(f"worker {worker} version {index}".encode())
                version = _version(worker, index)
                reg.register(model="m", path=artifact, version=version)
                if _publishes(index):
                    reg.publish(model="m", version=version)
            for version in _promoted(worker):
                try:
                    reg.promote(model="m", version=version, stage=STAGE)
                except ConflictError:
                    conflicts += 1
            if worker >= RACERS:
                results.put((worker, "done", "", conflicts))
                return
            artifact = source / "raced.bin"
            artifact.write_bytes(f"racer {worker}".encode())
            race.wait()
            try:
                reg.register(model="m", path=artifact, version=RACED_VERSION)
            except AlreadyExistsError as exc:
                results.put((worker, "exists", exc.message, conflicts))
                return
        results.put((worker, "won", "", conflicts))
    except BaseException:  # report everything: a hung parent helps nobody
        results.put((worker, "error", traceback.format_exc(), conflicts))


def _spawn(ctx: Any, **arguments: Any) -> Any:
    """A process that runs ``_worker(**arguments)`` from this file.

    The child runs the file by path rather than importing it by module name:
    pytest names it ``tests.service.test_concurrency``, and an installed
    distribution that ships a top-level ``tests`` package would shadow that name.
    """
    init = {"_CHILD_ARGUMENTS": arguments}
    return ctx.Process(
        target=runpy.run_path,
        args=(__file__,),
        kwargs={"init_globals": init, "run_name": CHILD_NAME},
    )


def _run(home: Path, database_url: str | None) -> list[tuple[int, str, str, int]]:
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    start, race = ctx.Barrier(WORKERS), ctx.Barrier(RACERS)
    procs = [
        _spawn(ctx, home=home, database_url=database_url, worker=i, start=start, race=race,
               results=results)
        for i in range(WORKERS)
    ]  # fmt: skip
    for proc in procs:
        proc.start()
    # Read before joining: a child blocks on exit until its queued data is consumed.
    outcomes: list[tuple[int, str, str, int]] = []
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
    errors = [text for _, status, text, _ in outcomes if status == "error"]
    assert not errors, "\n".join(errors)
    return sorted(outcomes)


# Slow because of interpreter start-up, not the registry: each spawned child
# imports charter afresh (seconds on a loaded 2-CPU machine, most of it the
# jsonschema import); the concurrent registration itself takes about a second.
@pytest.mark.slow
def test_processes_write_into_one_registry(
    tmp_path: Path, backend: str, database_url: str | None
) -> None:
    home = tmp_path / "home"
    with init_registry(settings=_settings(home, "admin", database_url)) as reg:
        reg.create_model(name="m")
        reg.set_policy(text=f"schema: charter.policy/v1\nstages: [{STAGE}]\n")
        for worker in range(WORKERS):
            reg.add_user(name=f"worker-{worker}", role="contributor")

    outcomes = _run(home, database_url)
    assert [status for w, status, _, _ in outcomes if w >= RACERS] == ["done"] * (WORKERS - RACERS)
    race = [(w, status, text) for w, status, text, _ in outcomes if w < RACERS]
    assert sorted(status for _, status, _ in race) == ["exists", "won"]
    loser = next(text for _, status, text in race if status == "exists")
    assert f"m@{RACED_VERSION}" in loser
    winner = next(racer for racer, status, _ in race if status == "won")
    conflicts = sum(lost for *_, lost in outcomes)

    with open_registry(settings=_settings(home, "auditor", database_url)) as reg:
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

        # Each successful promotion moved the pointer exactly once, from the
        # generation it read: the history has no gap and no repeat.
        history = reg.stage_history(model="m", stage=STAGE)
        attempts = WORKERS * len(_promoted(0))
        assert len(history) == attempts - conflicts
        assert [m.generation for m in history] == list(range(1, len(history) + 1))
        assert reg.stages(model="m")[0]["version"] == history[-1].version

        log = reg.audit_log()
        assert [r.seq for r in log] == list(range(len(log)))
        types = [r.type for r in log]
        assert types.count("model.created") == 1
        assert types.count("version.registered") == len(expected) + 1
        assert types.count("version.published") == len(published)
        assert types.count("gate.decided") == attempts
        assert sum(t.startswith("stage.") for t in types) == len(history)
        # init makes the first admin; the admin adds one user per worker
        assert types.count("user.set") == 1 + WORKERS
        registered = [r.subject for r in log if r.type == "version.registered"]
        assert len(registered) == len(set(registered))

        report = reg.verify(artifacts=True)
        assert report.ok, report.problems
        assert report.entries == len(log)
        assert report.blobs == len(expected) + 1


if __name__ == CHILD_NAME:  # pragma: no cover - runs in the spawned children only
    _worker(**globals()["_CHILD_ARGUMENTS"])
