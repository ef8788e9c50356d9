"""Issue #7: many clients against one ``charter serve`` lose nothing and duplicate nothing.

16 clients × 500 operations on PostgreSQL, 4 × 100 on SQLite (see ``PLANS``): a
seeded mix of register, publish, amend, gate and promote through the SDK over
HTTP, with contested rounds in which every client registers the same version
number, or promotes its own contender to the same stage, at the same moment
(see ``_load.py``). Afterwards, with what every client was told in hand:

- every acknowledged version exists exactly once, with its creator and state, and
  nothing exists that no client was told about;
- each raced version number has exactly one winner, the others got
  ``AlreadyExistsError``; of the promotions that read the same stage generation
  exactly one won, the others got ``ConflictError`` naming that generation; every
  stage history is gap-free and is exactly the acknowledged moves;
- every gate and promotion answered what the profile implies, amendments are
  numbered without gaps, the ledger holds exactly one entry per acknowledged
  change;
- no request was answered 5xx (the server's own metrics) and the server log
  holds no traceback; then, with the server stopped, ``charter audit verify
  --artifacts`` passes.

The seed is random per run and printed; ``CHARTER_PROOF_SEED`` repeats one.
Nothing is asserted on time; the join timeout only guards against a hang.
"""

from __future__ import annotations

import json
import os
import random
import re
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from _postgres import selected_backends
from _served import ServedRegistry, charter
from charter.domain.canonical import loads
from charter.sdk import init_registry, open_registry
from charter.service import Registry
from charter.settings import Settings
from proof._load import (
    ARENA,
    BARRIER_TIMEOUT_S,
    FLOOR,
    POLICY,
    Board,
    Client,
    Outcome,
    Plan,
    client_user,
    race_version,
)

PLANS = {
    "postgresql": {"clients": 16, "ops": 500, "models": 4, "rounds": 10},
    "sqlite": {"clients": 4, "ops": 100, "models": 2, "rounds": 5},
}
SEED_ENV = "CHARTER_PROOF_SEED"
# Only a guard against a hung client; nothing is asserted about elapsed time.
JOIN_TIMEOUT_S = 1200.0
REGISTERS = ("register", "contender", "race_register")
PUBLISHES = ("publish", "contender_publish")
PROMOTES = ("promote", "race_promote")
Ref = tuple[str, str]


@dataclass(frozen=True)
class Run:
    """What the clients were told, and how long it took (reported, never asserted)."""

    plan: Plan
    outcomes: list[Outcome]
    seconds: float
    statuses: Counter[int]

    def ok(self, *kinds: str) -> list[Outcome]:
        return [o for o in self.outcomes if o.kind in kinds and o.result == "ok"]

    def of(self, *kinds: str) -> list[Outcome]:
        return [o for o in self.outcomes if o.kind in kinds]

    def accuracy(self) -> dict[Ref, float]:
        return {(o.model, o.version): float(o.detail["accuracy"]) for o in self.ok(*REGISTERS)}

    def summary(self) -> str:
        results = Counter(o.result for o in self.outcomes)
        # Two kinds of conflict: the stage moved first (compare-and-set), or the
        # version's evidence changed between its gate decision and the move.
        moved = sum("moved while" in str(o.detail.get("message")) for o in self.outcomes)
        total = self.plan.clients * self.plan.ops
        load = os.getloadavg()
        return (
            f"seed {self.plan.seed}: {self.plan.clients} clients x {self.plan.ops} ops = {total} "
            f"in {self.seconds:.1f} s ({total / self.seconds:.0f} ops/s, "
            f"{sum(self.statuses.values()) / self.seconds:.0f} requests/s); "
            f"results {dict(results)} ({moved} conflicts lost a stage race, "
            f"{results['conflict'] - moved} saw evidence change); "
            f"HTTP {dict(sorted(self.statuses.items()))}; "
            f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
        )


def _seed() -> int:
    raw = os.environ.get(SEED_ENV)
    return int(raw) if raw else random.SystemRandom().randrange(2**32)


def _settings(home: Path, database_url: str | None, user: str) -> Settings:
    return Settings(home=home, user=user, database_url=database_url)


