"""One server's run of ``compare_mlflow.py``: every workload against one backend.

The same function runs MLflow and Charter, in this order:

1. first start (empty database; MLflow creates its schema here, Charter's home
   was made by ``charter init`` beforehand);
2. W1: 1,000 versions with one small file each from 1 client process, then 1,000
   from 8 client processes (one model per client);
3. population for W2: 100 models x 100 versions from the 8 processes (timed too);
4. idle memory after that load;
5. W2: search the versions of one random model (p50/p95), and read one version;
6. W3: point an alias at a version and read it back (p50/p95 of each);
7. big artifact: upload, then download, best of ``big_reps``;
8. stop, then ``cold_starts`` restarts on the populated database: cold start and
   idle memory (after the first request and a few idle seconds) of each.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from _charter_backend import CharterBackend
from _servers import IDLE_SETTLE_S, Memory, Server, idle_memory, log
from _workloads import (
    Backend,
    Clients,
    Latency,
    Throughput,
    alias_latency,
    lookup_latency,
    register_many,
    search_latency,
)

MiB = 2**20


@dataclass(frozen=True)
class Sizes:
    """What one run does."""

    w1_versions: int
    clients: int
    models: int
    per_model: int
    samples: int  # latency samples per W2/W3 measure
    big_bytes: int
    big_reps: int
    cold_starts: int
    idle_settle_s: float = IDLE_SETTLE_S  # quiet time before reading idle memory


@dataclass
class Outcome:
    """Everything measured on one server."""

    first_start: float = 0.0
    w1_solo: Throughput | None = None
    w1_multi: Throughput | None = None
    populate: Throughput | None = None
    loaded_memory: Memory | None = None
    search: Latency | None = None
    lookup: Latency | None = None
    alias_set: Latency | None = None
    alias_get: Latency | None = None
    upload_mbps: float = 0.0
    download_mbps: float = 0.0
    cold_starts: list[float] = field(default_factory=list)
    idle: list[Memory] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def cold_start(self) -> float:
        return statistics.median(self.cold_starts)

    @property
    def idle_memory(self) -> Memory:
        return min(self.idle, key=lambda m: m.rss)


def make_big_file(path: Path, size: int) -> None:
    """``size`` random bytes (read once afterwards, so the page cache holds them)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:
        left = size
        while left:
            chunk = os.urandom(min(16 * MiB, left))
            fh.write(chunk)
            left -= len(chunk)


def _first_bytes(path: Path, rep: int) -> None:
    """Make the file's content distinct per repetition (no dedupe between reps)."""
    with path.open("r+b") as fh:
        fh.write(f"rep {rep:08d} ".encode())


def big_artifact(backend: Backend, path: Path, size: int, reps: int, outcome: Outcome) -> None:
    """Best upload and download MB/s of ``path`` through the server, over ``reps`` runs.

    The upload's clock runs for the PUT alone; what the client must compute before
    it (Charter: the digest that names the blob) is timed apart, in ``extra``.
    """
    up, down, before = [], [], []
    with backend.client() as client:
        for rep in range(reps):
            _first_bytes(path, rep)
            os.sync()
            t0 = time.perf_counter()
            digest = backend.prepare_upload(path)
            t1 = time.perf_counter()
            handle = backend.upload(client, path, digest)
            t2 = time.perf_counter()
            os.sync()  # the upload's dirty pages must not slow the download
            t3 = time.perf_counter()
            got = backend.download(client, handle)
            t4 = time.perf_counter()
            if got != size:
                raise RuntimeError(f"{backend.name} download returned {got} bytes, not {size}")
            before.append(t1 - t0)
            up.append(t2 - t1)
            down.append(t4 - t3)
            log(f"  {backend.name} big artifact {rep}: up {t2 - t1:.2f} s, down {t4 - t3:.2f} s")
    outcome.upload_mbps = size / min(up) / 1e6
    outcome.download_mbps = size / min(down) / 1e6
    best = up.index(min(up))
    outcome.extra["client_hash_s"] = before[best]
    outcome.extra["upload_with_hash_mbps"] = size / (before[best] + up[best]) / 1e6


def run_server(
    backend: Backend,
    server: Server,
    sizes: Sizes,
    big: Path,
    prepare: Callable[[Backend], None],
    clients: Clients,
) -> Outcome:
    """Run every workload against ``server`` through ``backend``; the server is stopped after."""
    out = Outcome()
    log(f"{backend.name}: first start")
    out.first_start = server.start()
    try:
        prepare(backend)
        solo, pub, multi = "w1-solo", "w1-publish", [f"w1-c{k}" for k in range(sizes.clients)]
        warm = [f"warm-{k}" for k in range(sizes.clients)]
        models = [f"m{k}" for k in range(sizes.models)]
        with backend.client() as client:
            for model in [solo, pub, *multi, *warm, *models]:
                backend.create_model(client, model)
        log(f"{backend.name}: warming {sizes.clients} client processes")
        register_many(clients, backend, [[(m, list(range(5)))] for m in warm])
        log(f"{backend.name}: W1, 1 client")
        cpu0 = server.cpu_seconds()
        out.w1_solo = register_many(clients, backend, [[(solo, list(range(sizes.w1_versions)))]])
        out.extra["w1_cpu_ms"] = (server.cpu_seconds() - cpu0) / sizes.w1_versions * 1e3
        log(f"{backend.name}: W1, {sizes.clients} clients")
        share = sizes.w1_versions // sizes.clients
        out.w1_multi = register_many(clients, backend, [[(m, list(range(share)))] for m in multi])
        if isinstance(backend, CharterBackend):
            log(f"{backend.name}: W1 with publish, 1 client")
            publishing = replace(backend, publish=True)
            jobs = [[(pub, list(range(sizes.w1_versions)))]]
            out.extra["w1_publish"] = register_many(clients, publishing, jobs)
        log(f"{backend.name}: populating {sizes.models} x {sizes.per_model} versions")
        jobs = [
            [(m, list(range(sizes.per_model))) for m in models[k :: sizes.clients]]
            for k in range(sizes.clients)
        ]
        out.populate = register_many(clients, backend, jobs)
        out.loaded_memory = idle_memory(server, sizes.idle_settle_s)
        log(f"{backend.name}: W2 search, lookup")
        cpu0 = server.cpu_seconds()
        out.search = search_latency(backend, models, sizes.samples, sizes.per_model)
        out.extra["search_cpu_ms"] = (server.cpu_seconds() - cpu0) / (sizes.samples + 20) * 1e3
        out.lookup = lookup_latency(backend, models, sizes.per_model, sizes.samples)
        log(f"{backend.name}: W3 alias")
        with backend.client() as client:
            backend.prepare_alias(client, models[0], sizes.per_model)
        out.alias_set, out.alias_get = alias_latency(
            backend, models[0], sizes.per_model, sizes.samples
        )
        log(f"{backend.name}: big artifact")
        big_artifact(backend, big, sizes.big_bytes, sizes.big_reps, out)
    finally:
        server.stop()
    for attempt in range(sizes.cold_starts):
        time.sleep(1)
        out.cold_starts.append(server.start())
        try:
            out.idle.append(idle_memory(server, sizes.idle_settle_s))
        finally:
            server.stop()
        log(f"{backend.name}: cold start {attempt + 1}: {out.cold_starts[-1]:.2f} s")
    return out
