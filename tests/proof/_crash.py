"""Helpers of the crash proof suite (``test_crash.py``): the workload, the killer, the checks.

Each client drives one model of its own through the real SDK over HTTP, so it
knows exactly what it believes happened: the operations that got a success
response (durable: they must survive any crash) and at most one that got a
transport error (its outcome is unknown: it must have happened fully or not at
all). After each SIGKILL the crashed registry is opened in this process, before
any server touches it again, and compared with those beliefs; then the client
retries the unknown operation against the restarted server.
"""

from __future__ import annotations

import random
import shutil
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from _builders import STAGING_ACCURACY_POLICY
from _served import ServedRegistry
from charter._client_http import hash_file
from charter.client import RemoteRegistry
from charter.domain.entities import FileRecord, VersionState
from charter.domain.errors import (
    AlreadyExistsError,
    CharterError,
    HomeError,
    ImmutableError,
    InvalidInputError,
)
from charter.domain.profile import parse_document
from charter.service import Registry
from charter.settings import Settings

__all__ = [
    "POLICY",
    "Killer",
    "Op",
    "Stream",
    "Tally",
    "UploadTrap",
    "drive",
    "inspect_crash",
    "retry_unknown",
    "temporaries",
]

MIB = 1024 * 1024
STAGES = ("staging", "production")
# A policy that lets every version with this profile through both stages: the
# suite is about crashes, not gates, but each promotion still runs a real gate
# (and records its decision) before the stage moves.
POLICY = STAGING_ACCURACY_POLICY
PROFILE = parse_document("evaluations:\n  - {name: accuracy, value: 0.91}\n")
# A client gives up this share of the registrations a kill cut short, leaving
# their uploaded blobs unreferenced, for ``gc --blobs``; it retries the others.
ABANDON = 0.3
# Hang guards only: nothing is asserted about time.
TRAP_WAIT_S = 20.0
JOIN_TIMEOUT_S = 120.0

OpKind = Literal["register", "publish", "promote"]


@dataclass(frozen=True)
class Op:
    """One operation a client sends: ``stage`` only for a promotion."""

    kind: OpKind
    model: str
    version: str
    stage: str = ""

    def __str__(self) -> str:
        where = f" -> {self.stage}" if self.stage else ""
        return f"{self.kind} {self.model}@{self.version}{where}"


@dataclass
class Tally:
    """What the kills hit, for the report (and the gc assertion)."""

    kills: int = 0
    mid_upload: int = 0  # trap kills that found the server writing a temporary
    new_temporaries: int = 0  # temporaries a kill left behind, over all iterations
    outcomes: Counter[str] = field(default_factory=Counter)  # "publish: not committed"…

    def summary(self) -> str:
        """One line per finding, for the test's output."""
        lines = [
            f"kills: {self.kills}, traps sprung mid-upload: {self.mid_upload}, "
            f"temporaries left by kills: {self.new_temporaries}"
        ]
        lines += [f"  in flight: {k}: {n}" for k, n in sorted(self.outcomes.items())]
        return "\n".join(lines)


def temporaries(artifacts: Path) -> set[str]:
    """Names of the artifact store's temporaries (puts in progress or interrupted)."""
    folder = artifacts / "tmp"
    return {p.name for p in folder.iterdir()} if folder.is_dir() else set()


class Killer:
    """SIGKILLs the server once per iteration, whoever asks first (timer or trap)."""

    def __init__(self, served: ServedRegistry) -> None:
        self._served = served
        self._lock = threading.Lock()
        self.cause: str | None = None
        self.exited: int | None = None  # the server's exit code, had it died on its own

    def fire(self, cause: str) -> None:
        """Kill the server's whole session now, unless it was killed already."""
        with self._lock:
            if self.cause is not None:
                return
            self.cause = cause
            process = self._served.process
            if process is not None:
                self.exited = process.poll()
            self._served.kill()


@dataclass
class UploadTrap:
    """A progress callback that kills the server while it is writing a large upload.

    A timer alone lands mid-upload only by luck; this waits until the client has
    sent ``after`` bytes and a *new* temporary exists on the server (it is then
    blocked on the rest of the body, which this callback holds back), and kills.
    """

    killer: Killer
    artifacts: Path
    after: int
    before: set[str]
    sent: int = 0
    landed: bool = False

    def __call__(self, increment: int) -> None:
        self.sent += increment
        if self.sent < self.after or self.killer.cause is not None:
            return
        deadline = time.monotonic() + TRAP_WAIT_S
        while time.monotonic() < deadline:
            if temporaries(self.artifacts) - self.before:
                self.landed = True
                break
            time.sleep(0.005)
        self.killer.fire("upload trap")