def _setup(home: Path, database_url: str | None, plan: Plan) -> dict[str, str]:
    """A home (alice admin), the models, the policy and one contributor per client.

    Returns:
        Token per user name (alice's included: the server's readiness probe uses it).
    """
    tokens = {}
    with init_registry(settings=_settings(home, database_url, "alice")) as reg:
        reg.set_policy(text=POLICY)
        for name in [*plan.model_names, ARENA]:
            reg.create_model(name=name, risk_tier="low")
        for index in range(plan.clients):
            reg.add_user(name=client_user(index), role="contributor")
        for user in ["alice", *(client_user(i) for i in range(plan.clients))]:
            tokens[user] = reg.create_token(user=user, label="concurrency proof")[0]
    return tokens


def _drive(served: ServedRegistry, plan: Plan, tokens: dict[str, str], work: Path) -> Run:
    board = Board()
    barrier = threading.Barrier(plan.clients, timeout=BARRIER_TIMEOUT_S)
    clients = [
        Client(plan, i, served.url, tokens[client_user(i)], work, board, barrier)
        for i in range(plan.clients)
    ]
    threads = [threading.Thread(target=c.run, name=f"client-{c.index}", daemon=True)
               for c in clients]  # fmt: skip
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + JOIN_TIMEOUT_S
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    seconds = time.perf_counter() - started
    hung = [t.name for t in threads if t.is_alive()]
    assert not hung, f"seed {plan.seed}: clients still running after {JOIN_TIMEOUT_S:.0f} s: {hung}"
    outcomes = [o for c in clients for o in c.outcomes]
    return Run(plan, outcomes, seconds, _http_statuses(served.url))


_COUNT = re.compile(r"^charter_http_request_duration_seconds_count\{(.*)\} (\S+)$", re.M)


def _http_statuses(url: str) -> Counter[int]:
    """Requests per HTTP status, as the server's own ``/metrics`` counted them."""
    text = httpx.get(f"{url}/metrics", timeout=30.0).text
    found: Counter[int] = Counter()
    for labels, value in _COUNT.findall(text):
        status = re.search(r'status="(\d+)"', labels)
        assert status is not None, labels
        found[int(status.group(1))] += int(float(value))
    assert found, "the server's /metrics counted no request"
    return found


def _problems(items: Iterable[str], limit: int = 15) -> str:
    shown = list(items)
    return "\n".join(shown[:limit]) + (
        f"\n… and {len(shown) - limit} more" if len(shown) > limit else ""
    )


# -- the checks ------------------------------------------------------------------------------


def _check_answers(run: Run) -> None:
    """Every answer was one the workload allows, and each answer fits the profile."""
    errors = [o.describe() for o in run.outcomes if o.result == "error"]
    assert not errors, f"unexpected answers:\n{_problems(errors)}"
    accuracy = run.accuracy()
    for o in run.of("gate"):
        assert o.detail["passed"] == (accuracy[(o.model, o.version)] >= FLOOR), o.describe()
    for o in run.of("promote"):
        passing = accuracy[(o.model, o.version)] >= FLOOR
        assert o.result in (("ok", "conflict") if passing else ("refused",)), o.describe()
    for o in run.of("race_promote"):  # only the stage race may beat a contender
        assert o.result == "ok" or "moved while" in o.detail["message"], o.describe()
    for o in run.of("race_register"):
        assert o.result in ("ok", "exists"), o.describe()


def _check_versions(reg: Registry, run: Run) -> None:
    """Each acknowledged version exists once, as acknowledged; nothing else exists."""
    told = Counter((o.model, o.version) for o in run.ok(*REGISTERS))
    twice = [f"{m}@{v} x{n}" for (m, v), n in told.items() if n > 1]
    assert not twice, f"acknowledged more than once:\n{_problems(twice)}"
    creators = {(o.model, o.version): o.detail["created_by"] for o in run.ok(*REGISTERS)}
    for o in run.ok(*REGISTERS):
        assert o.detail["created_by"] == client_user(o.client), o.describe()
    published = {(o.model, o.version) for o in run.ok(*PUBLISHES)}
    stored = [v for name in [*run.plan.model_names, ARENA] for v in reg.list_versions(model=name)]
    held = Counter((v.model, v.version) for v in stored)
    assert [r for r, n in held.items() if n > 1] == [], "a version is stored twice"
    lost = sorted(set(creators) - set(held))
    extra = sorted(set(held) - set(creators))
    assert not lost, f"acknowledged but missing: {lost[:15]}"
    assert not extra, f"stored but never acknowledged: {extra[:15]}"
    for v in stored:
        ref = (v.model, v.version)
        assert v.created_by == creators[ref], f"{v.ref} created by {v.created_by}"
        assert (v.published_at is not None) == (ref in published), f"{v.ref}: {v.state}"


