"""Crash proof: SIGKILL ``charter serve`` at random moments, then prove nothing tore.

Two clients drive register / publish / promote through the real SDK over HTTP,
each on a model of its own, while a seeded RNG picks when the server's whole
session gets SIGKILL: after a random delay, or (every fifth iteration) while the
server is writing a large upload, so some kills always leave a temporary behind.
After every kill the crashed registry is opened in this process, before any
server touches it again, and must agree with the clients: ``audit verify`` finds
no problem (no state without its ledger entry), every visible version is one a
client sent, with its files stored and intact, every blob in the store hashes
to its name, every success response is durable, and an operation that died
with a transport error happened fully or not at all; its retry is then refused
cleanly or succeeds (some cut-short registrations are abandoned instead, so
their blobs become garbage). A server that dies before the kill fails the test.
At the end the CLI confirms the whole (``audit verify --artifacts``) and
``charter gc`` removes exactly the temporaries the kills left, then exactly the
abandoned registrations' blobs, and nothing a version needs.

``CHARTER_CRASH_SEED=<n>`` replays a run's choices (the seed is printed, and
attached to any failure); the moments themselves still depend on the machine.
"""

from __future__ import annotations

import json
import os
import random
import threading
from pathlib import Path
from typing import Any

import pytest

from _postgres import selected_backends
from _served import ServedRegistry, charter, create_token
from charter import open_registry
from charter.artifacts import ArtifactStore
from charter.client import RemoteRegistry
from charter.settings import Settings
from proof._crash import (
    JOIN_TIMEOUT_S,
    MIB,
    POLICY,
    TRAP_WAIT_S,
    Killer,
    Stream,
    Tally,
    UploadTrap,
    drive,
    inspect_crash,
    retry_unknown,
    temporaries,
)

ITERATIONS = {"sqlite": 50, "postgresql": 15}
CLIENTS = 2
MAX_DELAY_S = 0.6  # the server has just answered its readiness probe: ops run meanwhile
TRAP_EVERY = 5  # every fifth kill waits for a large upload in progress


def _client(served: ServedRegistry, token: str) -> RemoteRegistry:
    reg = open_registry(served.url, token=token)
    assert isinstance(reg, RemoteRegistry)
    return reg


def _cli_json(home: Path, database_url: str | None, *args: str) -> dict[str, Any]:
    """Run ``charter ARGS --json`` on the home; its parsed output (exit 0 required)."""
    done = charter(home, database_url, *args, "--json")
    assert done.returncode == 0, f"charter {' '.join(args)}: {done.stdout}{done.stderr}"
    parsed: dict[str, Any] = json.loads(done.stdout)
    return parsed