@dataclass
class Stream:
    """One client's model, its plan of operations and what it believes is stored."""

    model: str
    workdir: Path
    rng: random.Random
    todo: deque[Op] = field(default_factory=deque)
    next_patch: int = 0
    big_next: bool = False  # the next version gets a large file (for the upload trap)
    trap: UploadTrap | None = None  # springs only on a version with a large file
    large: set[str] = field(default_factory=set)
    # The client's beliefs: confirmed by a success response (or found to have
    # happened after an unknown outcome).
    registered: dict[str, tuple[FileRecord, ...]] = field(default_factory=dict)
    published: set[str] = field(default_factory=set)
    moves: list[tuple[str, str]] = field(default_factory=list)  # (stage, version)
    sent: dict[str, tuple[FileRecord, ...]] = field(default_factory=dict)  # every attempt
    abandoned: set[str] = field(default_factory=set)  # registrations never retried
    reusable: bytes = b""  # weights of an earlier version, to send again (dedupe)
    unknown: Op | None = None  # sent, but the answer was a transport error
    happened: bool | None = None  # what the crashed state says about ``unknown``
    failure: BaseException | None = None

    def next_op(self) -> Op:
        """The next operation, planning a new version when the plan is done."""
        if not self.todo:
            self._plan_version()
        return self.todo[0]

    def _plan_version(self) -> None:
        version = f"1.0.{self.next_patch}"
        self.next_patch += 1
        self.sent[version] = self._write_files(version)
        self.todo.append(Op("register", self.model, version))
        if self.rng.random() < 0.8:  # some drafts stay drafts
            self.todo.append(Op("publish", self.model, version))
            for stage in STAGES:
                if self.rng.random() < 0.5:
                    self.todo.append(Op("promote", self.model, version, stage))

    def _write_files(self, version: str) -> tuple[FileRecord, ...]:
        """Write the version's folder: unique weights (a few MiB now and then) and a config.

        Returns:
            The manifest the server must end up with, sorted by path.
        """
        folder = self.folder(version)
        folder.mkdir(parents=True)
        big = self.big_next or self.rng.random() < 0.1
        self.big_next = False
        if big:  # one random MiB repeated: unique content, cheap to make
            self.large.add(version)
            block = self.rng.randbytes(MIB)
            weights = block * self.rng.randint(3, 6) + version.encode()
        elif self.reusable and self.rng.random() < 0.15:
            weights = self.reusable  # stored already, unless its registration died
        else:
            weights = self.reusable = self.rng.randbytes(self.rng.randint(1, 64) * 1024)
        (folder / "weights.bin").write_bytes(weights)
        (folder / "config.json").write_text(f'{{"version": "{version}"}}')
        records = [FileRecord(p.name, *hash_file(p)) for p in folder.iterdir()]
        return tuple(sorted(records, key=lambda r: r.path))

    def folder(self, version: str) -> Path:
        return self.workdir / self.model / version

    def confirm(self, op: Op) -> None:
        """Record ``op`` as done (the server said so, or the crashed state shows it)."""
        if op.kind == "register":
            self.registered[op.version] = self.sent[op.version]
        elif op.kind == "publish":
            self.published.add(op.version)
        else:
            self.moves.append((op.stage, op.version))
        if self.todo and self.todo[0] == op:
            self.todo.popleft()

    def abandon(self, version: str) -> None:
        """Give up a registration that did not happen: what it uploaded is garbage."""
        self.abandoned.add(version)
        self.todo = deque(op for op in self.todo if op.version != version)
        shutil.rmtree(self.folder(version), ignore_errors=True)

    def discard_files(self, op: Op) -> None:
        """Remove a registered version's local folder (the store has the bytes)."""
        if op.kind == "register":
            shutil.rmtree(self.folder(op.version), ignore_errors=True)

    def perform(self, reg: RemoteRegistry, op: Op) -> None:
        """Send ``op``; raise whatever the SDK raises."""
        if op.kind == "register":
            trap = self.trap
            if trap is None or op.version not in self.large or trap.killer.cause is not None:
                trap = None
            else:
                trap.sent = 0
            reg.register(
                model=op.model, path=self.folder(op.version), version=op.version,
                profile=PROFILE, progress=trap,
            )  # fmt: skip
        elif op.kind == "publish":
            reg.publish(model=op.model, version=op.version)
        else:
            reg.promote(model=op.model, version=op.version, stage=op.stage)


def drive(stream: Stream, reg: RemoteRegistry) -> None:
    """Thread body: send the stream's operations until one meets a dead server.

    A transport error (``HomeError``) makes that operation's outcome unknown;
    any other error is a failure of the registry, kept for the main thread.
    """
    try:
        while True:
            op = stream.next_op()
            try:
                stream.perform(reg, op)
            except HomeError:
                stream.unknown = op
                return
            stream.confirm(op)
            stream.discard_files(op)
    except BaseException as exc:
        stream.failure = exc


