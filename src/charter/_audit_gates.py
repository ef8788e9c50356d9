"""Verification of the sign-off state: users, policies, gate decisions, approvals,
stage pointers and their history, deprecations, evaluation runs, declared targets,
API tokens and monitoring flags.

Like the rest of ``audit verify``: replay the ledger into the state it
describes, read the rows, and report every disagreement.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from charter._audit_report import Problems
from charter._audit_state import compare, replay
from charter.domain.errors import CharterError
from charter.domain.policy import parse_policy, policy_digest
from charter.store import ReadTx

__all__ = ["GATE_APPLIERS", "GateExpected", "apply_gate_entry", "check_gates", "read_gate_rows"]


@dataclass
class GateExpected:
    """The sign-off state the ledger describes."""

    users: dict[str, Any] = field(default_factory=dict)
    assignments: dict[str, Any] = field(default_factory=dict)
    decisions: dict[str, Any] = field(default_factory=dict)
    approvals: dict[str, Any] = field(default_factory=dict)
    moves: dict[str, Any] = field(default_factory=dict)
    pointers: dict[str, Any] = field(default_factory=dict)
    statuses: dict[str, Any] = field(default_factory=dict)
    runs: dict[str, Any] = field(default_factory=dict)
    targets: dict[str, Any] = field(default_factory=dict)
    tokens: dict[str, Any] = field(default_factory=dict)
    flags: dict[str, Any] = field(default_factory=dict)


def _ref(subject: str) -> str:
    return subject.split(":", 1)[1]


def _move(exp: GateExpected, data: dict[str, Any], _subject: str) -> None:
    move = data["move"]
    exp.moves[f"{move['model']}/{move['stage']}#{move['generation']}"] = move
    exp.pointers[f"{move['model']}/{move['stage']}"] = {
        "version": move["version"], "generation": move["generation"],
    }  # fmt: skip


def _status(exp: GateExpected, data: dict[str, Any], subject: str) -> None:
    exp.statuses[_ref(subject)] = {k: data[k] for k in ("status", "reason", "by", "at")}


def _revoke(exp: GateExpected, data: dict[str, Any], _subject: str) -> None:
    token = exp.tokens.get(data["token_id"])
    if token is not None:
        token.update(revoked_by=data["revoked_by"], revoked_at=data["revoked_at"])


def _flag(exp: GateExpected, data: dict[str, Any], subject: str) -> None:
    # Keyed by the flag's position among its version's flags: rows carry no ledger order.
    ref = _ref(subject)
    count = sum(1 for key in exp.flags if key.rsplit("#", 1)[0] == ref)
    exp.flags[f"{ref}#{count}"] = data["flag"]


GATE_APPLIERS: dict[str, Callable[[GateExpected, dict[str, Any], str], None]] = {
    "user.set": lambda e, d, _s: e.users.__setitem__(d["user"]["name"], d["user"]),
    "policy.set": lambda e, d, _s: e.assignments.__setitem__(d["scope"], d["digest"]),
    "gate.decided": lambda e, d, s: e.decisions.__setitem__(
        str(d["id"]), {"ref": _ref(s), "document": d["decision"]}
    ),
    "approval.recorded": lambda e, d, _s: e.approvals.__setitem__(
        str(d["approval"]["id"]), d["approval"]
    ),
    "stage.assigned": _move,
    "stage.rolled_back": _move,
    "version.deprecated": _status,
    "version.archived": _status,
    "evaluation.recorded": lambda e, d, _s: e.runs.__setitem__(d["run"]["run_id"], d["run"]),
    "model.target_set": lambda e, d, s: e.targets.__setitem__(_ref(s), d["target"]),
    "token.created": lambda e, d, _s: e.tokens.__setitem__(d["token"]["token_id"], d["token"]),
    "token.revoked": _revoke,
    "version.at_risk": _flag,
    "version.risk_cleared": _flag,
}


def apply_gate_entry(
    exp: GateExpected, problems: Problems, seq: Any, type_: Any, subject: Any, body: dict[str, Any]
) -> None:
    """Replay one entry's sign-off state into ``exp``."""
    replay(GATE_APPLIERS, exp, problems, seq, type_, subject, body)


