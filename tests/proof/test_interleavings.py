"""Decisions taken on facts that another writer changes before they commit.

Found while building the concurrency proof (``test_server_concurrency.py``),
each forced here deterministically by running another user's change at the
worst moment:

- ``promote`` gates in one transaction and moves the stage in a later one: a
  deprecation, amendment, sign-off or policy change committed in between used to
  go unseen, so a deprecated version could enter a stage, or a version enter on
  evidence its gate never judged (the ledger showing the change before the move);
- ``amend_profile`` took its time before waiting for the writer lock: two
  concurrent amendments could be numbered in one order and timed in the other,
  and the profile "as of" a moment between them showed a state that never was.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import charter._profiles
from _builders import STAGING_ACCURACY_POLICY
from _postgres import selected_backends
from charter.domain.errors import ConflictError, GateRefusedError, ImmutableError
from charter.domain.gate import GateDecision
from charter.domain.profile import parse_document
from charter.journal import now
from charter.sdk import init_registry
from charter.service import Registry
from charter.settings import Settings

POLICY = STAGING_ACCURACY_POLICY
M: dict[str, Any] = {"model": "m", "version": "1.0.0"}
ROBUSTNESS = "evaluations: [{{name: robustness, value: {}}}]"
STRICTER = POLICY.replace("min: 0.85", "min: 0.95")
Interloper = Callable[[Registry], object]


@pytest.fixture(params=selected_backends())
def backend(request: pytest.FixtureRequest) -> str:
    """Every selected backend (the proof folder is not a multi-backend suite)."""
    return str(request.param)


@pytest.fixture
def owner(settings: Settings, artifact: Path) -> Iterator[Registry]:
    """alice's registry with m@1.0.0 published (accuracy 0.9) and bob, an approver."""
    with init_registry(settings=settings) as reg:
        _seed(reg, artifact)
        yield reg


def _seed(reg: Registry, artifact: Path) -> None:
    reg.set_policy(text=POLICY)
    reg.add_user(name="bob", role="approver")
    reg.create_model(name="m")
    profile = parse_document("evaluations: [{name: accuracy, value: 0.9}]")
    reg.register(model="m", path=artifact, version="1.0.0", profile=profile)
    reg.publish(model="m", version="1.0.0")


def _interleave(owner: Registry, monkeypatch: pytest.MonkeyPatch, change: Interloper) -> None:
    """Make ``change`` run as bob right after ``owner``'s next gate decision.

    bob's view is taken before ``owner.gate`` is patched, so his calls (and those
    of views taken from his) run unpatched, each in transactions of their own.
    """
    bob = owner.as_user("bob")
    gate = owner.gate

    def gate_then_change(*, model: str, version: str, stage: str) -> tuple[int, GateDecision]:
        decided = gate(model=model, version=version, stage=stage)
        change(bob)
        return decided

    monkeypatch.setattr(owner, "gate", gate_then_change)


def test_a_version_deprecated_while_promoted_stays_out(
    owner: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    _interleave(owner, monkeypatch, lambda bob: bob.deprecate(**M, reason="leaks PII"))
    with pytest.raises(ImmutableError, match="deprecated"):
        owner.promote(model="m", version="1.0.0", stage="staging")
    assert owner.stages(model="m") == []
    assert owner.verify().ok


EVIDENCE_CHANGES: dict[str, Interloper] = {
    "amendment": lambda bob: bob.amend_profile(
        model="m",
        version="1.0.0",
        reason="accuracy was measured on training data",
        document=parse_document("evaluations: [{name: accuracy, value: 0.7, supersedes: eval-1}]"),
    ),
    "rejection": lambda bob: bob.approve(
        model="m", version="1.0.0", stage="staging", comment="no", decision="reject"
    ),
    "policy": lambda bob: bob.as_user("alice").set_policy(text=STRICTER),
}


@pytest.mark.parametrize("change", list(EVIDENCE_CHANGES))
def test_a_promotion_on_evidence_changed_since_its_gate_conflicts(
    owner: Registry, monkeypatch: pytest.MonkeyPatch, change: str
) -> None:
    _interleave(owner, monkeypatch, EVIDENCE_CHANGES[change])
    with pytest.raises(ConflictError, match="changed while it was being promoted"):
        owner.promote(model="m", version="1.0.0", stage="staging")
    assert owner.stages(model="m") == []
    monkeypatch.undo()
    # Trying again gates the evidence as it now stands: every change above fails it.
    with pytest.raises(GateRefusedError):
        owner.promote(model="m", version="1.0.0", stage="staging")
    assert owner.verify().ok


def test_another_gate_decision_meanwhile_changes_nothing(
    owner: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    _interleave(owner, monkeypatch, lambda bob: bob.as_user("alice").gate(**M, stage="staging"))
    move = owner.promote(model="m", version="1.0.0", stage="staging")
    assert (move.version, move.generation) == ("1.0.0", 1)
    assert owner.verify().ok


def test_amendments_are_timed_in_the_order_they_commit(
    owner: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """bob amends while alice's amendment is between taking its time and committing.

    alice's clock read starts bob's amendment and gives it a moment: before the fix
    bob committed (am-1, later time) before alice (am-2, earlier time); now alice
    reads the clock holding the writer lock, so bob waits and comes second.
    """
    bob = owner.as_user("bob")
    calls: list[threading.Thread] = []

    def bob_amends() -> None:
        bob.amend_profile(**M, reason="bob", document=parse_document(ROBUSTNESS.format(0.5)))

    def now_while_bob_amends() -> str:
        at = now()
        if not calls:
            calls.append(threading.Thread(target=bob_amends))
            calls[0].start()
            calls[0].join(timeout=1.0)  # bob finishes here unless alice holds the lock
        return at

    monkeypatch.setattr(charter._profiles, "now", now_while_bob_amends)
    owner.amend_profile(**M, reason="alice", document=parse_document(ROBUSTNESS.format(0.6)))
    calls[0].join(timeout=60)
    monkeypatch.undo()
    amendments = owner.profile(**M).amendments
    assert [(a.id, a.author) for a in amendments] == [("am-1", "alice"), ("am-2", "bob")]
    assert amendments[0].created_at <= amendments[1].created_at
    assert owner.verify().ok