def _check_races(run: Run) -> dict[int, list[int]]:
    """One winner per raced version number, and per contested stage generation.

    A promotion reads the stage's generation, gates, then compare-and-sets from
    that generation: the winner's move is that generation + 1, each loser's
    ``ConflictError`` names the generation it read. The promotions that read the
    same generation contested one move, and exactly one of them must have won it.

    Returns:
        Per round, the size of each contest in it (usually one contest of every
        client; a client that read the stage after a move contests the next one).
    """
    for round_ in range(run.plan.rounds):
        racers = [o for o in run.of("race_register") if o.version == race_version(round_)]
        assert len(racers) == run.plan.clients
        results = sorted(o.result for o in racers)
        assert results == ["exists"] * (run.plan.clients - 1) + ["ok"], (round_, results)
    contests: dict[int, list[int]] = {}
    for round_ in range(run.plan.rounds):
        moves = [o for o in run.of("race_promote") if o.detail["round"] == round_]
        assert len(moves) == run.plan.clients
        read: dict[int, list[Outcome]] = defaultdict(list)
        for o in moves:
            ok = o.result == "ok"
            read[o.detail["generation"] - 1 if ok else o.detail["expected_generation"]].append(o)
        for generation, contest in sorted(read.items()):
            won = [o.client for o in contest if o.result == "ok"]
            assert len(won) == 1, f"round {round_}, generation {generation}: winners {won}"
        contests[round_] = [len(read[g]) for g in sorted(read)]
    generations = Counter(int(o.detail["generation"]) for o in run.ok("race_promote"))
    assert all(n == 1 for n in generations.values()), f"a generation won twice: {generations}"
    return contests


def _check_stages(reg: Registry, run: Run) -> None:
    """Stage histories are gap-free and are exactly the acknowledged moves."""
    with reg.store.read() as tx:
        refs = tx.version_refs()
        decisions = {d["id"]: d for d in tx.decisions()}
    for name in [*run.plan.model_names, ARENA]:
        history = reg.stage_history(model=name)
        by_stage: dict[str, list[tuple[str, int, str]]] = defaultdict(list)
        for move in history:
            by_stage[move.stage].append((move.version, move.generation, move.by))
            assert move.action == "promote", move
            decision = decisions[move.gate_decision_id or -1]
            assert decision["passed"] and decision["stage"] == move.stage, (move, decision)
            assert refs[decision["version_id"]] == f"{name}@{move.version}", (move, decision)
        told: dict[str, list[tuple[str, int, str]]] = defaultdict(list)
        for o in run.ok(*PROMOTES):
            if o.model == name:
                told[o.detail["stage"]].append((o.version, o.detail["generation"], o.detail["by"]))
        assert set(by_stage) == set(told), name
        for stage, moves in by_stage.items():
            assert [g for _, g, _ in moves] == list(range(1, len(moves) + 1)), (name, stage)
            assert sorted(moves) == sorted(told[stage]), f"{name}/{stage}: moves differ"
        for pointer in reg.stages(model=name):
            assert pointer["version"] == by_stage[pointer["stage"]][-1][0], pointer


def _check_gates(reg: Registry, run: Run) -> None:
    """Every acknowledged gate decision is stored once, for its version, as answered."""
    with reg.store.read() as tx:
        refs = tx.version_refs()
        decisions = {d["id"]: d for d in tx.decisions()}
    told = [o for o in run.ok("gate")]
    ids = Counter(o.detail["decision_id"] for o in told)
    assert all(n == 1 for n in ids.values()), "a decision id was answered twice"
    for o in told:
        stored = decisions[o.detail["decision_id"]]
        assert refs[stored["version_id"]] == f"{o.model}@{o.version}", o.describe()
        assert stored["passed"] == o.detail["passed"], o.describe()


