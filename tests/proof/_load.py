"""The client side of the concurrency proof: seeded clients driving one ``charter serve``.

Each client is a thread with its own :class:`~charter.client.RemoteRegistry` (its
own keep-alive connection and its own token), so the server sees N independent
users. A client runs ``Plan.ops`` operations: mostly a seeded random mix of
register, publish, amend, gate and promote, and at fixed points a *round* in
which every client waits on one barrier and then, at the same moment, registers
the same version number of the arena model (exactly one may win) or promotes its
own contender to the arena's production stage (a compare-and-set on the stage's
generation: one winner per generation). Every answer the server gives is kept as
an :class:`Outcome`, so the test can compare what clients were told with what
the registry holds afterwards.

Random choices are seeded per client (``seed:client``); which other client's
version a pick lands on still depends on thread timing, so a seed reproduces the
workload's shape, not its interleaving.
"""

from __future__ import annotations

import random
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from charter.client import RemoteRegistry
from charter.domain.errors import (
    AlreadyExistsError,
    CharterError,
    ConflictError,
    GateRefusedError,
)
from charter.domain.profile import parse_document
from charter.sdk import open_registry

__all__ = ["ARENA", "FLOOR", "POLICY", "Board", "Client", "Outcome", "Plan", "client_user"]
__all__ += ["BARRIER_TIMEOUT_S", "contender_version", "race_version"]

STAGING, PRODUCTION = "staging", "production"
ARENA = "arena"
# The staging gate's only rule: accuracy >= FLOOR. Versions are registered either
# side of it, so every gate and promotion has an answer known in advance.
FLOOR = 0.85
PASSING, FAILING = 0.91, 0.70
POLICY = f"""
schema: charter.policy/v1
stages: [{STAGING}, {PRODUCTION}]
rules:
  {STAGING}:
    metrics: [{{metric: accuracy, min: {FLOOR}}}]
"""
# Every version carries this same file: the clients' first registrations upload
# the same blob at the same moment, and every later one finds it stored (dedupe).
SHARED_CONFIG = b'{"layers": 2, "activation": "relu"}\n'
# Only a guard against a client that never reaches a round; nothing is asserted on time.
BARRIER_TIMEOUT_S = 600.0
# The random mix between rounds (weights; a kind whose precondition fails registers).
MIX = {"register": 30, "publish": 20, "amend": 15, "gate": 20, "promote": 15}
# The error classes a client expects, by the result name it records.
EXPECTED: dict[str, type[CharterError]] = {
    "exists": AlreadyExistsError,
    "conflict": ConflictError,
    "refused": GateRefusedError,
}


def client_user(index: int) -> str:
    """The registry user (a contributor) client ``index`` acts as."""
    return f"client-{index}"


@dataclass(frozen=True)
class Plan:
    """How much load: ``clients`` × ``ops`` operations, ``rounds`` of them contested."""

    clients: int
    ops: int
    models: int
    rounds: int
    seed: int

    @property
    def model_names(self) -> list[str]:
        """The models the random mix registers into (the arena is apart)."""
        return [f"m{i}" for i in range(self.models)]

    def round_steps(self) -> dict[int, tuple[int, str]]:
        """Operation index -> (round, step) for the contested rounds.

        Round ``r`` ends at an anchor spread evenly over the run; its four steps
        take the four operations up to it: register and publish the client's
        contender, race the registration, race the promotion.
        """
        steps: dict[int, tuple[int, str]] = {}
        for r in range(self.rounds):
            anchor = (r + 1) * self.ops // (self.rounds + 1)
            for offset, step in enumerate(
                ("contender", "publish", "race_register", "race_promote")
            ):
                steps[anchor - 3 + offset] = (r, step)
        if len(steps) != 4 * self.rounds or min(steps, default=0) < 0:
            raise ValueError(f"{self.rounds} rounds do not fit in {self.ops} operations")
        return steps


def race_version(round_: int) -> str:
    """The version number every client registers at once in round ``round_``."""
    return f"{100 + round_}.0.0"


def contender_version(client: int, round_: int) -> str:
    """Client ``client``'s own arena version for round ``round_``."""
    return f"{client + 1}.{round_}.0"


