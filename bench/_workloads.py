"""Workloads of ``compare_mlflow.py``, the same for every backend.

A backend (``_mlflow_backend.MlflowBackend``, ``_charter_backend.CharterBackend``)
offers the same verbs over its own REST API; everything here is written against
those verbs, so both servers get identical work.

Concurrent clients are **processes** (a ``ProcessPoolExecutor`` with the ``spawn``
start method), each with its own keep-alive ``httpx.Client``, so the client side's
GIL does not bound the measurement. They start together at an agreed
``time.perf_counter()`` instant (CLOCK_MONOTONIC, shared by all processes on Linux).
"""

from __future__ import annotations

import multiprocessing
import os
import random
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import httpx

PAYLOAD_BYTES = 300
START_LEAD_S = 1.0  # time given to every client process to reach the start line


class Backend(Protocol):
    """The verbs every backend offers (see the backend modules for their meaning)."""

    name: str
    base_url: str

    def client(self) -> httpx.Client: ...
    def create_model(self, client: httpx.Client, model: str) -> None: ...
    def register(self, client: httpx.Client, model: str, index: int, payload: bytes) -> str: ...
    def version_id(self, index: int) -> str: ...
    def search(self, client: httpx.Client, model: str) -> int: ...
    def lookup(self, client: httpx.Client, model: str, version: str) -> None: ...
    def set_alias(self, client: httpx.Client, model: str, alias: str, version: str) -> None: ...
    def get_alias(self, client: httpx.Client, model: str, alias: str) -> str: ...
    def prepare_alias(self, client: httpx.Client, model: str, count: int) -> None: ...
    def prepare_upload(self, path: Path) -> str: ...
    def upload(self, client: httpx.Client, path: Path, digest: str) -> str: ...
    def download(self, client: httpx.Client, handle: str) -> int: ...


def payload(model: str, index: int) -> bytes:
    """A distinct ~300-byte file for version ``index`` of ``model`` (never deduplicated)."""
    seed = f"weights of {model} version {index}: ".encode() + os.urandom(16).hex().encode()
    return (seed * (PAYLOAD_BYTES // len(seed) + 1))[:PAYLOAD_BYTES]


def pct(values: list[float], q: float) -> float:
    """The ``q``-quantile (0..1) of ``values``, nearest-rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


# -- client processes ----------------------------------------------------------------------

_CLIENTS: dict[str, httpx.Client] = {}  # per client process: one keep-alive client per server
_ERRORS: list[str] = []
RETRIES = 3


def _register_task(
    backend: Backend, work: list[tuple[str, list[int]]], start_at: float
) -> tuple[float, list[float], list[str]]:
    client = _CLIENTS.get(backend.base_url)
    if client is None:
        client = _CLIENTS[backend.base_url] = backend.client()
    bodies = [(model, i, payload(model, i)) for model, indices in work for i in indices]
    while (wait := start_at - time.perf_counter()) > 0:
        time.sleep(min(wait, 0.05))
    latencies = []
    for model, i, body in bodies:
        t0 = time.perf_counter()
        for attempt in range(RETRIES + 1):
            try:
                backend.register(client, model, i, body)
                break
            except RuntimeError:  # an error answer: retry as real clients do, and count it
                if attempt == RETRIES:
                    raise
                _ERRORS.append(f"{backend.name} {model}#{i}")
                time.sleep(0.05 * (attempt + 1))
        latencies.append(time.perf_counter() - t0)
    errors = list(_ERRORS)
    _ERRORS.clear()
    return time.perf_counter(), latencies, errors


class Clients:
    """``count`` client processes (each keeps its connections between jobs)."""

    def __init__(self, count: int) -> None:
        self.count = count
        context = multiprocessing.get_context("spawn")
        self.pool = ProcessPoolExecutor(max_workers=count, mp_context=context)

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> Clients:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class Throughput:
    """The result of a registration run."""

    versions: int
    clients: int
    seconds: float
    latencies: list[float]
    errors: list[str]  # error answers that were retried

    @property
    def rate(self) -> float:
        return self.versions / self.seconds


Job = list[tuple[str, list[int]]]  # (model, version indices) pairs done in order


def register_many(clients: Clients, backend: Backend, jobs: list[Job]) -> Throughput:
    """Run one registration job per client process, all starting at once.

    ``len(jobs)`` must not exceed the number of processes: each job blocks its
    process until the start instant, so every job gets a process of its own.
    """
    assert len(jobs) <= clients.count
    start_at = time.perf_counter() + START_LEAD_S * (1 + len(jobs) / 4)
    futures = [clients.pool.submit(_register_task, backend, job, start_at) for job in jobs]
    results = [f.result() for f in futures]
    end = max(r[0] for r in results)
    latencies = [x for r in results for x in r[1]]
    errors = [x for r in results for x in r[2]]
    return Throughput(len(latencies), len(jobs), end - start_at, latencies, errors)


# -- latency sampling (one client, in this process) ------------------------------------------


def sample(fn: Callable[[int], object], count: int, warmup: int = 20) -> list[float]:
    """Seconds of each of ``count`` calls ``fn(i)``, after ``warmup`` untimed calls."""
    for i in range(warmup):
        fn(i)
    out = []
    for i in range(count):
        t0 = time.perf_counter()
        fn(i)
        out.append(time.perf_counter() - t0)
    return out


@dataclass(frozen=True)
class Latency:
    """p50 and p95 in milliseconds."""

    p50: float
    p95: float

    @classmethod
    def of(cls, seconds: list[float]) -> Latency:
        return cls(pct(seconds, 0.5) * 1e3, pct(seconds, 0.95) * 1e3)

    def __str__(self) -> str:
        return f"p50 {self.p50:.2f} ms / p95 {self.p95:.2f} ms"


def search_latency(backend: Backend, models: list[str], count: int, expect: int) -> Latency:
    """W2: search the versions of a random model ``count`` times; check each finds ``expect``."""
    rng = random.Random(2)
    with backend.client() as client:

        def one(_: int) -> None:
            found = backend.search(client, rng.choice(models))
            if found != expect:
                raise RuntimeError(f"{backend.name} search found {found}, expected {expect}")

        return Latency.of(sample(one, count))


def lookup_latency(backend: Backend, models: list[str], per_model: int, count: int) -> Latency:
    """Read one random version ``count`` times."""
    rng = random.Random(3)
    with backend.client() as client:

        def one(_: int) -> None:
            version = backend.version_id(rng.randrange(per_model))
            backend.lookup(client, rng.choice(models), version)

        return Latency.of(sample(one, count))


def alias_latency(
    backend: Backend, model: str, per_model: int, count: int
) -> tuple[Latency, Latency]:
    """W3: point an alias at a random version, then read it back; (set, get) latencies."""
    rng = random.Random(4)
    sets: list[float] = []
    gets: list[float] = []
    with backend.client() as client:
        version = ""
        for i in range(count + 20):
            # Always another version: Charter refuses to "move" a stage onto its holder.
            version = backend.version_id(
                rng.choice([k for k in range(per_model) if backend.version_id(k) != version])
            )
            t0 = time.perf_counter()
            backend.set_alias(client, model, "champion", version)
            t1 = time.perf_counter()
            got = backend.get_alias(client, model, "champion")
            t2 = time.perf_counter()
            if got != version:
                raise RuntimeError(f"{backend.name}: alias reads {got}, set to {version}")
            if i >= 20:  # the first 20 warm up
                sets.append(t1 - t0)
                gets.append(t2 - t1)
    return Latency.of(sets), Latency.of(gets)