def _check_amendments(reg: Registry, run: Run) -> None:
    """Each version's amendments are am-1..am-n, exactly the acknowledged ones."""
    told: dict[Ref, list[tuple[str, str, str]]] = defaultdict(list)
    for o in run.ok("amend"):
        told[(o.model, o.version)].append(
            (o.detail["amendment"], o.detail["author"], o.detail["reason"])
        )
    for (model, version), acked in told.items():
        stored = reg.profile(model=model, version=version).amendments
        ids = sorted((a.id for a in stored), key=lambda i: int(i.removeprefix("am-")))
        assert ids == [f"am-{i}" for i in range(1, len(stored) + 1)], (model, version, ids)
        assert sorted((a.id, a.author, a.reason) for a in stored) == sorted(acked), (model, version)


def _check_ledger(reg: Registry, run: Run, plan: Plan) -> int:
    """One ledger entry per acknowledged change, in one gap-free sequence.

    Returns:
        The number of ledger entries.
    """
    log = reg.audit_log()
    assert [r.seq for r in log] == list(range(len(log)))
    types = Counter(r.type for r in log)
    registered = len(run.ok(*REGISTERS))
    gated = len(run.ok("gate")) + len(
        [o for o in run.of(*PROMOTES) if o.result in ("ok", "conflict", "refused")]
    )
    expected = {
        "version.registered": registered,
        "profile.entries_added": registered,
        "version.published": len(run.ok(*PUBLISHES)),
        "profile.amended": len(run.ok("amend")),
        "gate.decided": gated,
        "stage.assigned": len(run.ok(*PROMOTES)),
        "model.created": plan.models + 1,
        "user.set": plan.clients + 1,
        "token.created": plan.clients + 1,
        "policy.set": 1,
    }
    assert {k: types.get(k, 0) for k in expected} == expected
    registered_subjects = [r.subject for r in log if r.type == "version.registered"]
    assert len(registered_subjects) == len(set(registered_subjects))
    for r in log:
        if r.type == "profile.amended":
            amendment = loads(r.body)["data"]["amendment"]
            assert amendment["author"] == r.actor, r.seq
    return len(log)


def _check_server_log(path: Path) -> None:
    text = path.read_text(errors="replace")
    bad = [line for line in text.splitlines() if re.search(r"Traceback|ERROR|Exception", line)]
    assert not bad, f"the server log shows errors:\n{_problems(bad)}\n---\n{text[-4000:]}"


# -- the test ---------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("backend", selected_backends())
def test_concurrent_clients_lose_and_duplicate_nothing(
    backend: str, database_url: str | None, tmp_path: Path
) -> None:
    plan = Plan(seed=_seed(), **PLANS[backend])
    print(f"{backend}: seed {plan.seed} ({SEED_ENV}={plan.seed} repeats this workload)")
    home = tmp_path / "home"
    tokens = _setup(home, database_url, plan)
    log_path = tmp_path / "serve.log"
    served = ServedRegistry(home, database_url, tokens["alice"], log_path)
    served.start()
    try:
        run = _drive(served, plan, tokens, tmp_path / "sources")
    finally:
        served.stop()
    print(run.summary())

    _check_answers(run)
    errors = {status: n for status, n in run.statuses.items() if status >= 500}
    assert not errors, f"seed {plan.seed}: the server answered {errors}"
    _check_server_log(log_path)
    contests = _check_races(run)
    print(f"contested promotions per round (clients per contest, one winner each): {contests}")
    with open_registry(settings=_settings(home, database_url, "auditor")) as reg:
        assert isinstance(reg, Registry)
        _check_versions(reg, run)
        _check_stages(reg, run)
        _check_gates(reg, run)
        _check_amendments(reg, run)
        entries = _check_ledger(reg, run, plan)

    done = charter(home, database_url, "audit", "verify", "--artifacts", "--json")
    assert done.returncode == 0, f"seed {plan.seed}: audit verify:\n{done.stdout}{done.stderr}"
    report = json.loads(done.stdout)
    assert report["ok"] and report["entries"] == entries, report