@dataclass(frozen=True)
class Outcome:
    """One operation as its client saw it.

    ``result`` is ``ok`` (acknowledged), a name of :data:`EXPECTED` (refused as the
    workload expects may happen) or ``error`` (anything else: a 5xx, a lost
    response, an unexpected refusal). ``detail`` holds what the answer said.
    """

    client: int
    op: int
    kind: str
    model: str
    version: str
    result: str
    detail: dict[str, Any]

    def describe(self) -> str:
        return (
            f"client {self.client} op {self.op} {self.kind} {self.model}@{self.version}: "
            f"{self.result} {self.detail}"
        )


@dataclass
class Board:
    """What clients have been told, shared so they amend and gate each other's versions.

    Only the random mix's models are on it, never the arena (see ``Client.contenders``).
    """

    lock: threading.Lock = field(default_factory=threading.Lock)
    accuracy: dict[tuple[str, str], float] = field(default_factory=dict)
    published: list[tuple[str, str]] = field(default_factory=list)

    def registered(self, ref: tuple[str, str], accuracy: float) -> None:
        with self.lock:
            self.accuracy[ref] = accuracy

    def publish(self, ref: tuple[str, str]) -> None:
        with self.lock:
            self.published.append(ref)

    def pick_published(self, rng: random.Random) -> tuple[str, str] | None:
        with self.lock:
            return rng.choice(self.published) if self.published else None

    def pick_registered(self, rng: random.Random) -> tuple[str, str] | None:
        with self.lock:
            return rng.choice(list(self.accuracy)) if self.accuracy else None