def _happened(reg: Registry, op: Op) -> bool:
    """Whether ``op`` took effect in the (crashed) registry ``reg``."""
    versions = {v.version: v for v in reg.list_versions(model=op.model)}
    if op.kind == "register":
        return op.version in versions
    if op.kind == "publish":
        found = versions.get(op.version)
        return found is not None and found.state is VersionState.PUBLISHED
    history = reg.stage_history(model=op.model, stage=op.stage)
    return any(m.version == op.version for m in history)


def inspect_crash(settings: Settings, streams: list[Stream], verified: set[str]) -> list[str]:
    """Open the crashed registry here and hold it against every client's beliefs.

    Settles each unknown outcome (adding it to the beliefs if it happened), then
    checks: the ledger and every state row agree (``audit verify``); the visible
    versions, their manifests, published states and stage moves are exactly the
    believed ones; every visible version's files are stored and hash right; and
    every blob in the store, referenced or not, holds exactly the bytes its name
    says (a kill mid-upload may leave a temporary, never a partial blob).

    Args:
        verified: version refs and blob digests re-hashed already (both are
            immutable, so each is re-hashed once); updated.

    Returns:
        Where the kill caught each unknown operation, for the report.

    Raises:
        AssertionError: naming what disagrees.
    """
    reg = Registry(settings)
    caught = []
    try:
        report = reg.verify()
        assert not report.problems, f"audit verify after a crash: {report.problems}"
        for stream in streams:
            if stream.unknown is not None:
                stream.happened = _happened(reg, stream.unknown)
                caught.append(_caught(reg, stream))
                if stream.happened:
                    stream.confirm(stream.unknown)
            _compare(reg, stream, verified)
        for digest in reg.artifacts.iter_digests():
            if digest not in verified:
                assert reg.artifacts.verify(digest), f"blob {digest} is partial or corrupt"
                verified.add(digest)
    finally:
        reg.close()
    return caught


def _caught(reg: Registry, stream: Stream) -> str:
    """Where the kill caught the unknown operation, as far as the stored state tells.

    A registration that did not happen but whose blobs are all stored died after
    its uploads: while the server fingerprinted the files or committed the
    transaction (or just before the client's final request).
    """
    op = stream.unknown
    assert op is not None
    if stream.happened:
        return f"{op.kind}: committed, answer lost"
    if op.kind == "register":
        stored = all(reg.artifacts.exists(f.digest) for f in stream.sent[op.version])
        return "register: not committed, " + ("blobs stored" if stored else "blobs missing")
    return f"{op.kind}: not committed"


def _compare(reg: Registry, stream: Stream, verified: set[str]) -> None:
    model = stream.model
    versions = {v.version: v for v in reg.list_versions(model=model)}
    assert set(versions) == set(stream.registered), (
        f"{model}: versions stored {sorted(versions)} != confirmed {sorted(stream.registered)}"
    )
    published = {n for n, v in versions.items() if v.state is VersionState.PUBLISHED}
    assert published == stream.published, f"{model}: published {published} != {stream.published}"
    history = sorted(reg.stage_history(model=model), key=lambda m: m.ledger_seq)
    moves = [(m.stage, m.version) for m in history]
    assert moves == stream.moves, f"{model}: stage moves {moves} != confirmed {stream.moves}"
    for number in versions:
        files = tuple(sorted(reg.files(model=model, version=number), key=lambda r: r.path))
        assert files == stream.registered[number], f"{model}@{number}: manifest {files}"
        ref = f"{model}@{number}"
        if ref not in verified:  # blobs are immutable: re-hash each version once
            problems = reg.verify_version(model=model, version=number).problems
            assert not problems, f"{ref} is visible but its files are not intact: {problems}"
            verified.add(ref)


# What a retry must raise when the operation it repeats had happened.
_ALREADY: dict[OpKind, type[CharterError]] = {
    "register": AlreadyExistsError,
    "publish": ImmutableError,
    "promote": InvalidInputError,  # "… already holds <stage>"
}


def retry_unknown(reg: RemoteRegistry, stream: Stream) -> None:
    """Repeat the operation whose outcome was unknown, as a careful client would.

    One that happened (as :func:`inspect_crash` found) must be refused cleanly,
    and a re-registration must find the identical version; one that did not
    must now succeed.

    Raises:
        AssertionError: when the retry behaves otherwise.
    """
    op, happened = stream.unknown, stream.happened
    if op is None:
        return
    stream.unknown = stream.happened = None
    if not happened and op.kind == "register" and stream.rng.random() < ABANDON:
        stream.abandon(op.version)
        return
    if not happened:
        stream.perform(reg, op)
        stream.confirm(op)
    else:
        try:
            stream.perform(reg, op)
        except _ALREADY[op.kind]:
            pass
        else:
            raise AssertionError(f"retrying {op}, which had happened, succeeded again")
        if op.kind == "register":
            found = reg.files(model=op.model, version=op.version)
            files = tuple(sorted(found, key=lambda r: r.path))
            assert files == stream.sent[op.version], f"re-register of {op} found other files"
    stream.discard_files(op)
