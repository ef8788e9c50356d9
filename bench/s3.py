"""S3 ingest benchmark: Charter's ArtifactStore against plain uploads, on moto.

Run::

    .venv/bin/python bench/s3.py [--size-mib 256] [--reps 3] [--part-mib 16]
                                 [--concurrency 4] [--server process|thread]

One run starts moto's S3 server on loopback (no real AWS involved) and measures,
on the same page-cache-warm random file:

1. ``hashlib.sha256`` alone (the local floor of any verified ingest);
2. ``ArtifactStore.put_file`` into a fresh prefix (hash pass, then a multipart
   upload of parts hashed again and completed only if they match);
3. plain ``s3fs.S3FileSystem.put_file`` (multipart, no hashing);
4. plain ``boto3`` ``upload_file`` (its transfer manager, no hashing);
5. a second ``put_file`` of the same content (dedupe: hash + one ``HEAD``);
6. ``ArtifactStore.get_file`` (one streaming ``GET``, verified) vs ``s3fs.get_file``.

moto runs on the same cores (a child process by default, ``--server thread`` for
the in-process server the tests use), so absolute MB/s mostly measure moto; the
ratios between rows are the point. Not part of ``make bench``.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from charter.artifacts import ArtifactStore

MiB = 1024 * 1024


def log(text: str) -> None:
    """Progress on stderr, so stdout holds only the report."""
    print(f"[bench/s3] {text}", file=sys.stderr, flush=True)


def start_moto(mode: str) -> tuple[Callable[[], None], str]:
    """Start moto's S3 server on loopback; point botocore at it. Returns (stop, endpoint).

    ``process``: ``python -m moto.server`` in a child process, so the server does not
    compete for this process's GIL (fairer); ``thread``: moto's ThreadedMotoServer,
    as the tests run it.
    """
    if mode == "thread":
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request

        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        stop: Callable[[], None] = server.stop
    else:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            host, port = probe.getsockname()
        command = [sys.executable, "-m", "moto.server", "-H", host, "-p", str(port)]
        child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection((host, port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or child.poll() is not None:
                    child.kill()
                    raise RuntimeError("moto's server did not start") from None
                time.sleep(0.1)

        def stop() -> None:
            child.terminate()
            child.wait(timeout=10)

    endpoint = f"http://{host}:{port}"
    # The bench is an edge script: like the CLI, it sets up the environment.
    os.environ.update(
        AWS_ENDPOINT_URL=endpoint,
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1",
    )
    return stop, endpoint


def best_of(reps: int, action: Callable[[int], None], cleanup: Callable[[], None]) -> float:
    """Best wall time of ``reps`` runs of ``action(rep)``; ``cleanup`` after each."""
    best = float("inf")
    for rep in range(reps):
        start = time.perf_counter()
        action(rep)
        best = min(best, time.perf_counter() - start)
        cleanup()
    return best


def hash_file(path: Path) -> str:
    hasher = hashlib.sha256()
    buf = bytearray(4 * MiB)
    view = memoryview(buf)
    with path.open("rb", buffering=0) as src:
        while n := src.readinto(buf):
            hasher.update(view[:n])
    return "sha256:" + hasher.hexdigest()


def run(args: argparse.Namespace, work: Path) -> list[tuple[str, float, str]]:
    """Run every measure; return rows (measure, seconds, note)."""
    import boto3
    import s3fs
    from boto3.s3.transfer import TransferConfig

    size = args.size_mib * MiB
    big = work / "model.bin"
    log(f"writing a {args.size_mib} MiB random file")
    with big.open("wb") as out:
        for _ in range(args.size_mib):
            out.write(os.urandom(MiB))
    hash_file(big)  # warm the page cache: every timing reads the file from RAM

    fs = s3fs.S3FileSystem(use_listings_cache=False)
    bucket = f"bench-{uuid.uuid4().hex[:8]}"
    fs.call_s3("create_bucket", Bucket=bucket)

    def wipe() -> None:
        for key in fs.find(bucket):
            fs.rm_file(key)

    rows: list[tuple[str, float, str]] = []
    reps = args.reps
    part, conc = args.part_mib * MiB, args.concurrency

    log("hashlib")
    digest = ""

    def hash_once(_: int) -> None:
        nonlocal digest
        digest = hash_file(big)

    rows.append(("hashlib.sha256 alone (local)", best_of(reps, hash_once, lambda: None), ""))

    log("ArtifactStore.put_file")
    note = f"part {args.part_mib} MiB, {conc} in flight"

    def charter_put(rep: int) -> None:
        store = ArtifactStore(f"s3://{bucket}/charter-{rep}", part_size=part, max_concurrency=conc)
        assert store.put_file(big).digest == digest

    rows.append(("Charter `ArtifactStore.put_file`", best_of(reps, charter_put, wipe), note))

    log("s3fs.put_file")

    def s3fs_put(rep: int) -> None:
        fs.put_file(
            str(big), f"{bucket}/plain-{rep}/model.bin", chunksize=part, max_concurrency=conc
        )

    rows.append(("plain `s3fs.put_file` (no hashing)", best_of(reps, s3fs_put, wipe), note))

    log("boto3 upload_file")
    client = boto3.client("s3")
    config = TransferConfig(multipart_chunksize=part, max_concurrency=conc)

    def boto_put(rep: int) -> None:
        client.upload_file(str(big), bucket, f"boto-{rep}/model.bin", Config=config)

    rows.append(("plain boto3 `upload_file` (no hashing)", best_of(reps, boto_put, wipe), note))

    log("dedupe hit and downloads")
    store = ArtifactStore(f"s3://{bucket}/charter", part_size=part, max_concurrency=conc)
    blob = store.put_file(big)
    rows.append(
        (
            "Charter `put_file` again (dedupe)",
            best_of(reps, lambda _: store.put_file(big) and None, lambda: None),
            "hash + one HEAD",
        )
    )
    dest = work / "back.bin"
    rows.append(
        (
            "Charter `get_file` (verified)",
            best_of(reps, lambda _: store.get_file(blob.digest, dest) and None, dest.unlink),
            "one streaming GET",
        )
    )
    key = f"{bucket}/charter/sha256/{blob.digest[7:9]}/{blob.digest[9:]}"
    rows.append(
        (
            "plain `s3fs.get_file` (not verified)",
            best_of(reps, lambda _: fs.get_file(key, str(dest)), dest.unlink),
            "",
        )
    )
    wipe()
    fs.call_s3("delete_bucket", Bucket=bucket)
    assert size == blob.size
    return rows


def render(rows: list[tuple[str, float, str]], size: int, reps: int, server: str) -> str:
    """A Markdown table: MB/s and time per row, relative to the plain s3fs upload."""
    plain = next(seconds for name, seconds, _ in rows if name.startswith("plain `s3fs.put"))
    lines = [
        "| measure | MB/s | seconds | vs plain s3fs put | note |",
        "|---|---:|---:|---:|---|",
    ]
    for name, seconds, note in rows:
        ratio = f"{plain / seconds:.2f}x" if "put" in name or "upload" in name else "—"
        lines.append(f"| {name} | {size / seconds / 1e6:,.0f} | {seconds:.3f} | {ratio} | {note} |")
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    lines += [
        "",
        f"- {size // MiB} MiB file, best of {reps}; moto S3 server on loopback ({server}).",
        f"- machine: nproc {os.cpu_count()}, Python {platform.python_version()}, "
        f"load average at end {load}.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--size-mib", type=int, default=256, help="file size (default 256)")
    parser.add_argument("--reps", type=int, default=3, help="runs per measure (best is kept)")
    parser.add_argument("--part-mib", type=int, default=16, help="multipart part size")
    parser.add_argument("--concurrency", type=int, default=4, help="parts in flight")
    parser.add_argument(
        "--server", choices=["process", "thread"], default="process", help="how moto runs"
    )
    args = parser.parse_args(argv)
    base = Path(__file__).resolve().parent / ".work"
    base.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="charter-s3-", dir=base))
    stop, endpoint = start_moto(args.server)
    log(f"moto ({args.server}) at {endpoint}, work folder {work}")
    try:
        rows = run(args, work)
    finally:
        stop()
        shutil.rmtree(work, ignore_errors=True)
    print(render(rows, args.size_mib * MiB, args.reps, args.server))
    return 0


if __name__ == "__main__":
    sys.exit(main())