@dataclass
class Client:
    """One simulated user: runs its operations and keeps every outcome."""

    plan: Plan
    index: int
    url: str
    token: str
    workdir: Path
    board: Board
    barrier: threading.Barrier
    outcomes: list[Outcome] = field(default_factory=list)
    drafts: list[tuple[str, str]] = field(default_factory=list)
    # Own published versions not yet promoted to staging: a client never promotes
    # a version twice, so "already holds" is never a legitimate answer.
    promotable: list[tuple[str, str]] = field(default_factory=list)
    # Published arena contenders. The arena stays out of the shared pools: no other
    # client amends or gates a contender, so a raced promotion loses only to the
    # compare-and-set on the stage, never to evidence changing under it.
    contenders: set[tuple[str, str]] = field(default_factory=set)
    counter: int = 0
    rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(f"{self.plan.seed}:{self.index}")

    @property
    def user(self) -> str:
        return client_user(self.index)

    def run(self) -> None:
        """Run every operation; a crash is an outcome too, and releases the others."""
        try:
            reg = open_registry(self.url, token=self.token)
            assert isinstance(reg, RemoteRegistry)
            with reg:
                steps = self.plan.round_steps()
                for op in range(self.plan.ops):
                    if op in steps:
                        self._round_step(reg, op, *steps[op])
                    else:
                        self._random_op(reg, op)
        except BaseException:
            self.barrier.abort()  # a client that stops must not leave the others waiting
            self.outcomes.append(
                Outcome(self.index, -1, "crash", "", "", "error", {"trace": traceback.format_exc()})
            )

    # -- the random mix --------------------------------------------------------------
    def _random_op(self, reg: RemoteRegistry, op: int) -> None:
        kind = self.rng.choices(list(MIX), weights=list(MIX.values()))[0]
        shared = None  # another client's version, or this one's, for amend and gate
        if kind == "amend":
            shared = self.board.pick_published(self.rng)
        elif kind == "gate":
            shared = self.board.pick_registered(self.rng)
        if kind == "publish" and self.drafts:
            ref = self.drafts.pop(self.rng.randrange(len(self.drafts)))
            self._publish(reg, op, "publish", ref, promotable=True)
        elif kind == "amend" and shared is not None:
            self._amend(reg, op, shared)
        elif kind == "gate" and shared is not None:
            self._gate(reg, op, shared)
        elif kind == "promote" and self.promotable:
            ref = self.promotable.pop(self.rng.randrange(len(self.promotable)))
            self._promote(reg, op, "promote", ref, STAGING)
        else:
            model = self.rng.choice(self.plan.model_names)
            self.counter += 1
            version = f"{self.index + 1}.{self.counter}.0"
            passing = self.rng.random() < 0.7
            if self._register(reg, op, "register", model, version, passing):
                self.drafts.append((model, version))

    # -- contested rounds ------------------------------------------------------------
    def _round_step(self, reg: RemoteRegistry, op: int, round_: int, step: str) -> None:
        own = (ARENA, contender_version(self.index, round_))
        if step == "contender":
            self._register(reg, op, "contender", *own, passing=True)
        elif step == "publish":
            self._publish(reg, op, "contender_publish", own, promotable=False)
        elif step == "race_register":
            self.barrier.wait()
            self._register(reg, op, "race_register", ARENA, race_version(round_), True)
        else:
            self.barrier.wait()
            self._promote(reg, op, "race_promote", own, PRODUCTION, round_=round_)

    # -- operations ------------------------------------------------------------------
    def _attempt(
        self,
        op: int,
        kind: str,
        ref: tuple[str, str],
        call: Callable[[], dict[str, Any]],
        **extra: Any,
    ) -> Outcome:
        """Run one call and record how it ended (never raises a CharterError)."""
        try:
            result, detail = "ok", call()
        except CharterError as exc:
            names = [name for name, cls in EXPECTED.items() if type(exc) is cls]
            result = names[0] if names else "error"
            detail = {"error": type(exc).__name__, "message": exc.message, **exc.details}
        except Exception:  # a bug in the client or the test: record it, keep the load on
            result, detail = "error", {"trace": traceback.format_exc()}
        outcome = Outcome(self.index, op, kind, ref[0], ref[1], result, {**extra, **detail})
        self.outcomes.append(outcome)
        return outcome

    def _files(self, model: str, version: str) -> Path:
        folder = self.workdir / f"client-{self.index}" / model / version
        folder.mkdir(parents=True)
        noise = self.rng.getrandbits(64)
        (folder / "weights.bin").write_bytes(f"{model}@{version} {noise}\n".encode() * 64)
        (folder / "config.json").write_bytes(SHARED_CONFIG)
        return folder

    def _register(
        self, reg: RemoteRegistry, op: int, kind: str, model: str, version: str, passing: bool
    ) -> bool:
        accuracy = PASSING if passing else FAILING
        document = parse_document(f"evaluations: [{{name: accuracy, value: {accuracy}}}]")
        folder = self._files(model, f"{version}-op{op}")

        def call() -> dict[str, Any]:
            v = reg.register(model=model, path=folder, version=version, profile=document)
            return {"created_by": v.created_by, "manifest": v.manifest_digest}

        outcome = self._attempt(op, kind, (model, version), call, accuracy=accuracy)
        if outcome.result == "ok" and model != ARENA:
            self.board.registered((model, version), accuracy)
        return outcome.result == "ok"

    def _publish(
        self, reg: RemoteRegistry, op: int, kind: str, ref: tuple[str, str], *, promotable: bool
    ) -> None:
        def call() -> dict[str, Any]:
            v = reg.publish(model=ref[0], version=ref[1])
            return {"published_by": v.published_by, "baseline": v.baseline_digest}

        if self._attempt(op, kind, ref, call).result != "ok":
            return
        if ref[0] == ARENA:
            self.contenders.add(ref)
            return
        self.board.publish(ref)
        if promotable:
            self.promotable.append(ref)

    def _amend(self, reg: RemoteRegistry, op: int, ref: tuple[str, str]) -> None:
        # A metric no rule reads: amendments pile up without changing any gate's answer.
        value = round(self.rng.random(), 4)
        document = parse_document(f"evaluations: [{{name: robustness, value: {value}}}]")
        reason = f"{self.user} op {op}"

        def call() -> dict[str, Any]:
            found = reg.amend_profile(
                model=ref[0], version=ref[1], document=document, reason=reason
            )
            return {"amendment": found.id, "author": found.author, "reason": found.reason}

        self._attempt(op, "amend", ref, call)

    def _gate(self, reg: RemoteRegistry, op: int, ref: tuple[str, str]) -> None:
        def call() -> dict[str, Any]:
            decision_id, decision = reg.gate(model=ref[0], version=ref[1], stage=STAGING)
            return {"decision_id": decision_id, "passed": decision.passed}

        self._attempt(op, "gate", ref, call)

    def _promote(
        self,
        reg: RemoteRegistry,
        op: int,
        kind: str,
        ref: tuple[str, str],
        stage: str,
        round_: int | None = None,
    ) -> None:
        if ref[0] == ARENA and ref not in self.contenders:
            # The contender never made it: record that, but the race still happened.
            self.outcomes.append(
                Outcome(self.index, op, kind, *ref, "error", {"error": "no contender"})
            )
            return

        def call() -> dict[str, Any]:
            move = reg.promote(model=ref[0], version=ref[1], stage=stage)
            return {"generation": move.generation, "by": move.by, "gate": move.gate_decision_id}

        self._attempt(op, kind, ref, call, stage=stage, round=round_)
