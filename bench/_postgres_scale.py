"""Charter alone on PostgreSQL: search and lookup latency over REST as the registry grows.

A throwaway cluster (``tests/_postgres.py``'s ``Cluster``: ``initdb`` as an
unprivileged user, loopback, a free port, fsync off) holds one registry. Its
template version is registered and published over REST (blob, manifest,
ledger entries: all real); the rest are bulk-loaded with PostgreSQL ``COPY``
into the store's own tables (``models``, ``versions``, ``version_files``), as
published versions of 100 each per model, copying the template's row (same
manifest, fingerprints and blob). No ledger entries are written for them, so
``audit verify`` would report them; nothing here reads the ledger. After each
load the tables are ``ANALYZE``d (autovacuum would, a little later).

At each size the same ``charter serve`` process (started once, on the empty
registry) answers: search = the versions of a random model (100 items, one
page), lookup = one random version, stage = the model's stage pointers (the
W3 read), each p50/p95 over ``samples`` calls on one keep-alive connection
(``STAGE_SAMPLES`` for the stage read, whose cost grows with the registry).
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path
from typing import Any

from _charter_backend import CharterBackend
from _report import Report
from _servers import charter_init, charter_server, free_port, log
from _workloads import Latency, payload, sample

PER_MODEL = 100
STAGE_SAMPLES = 40
COPY_BATCH = 50_000


def _cluster() -> Any:
    """Start the test suite's throwaway cluster (the tests folder joins ``sys.path``)."""
    tests = str(Path(__file__).resolve().parent.parent / "tests")
    if tests not in sys.path:
        sys.path.append(tests)
    from _postgres import Cluster

    cluster = Cluster()
    cluster.start()
    return cluster


def _copy_rows(cursor: Any, table: str, columns: list[str], rows: list[tuple[Any, ...]]) -> None:
    names = ", ".join(f'"{c}"' for c in columns)
    with cursor.copy(f'COPY "{table}" ({names}) FROM STDIN') as copy:
        for row in rows:
            copy.write_row(row)