class Campaign:
    """One registry home, its server, the clients' streams and the running tally."""

    def __init__(self, tmp_path: Path, database_url: str | None, seed: int) -> None:
        self.home = tmp_path / "home"
        self.database_url = database_url
        done = charter(self.home, database_url, "init")
        assert done.returncode == 0, done.stderr
        self.token = create_token(self.home, database_url, "alice")
        self.served = ServedRegistry(self.home, database_url, self.token, tmp_path / "serve.log")
        self.settings = Settings(home=self.home, user="alice", database_url=database_url)
        self.artifacts = Path(self.settings.resolved_artifacts_url)
        self.rng = random.Random(seed)
        self.streams = [
            Stream(f"crash-{i}", tmp_path / "work", random.Random(self.rng.getrandbits(64)))
            for i in range(CLIENTS)
        ]
        self.verified: set[str] = set()  # versions and blobs re-hashed already
        self.tally = Tally()
        self.gc: dict[str, Any] = {}  # what the final ``charter gc`` removed
        self.gc_blobs = 0
        self.audit: dict[str, Any] = {}  # the final ``audit verify --artifacts``

    def setup(self) -> None:
        """Create each stream's model with a policy its versions pass."""
        self.served.start()
        with _client(self.served, self.token) as reg:
            for stream in self.streams:
                reg.create_model(name=stream.model, risk_tier="low")
                reg.set_policy(text=POLICY, model=stream.model)

    def iteration(self, number: int) -> None:
        """Restart, retry what is unknown, run the clients until the kill, inspect."""
        if self.served.process is None:
            self.served.start()
        clients = [_client(self.served, self.token) for _ in self.streams]
        try:
            for reg, stream in zip(clients, self.streams, strict=True):
                retry_unknown(reg, stream)
            self._run_until_killed(number, clients)
        finally:
            for reg in clients:
                reg.close()
        self.tally.outcomes.update(inspect_crash(self.settings, self.streams, self.verified))

    def _run_until_killed(self, number: int, clients: list[RemoteRegistry]) -> None:
        killer = Killer(self.served)
        before = temporaries(self.artifacts)
        trap: UploadTrap | None = None
        if number % TRAP_EVERY == TRAP_EVERY // 2:
            stream = self.rng.choice(self.streams)
            after = MIB + self.rng.randrange(2 * MIB)  # large files have >= 3 MiB
            trap = stream.trap = UploadTrap(killer, self.artifacts, after, before)
            stream.big_next = True
            timer = threading.Timer(JOIN_TIMEOUT_S / 2, killer.fire, args=("trap fallback",))
        else:
            timer = threading.Timer(self.rng.uniform(0, MAX_DELAY_S), killer.fire, args=("timer",))
        threads = [
            threading.Thread(target=drive, args=(stream, reg), name=stream.model, daemon=True)
            for reg, stream in zip(clients, self.streams, strict=True)
        ]
        timer.start()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(JOIN_TIMEOUT_S + TRAP_WAIT_S)
        timer.cancel()
        killer.fire("clients stopped")  # a client that failed stops early: end it here too
        for stream in self.streams:
            stream.trap = None
            if stream.failure is not None:
                raise stream.failure
        assert not any(t.is_alive() for t in threads), "a client hangs on a dead server"
        # Only our kill may end the server: clients that stopped first met a server
        # that died or hung up on its own, and what it left must not pass as a kill.
        assert killer.exited is None and killer.cause != "clients stopped", (
            f"the server went away before the kill (exit {killer.exited}):\n"
            + self.served.log_tail()
        )
        self.tally.kills += 1
        self.tally.mid_upload += bool(trap and trap.landed)
        self.tally.new_temporaries += len(temporaries(self.artifacts) - before)

    def finish(self) -> None:
        """Retry the last unknown outcomes, stop the server, check and collect garbage."""
        self.served.start()
        with _client(self.served, self.token) as reg:
            for stream in self.streams:
                retry_unknown(reg, stream)
        self.served.stop()
        self.verified.clear()  # re-hash every version and blob once more
        inspect_crash(self.settings, self.streams, self.verified)
        report = _cli_json(self.home, self.database_url, "audit", "verify", "--artifacts")
        assert report["ok"] and not report["problems"], report
        left = temporaries(self.artifacts)
        assert left or not self.tally.mid_upload, "kills mid-upload left no temporary"
        gc = _cli_json(self.home, self.database_url, "gc", "--older-than", "0")
        assert gc["temporaries"] == len(left), (gc, sorted(left))
        assert not temporaries(self.artifacts), "gc left temporaries behind"
        orphans = self._orphans()
        blobs = _cli_json(self.home, self.database_url, "gc", "--older-than", "0", "--blobs")
        assert set(blobs["blobs"]) == orphans, "gc --blobs removed other blobs than the orphans"
        report = _cli_json(self.home, self.database_url, "audit", "verify", "--artifacts")
        assert report["ok"] and not report["problems"], f"after gc --blobs: {report}"
        self.audit = report
        self.gc, self.gc_blobs = gc, len(orphans)

    def _orphans(self) -> set[str]:
        """Blobs only abandoned registrations sent, and the kill let them store."""
        stored = set(ArtifactStore(self.settings.resolved_artifacts_url).iter_digests())
        files = [f for s in self.streams for v in s.abandoned for f in s.sent[v]]
        kept = [f for s in self.streams for fs in s.registered.values() for f in fs]
        return ({f.digest for f in files} & stored) - {f.digest for f in kept}


def run(tmp_path: Path, database_url: str | None, iterations: int, seed: int) -> Campaign:
    """The whole campaign; the server is killed whatever happens."""
    campaign = Campaign(tmp_path, database_url, seed)
    try:
        campaign.setup()
        for number in range(iterations):
            try:
                campaign.iteration(number)
            except BaseException as exc:
                exc.add_note(f"in iteration {number}; server log: {campaign.served.log_path}")
                raise
        campaign.finish()
    finally:
        campaign.served.kill()
    return campaign


@pytest.mark.slow
@pytest.mark.parametrize("backend", selected_backends())
def test_sigkill_at_random_moments_leaves_a_consistent_registry(
    backend: str, database_url: str | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed = int(os.environ.get("CHARTER_CRASH_SEED") or random.SystemRandom().getrandbits(32))
    for name in [n for n in os.environ if n.startswith("CHARTER_")]:
        # The server and CLI run without them (``charter_env``): so does the in-process check.
        monkeypatch.delenv(name)
    print(f"crash suite on {backend}: CHARTER_CRASH_SEED={seed}")
    try:
        campaign = run(tmp_path, database_url, ITERATIONS[backend], seed)
    except BaseException as exc:
        exc.add_note(f"replay with CHARTER_CRASH_SEED={seed} ({backend})")
        raise
    tally = campaign.tally
    assert tally.kills == ITERATIONS[backend]
    assert tally.mid_upload, "no kill landed during an upload: the trap never sprang"
    gc = campaign.gc
    audit = campaign.audit
    print(tally.summary())
    print(
        f"ledger: {audit['entries']} entries, {audit['checkpoints']} signed checkpoints, "
        f"{audit['blobs']} blobs re-hashed"
    )
    print(
        f"gc: {gc['temporaries']} temporaries ({gc['freed_bytes']:,} bytes), then "
        f"{campaign.gc_blobs} unreferenced blobs"
    )