def read_gate_rows(tx: ReadTx, refs: dict[int, str]) -> dict[str, dict[str, Any]]:
    """Read the sign-off rows in the shapes the ledger replay produces.

    Args:
        tx: the verification's read transaction.
        refs: ``{version id: name@version}`` of every version, read once by the caller.
    """
    rows: dict[str, dict[str, Any]] = {
        "users": {u.name: u.state() for u in tx.list_users()},
        "assignments": tx.policy_assignments(),
        "policies": tx.policy_texts(),
        "decisions": {
            str(d["id"]): {
                "ref": refs.get(d["version_id"], "?"),
                "document": d["document"],
                "passed": d["passed"],
                "stage": d["stage"],
            }
            for d in tx.decisions()
        },
        "approvals": {str(a.id): a.state() for _, a in tx.approvals(refs=refs)},
        "pointers": {
            f"{p['model']}/{p['stage']}": {"version": p["version"], "generation": p["generation"]}
            for p in tx.stage_pointers(refs=refs)
        },
        "runs": {r["run_id"]: r for r in tx.runs()},
        "moves": {},
        "statuses": {},
        "targets": {},
        "tokens": tx.token_rows(),
        "flags": {},
    }
    seen: dict[str, int] = {}
    for vid, flag in tx.flag_rows():
        ref = refs.get(vid, f"id {vid}")
        seen[ref] = seen.get(ref, -1) + 1
        rows["flags"][f"{ref}#{seen[ref]}"] = {k: v for k, v in flag.items() if k != "ledger_seq"}
    for model in tx.list_models():
        mid = tx.model_id(model.name) or 0
        for move in tx.stage_history(mid, refs=refs):
            rows["moves"][f"{move.model}/{move.stage}#{move.generation}"] = move.state()
        target = tx.model_target(mid)
        if target is not None:
            rows["targets"][model.name] = target
    for vid, status in tx.version_statuses().items():
        ref = refs.get(vid, f"id {vid}")
        rows["statuses"][ref] = dict(zip(("status", "reason", "by", "at"), status, strict=True))
    return rows


def check_gates(exp: GateExpected, rows: dict[str, dict[str, Any]], problems: Problems) -> None:
    """Compare the replayed sign-off state with the rows; report every difference."""
    compare("user", exp.users, rows["users"], problems)
    compare("policy assignment", exp.assignments, rows["assignments"], problems)
    for digest, text in rows["policies"].items():
        try:
            actual = policy_digest(parse_policy(text, source=f"stored policy {digest}"))
        except CharterError:
            actual = None
        if actual != digest:
            problems.add("state", f"policy {digest}", "its stored text no longer has this digest")
    decisions = {
        k: {"ref": v["ref"], "document": v["document"]} for k, v in rows["decisions"].items()
    }
    compare("gate decision", exp.decisions, decisions, problems)
    for key, row in rows["decisions"].items():
        doc = row["document"]
        if (
            not isinstance(doc, dict)
            or doc.get("passed") != row["passed"]
            or doc.get("stage") != row["stage"]
        ):
            problems.add("state", f"gate decision {key}", "its columns disagree with its document")
    compare("approval", exp.approvals, rows["approvals"], problems)
    compare("stage move", exp.moves, rows["moves"], problems)
    compare("stage", exp.pointers, rows["pointers"], problems)
    compare("status of", exp.statuses, rows["statuses"], problems)
    compare("evaluation run", exp.runs, rows["runs"], problems)
    compare("red-team target of", exp.targets, rows["targets"], problems)
    compare("API token", exp.tokens, rows["tokens"], problems)
    compare("monitoring flag", exp.flags, rows["flags"], problems)