class Loader:
    """Bulk-loads published versions of new models, copying one template version."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        with conn.cursor() as cur:
            cur.execute("SELECT * FROM versions ORDER BY id LIMIT 1")
            self.v_cols = [d.name for d in cur.description]
            self.v_row = list(cur.fetchone())
            cur.execute("SELECT * FROM models ORDER BY id LIMIT 1")
            self.m_cols = [d.name for d in cur.description]
            self.m_row = list(cur.fetchone())
            cur.execute(
                "SELECT path, digest, size FROM version_files WHERE version_id = %s",
                (self.v_row[0],),
            )
            self.files = cur.fetchall()
        self.models = 0  # bulk models so far: p0, p1, ...

    def grow(self, models: int) -> None:
        """Add models until there are ``models`` bulk models of ``PER_MODEL`` versions."""
        start = self.models
        with self.conn.cursor() as cur:
            cur.execute("SELECT coalesce(max(id), 0) FROM models")
            mid0 = cur.fetchone()[0] + 1
            cur.execute("SELECT coalesce(max(id), 0) FROM versions")
            vid = cur.fetchone()[0] + 1
            m_rows, v_rows, f_rows = [], [], []
            for k in range(start, models):
                mid = mid0 + k - start
                m_rows.append(self._model(mid, f"p{k}"))
                for i in range(PER_MODEL):
                    v_rows.append(self._version(vid, mid, f"1.0.{i}"))
                    f_rows += [(vid, path, digest, size) for path, digest, size in self.files]
                    vid += 1
                if len(v_rows) >= COPY_BATCH or k == models - 1:
                    self._flush(cur, m_rows, v_rows, f_rows)
                    m_rows, v_rows, f_rows = [], [], []
            for table in ("models", "versions"):
                cur.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT max(id) FROM {table}))"
                )
            self.conn.commit()
            self.conn.autocommit = True
            cur.execute("ANALYZE models, versions, version_files")
            self.conn.autocommit = False
        self.models = models

    def _flush(self, cur: Any, models: list[Any], versions: list[Any], files: list[Any]) -> None:
        """COPY drafts and their manifests, then publish them as ``WriteTx.publish_version``.

        The immutability triggers refuse manifest rows of a published version, so the
        rows go in as drafts and are published by the same UPDATE the store makes.
        """
        _copy_rows(cur, "models", self.m_cols, models)
        _copy_rows(cur, "versions", self.v_cols, versions)
        _copy_rows(cur, "version_files", ["version_id", "path", "digest", "size"], files)
        row = dict(zip(self.v_cols, self.v_row, strict=True))
        cur.execute(
            "UPDATE versions SET state = %s, published_by = %s, published_at = %s, "
            "baseline_digest = %s WHERE id BETWEEN %s AND %s",
            (
                row["state"], row["published_by"], row["published_at"], row["baseline_digest"],
                versions[0][self.v_cols.index("id")], versions[-1][self.v_cols.index("id")],
            ),
        )  # fmt: skip
        self.conn.commit()

    def _model(self, mid: int, name: str) -> tuple[Any, ...]:
        row = dict(zip(self.m_cols, self.m_row, strict=True))
        row.update(id=mid, name=name)
        return tuple(row[c] for c in self.m_cols)

    def _version(self, vid: int, mid: int, version: str) -> tuple[Any, ...]:
        row = dict(zip(self.v_cols, self.v_row, strict=True))
        row.update(id=vid, model_id=mid, version=version, parent_id=None, state="draft")
        row.update(published_by=None, published_at=None, baseline_digest=None)
        return tuple(row[c] for c in self.v_cols)


def _latencies(backend: CharterBackend, models: int, samples: int) -> dict[str, Latency]:
    rng = random.Random(models)
    with backend.client() as client:

        def search(_: int) -> None:
            found = backend.search(client, f"p{rng.randrange(models)}")
            if found != PER_MODEL:
                raise RuntimeError(f"search found {found} versions, expected {PER_MODEL}")

        def lookup(_: int) -> None:
            backend.lookup(client, f"p{rng.randrange(models)}", f"1.0.{rng.randrange(PER_MODEL)}")

        def stage(_: int) -> None:
            backend.get_alias(client, "template", "staging")

        return {
            "search": Latency.of(sample(search, samples)),
            "lookup": Latency.of(sample(lookup, samples)),
            # The stage read costs O(registry size) today: few samples keep 1M affordable.
            "stage": Latency.of(sample(stage, min(samples, STAGE_SAMPLES), warmup=2)),
        }


def _seed(backend: CharterBackend) -> None:
    """The template version, through the API: registered, published, holding ``staging``."""
    with backend.client() as client:
        backend.create_model(client, "template")
        backend.register(client, "template", 0, payload("template", 0))
        backend.prepare_alias(client, "template", 1)
        backend.set_alias(client, "template", "staging", backend.version_id(0))


def measure_postgres(work: Path, sizes: list[int], samples: int, rep: Report) -> None:
    """Search, lookup and stage-read latency over REST at each registry size in ``sizes``."""
    import psycopg

    log("PostgreSQL: starting a throwaway cluster")
    cluster = _cluster()
    server = None
    try:
        database = cluster.migrated_database()
        url = cluster.url(database)
        home = work / "charter-pg" / "home"
        home.parent.mkdir(parents=True)
        token = charter_init(home, url)
        server = charter_server(home, free_port(), token, url)
        cold = server.start()
        backend = CharterBackend(server.base_url, token)
        _seed(backend)
        first: Latency | None = None
        with psycopg.connect(
            host="127.0.0.1", port=cluster.port, user="postgres", dbname=database
        ) as conn:
            loader = Loader(conn)
            for size in sizes:
                models = size // PER_MODEL
                log(f"PostgreSQL: loading to {models:,} models x {PER_MODEL} versions")
                t0 = time.perf_counter()
                loader.grow(models)
                load_s = time.perf_counter() - t0
                log(f"PostgreSQL: loaded in {load_s:.0f} s; measuring")
                got = _latencies(backend, models, samples)
                first = first or got["search"]
                growth = got["search"].p95 / first.p95
                rep.pg_row(
                    f"{size:,} versions ({models:,} models x {PER_MODEL})",
                    str(got["search"]),
                    str(got["lookup"]),
                    str(got["stage"]),
                    f"{growth:.2f}x",
                    None if size != sizes[-1] else growth <= 2.0,
                )
        mem = server.memory()
        rep.note(
            f"PostgreSQL: `charter serve` started in {cold:.2f} s on the empty registry; "
            f"{samples:,} samples per search/read figure, {min(samples, STAGE_SAMPLES)} per stage "
            f"read; server RSS at the end {mem.rss / 2**20:,.0f} MiB"
        )
    finally:
        if server is not None:
            server.stop()
        cluster.stop()
