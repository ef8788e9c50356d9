"""Verification of the sign-off state: users, policies, gate decisions, approvals,
stage pointers and their history, deprecations, evaluation runs, declared targets,
API tokens, monitoring flags and webhook subscriptions (their URL by digest: the
ledger never holds a URL or a signing secret, so an edited secret goes unseen).

Like the rest of ``audit verify``: replay the ledger into the state it
describes, read the rows (:mod:`charter._audit_signoff_rows`), and report every
disagreement. Columns that repeat the recording entry's ``actor`` or ``seq``
are compared with the entry; see :func:`check_written_at` for its ``time``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from charter._audit_report import Problems
from charter._audit_signoff_rows import read_gate_rows
from charter._audit_state import Entry, compare, replay
from charter.domain.entities import format_time, parse_time
from charter.domain.errors import CharterError
from charter.domain.policy import parse_policy, policy_digest

__all__ = [
    "GATE_APPLIERS",
    "MAX_WRITE_WAIT",
    "GateExpected",
    "apply_gate_entry",
    "check_gates",
    "check_written_at",
    "read_gate_rows",
]

MAX_WRITE_WAIT = timedelta(minutes=5)
"""How long before its ledger entry a row's own time may have been taken.

Some writers (``set_policy``, ``set_model_target``, ``record_evaluation``) take
the row's time just before opening their write transaction, and the entry takes
its own a moment later, inside it: the two differ by the wait for the writer
lock plus the transaction's work. A SQLite writer gives up after its busy
timeout (30 s by default) and PostgreSQL writers hold the lock for one short
transaction each, so minutes are far beyond any honest wait.
"""


@dataclass
class GateExpected:
    """The sign-off state the ledger describes.

    ``*_times`` hold the time of the entry that set the value of the same key
    in the table of that name: the row's time column must fit it (see
    :func:`check_written_at`).
    """

    users: dict[str, Any] = field(default_factory=dict)
    policies: dict[str, Any] = field(default_factory=dict)
    policy_times: dict[str, str] = field(default_factory=dict)
    assignments: dict[str, Any] = field(default_factory=dict)
    assignment_times: dict[str, str] = field(default_factory=dict)
    decisions: dict[str, Any] = field(default_factory=dict)
    approvals: dict[str, Any] = field(default_factory=dict)
    moves: dict[str, Any] = field(default_factory=dict)
    pointers: dict[str, Any] = field(default_factory=dict)
    statuses: dict[str, Any] = field(default_factory=dict)
    runs: dict[str, Any] = field(default_factory=dict)
    run_times: dict[str, str] = field(default_factory=dict)
    targets: dict[str, Any] = field(default_factory=dict)
    target_times: dict[str, str] = field(default_factory=dict)
    tokens: dict[str, Any] = field(default_factory=dict)
    flags: dict[str, Any] = field(default_factory=dict)
    webhooks: dict[str, Any] = field(default_factory=dict)


def _ref(subject: str) -> str:
    return subject.split(":", 1)[1]


def _policy_set(exp: GateExpected, data: dict[str, Any], _subject: str, entry: Entry) -> None:
    scope, digest = data["scope"], data["digest"]
    exp.assignments[scope] = {"digest": digest, "set_by": entry["actor"]}
    exp.assignment_times[scope] = entry["time"]
    # A policy text is stored once, by the first assignment of its digest.
    if digest not in exp.policies:
        exp.policies[digest] = {"created_by": entry["actor"]}
        exp.policy_times[digest] = entry["time"]


def _decided(exp: GateExpected, data: dict[str, Any], subject: str, entry: Entry) -> None:
    exp.decisions[str(data["id"])] = {
        "ref": _ref(subject), "document": data["decision"], "decided_by": entry["actor"],
    }  # fmt: skip


def _move(exp: GateExpected, data: dict[str, Any], _subject: str, entry: Entry) -> None:
    move = data["move"]
    place = f"{move['model']}/{move['stage']}"
    exp.moves[f"{place}#{move['generation']}"] = {**move, "ledger_seq": entry["seq"]}
    exp.pointers[place] = {
        "version": f"{move['model']}@{move['version']}", "generation": move["generation"],
        "assigned_by": move["by"], "assigned_at": move["at"],
    }  # fmt: skip


def _status(exp: GateExpected, data: dict[str, Any], subject: str, _e: Entry) -> None:
    exp.statuses[_ref(subject)] = {k: data[k] for k in ("status", "reason", "by", "at")}


def _run(exp: GateExpected, data: dict[str, Any], subject: str, entry: Entry) -> None:
    run = data["run"]
    exp.runs[run["run_id"]] = {"ref": _ref(subject), "document": run}
    exp.run_times[run["run_id"]] = entry["time"]


def _target(exp: GateExpected, data: dict[str, Any], subject: str, entry: Entry) -> None:
    exp.targets[_ref(subject)] = {"document": data["target"], "set_by": entry["actor"]}
    exp.target_times[_ref(subject)] = entry["time"]


def _revoke(exp: GateExpected, data: dict[str, Any], _subject: str, _e: Entry) -> None:
    token = exp.tokens.get(data["token_id"])
    if token is not None:
        token.update(revoked_by=data["revoked_by"], revoked_at=data["revoked_at"])


def _flag(exp: GateExpected, data: dict[str, Any], subject: str, entry: Entry) -> None:
    # Keyed by the flag's position among its version's flags: rows carry no ledger order.
    ref = _ref(subject)
    count = sum(1 for key in exp.flags if key.rsplit("#", 1)[0] == ref)
    exp.flags[f"{ref}#{count}"] = {**data["flag"], "ledger_seq": entry["seq"]}


def _webhook_removed(exp: GateExpected, data: dict[str, Any], _subject: str, _e: Entry) -> None:
    hook = exp.webhooks.get(str(data["id"]))
    if hook is not None:
        hook["active"] = False


GATE_APPLIERS: dict[str, Callable[[GateExpected, dict[str, Any], str, Entry], None]] = {
    "user.set": lambda e, d, _s, _e: e.users.__setitem__(d["user"]["name"], d["user"]),
    "policy.set": _policy_set,
    "gate.decided": _decided,
    "approval.recorded": lambda e, d, _s, _e: e.approvals.__setitem__(
        str(d["approval"]["id"]), d["approval"]
    ),
    "stage.assigned": _move,
    "stage.rolled_back": _move,
    "version.deprecated": _status,
    "version.archived": _status,
    "evaluation.recorded": _run,
    "model.target_set": _target,
    "token.created": lambda e, d, _s, _e: e.tokens.__setitem__(d["token"]["token_id"], d["token"]),
    "token.revoked": _revoke,
    "version.at_risk": _flag,
    "version.risk_cleared": _flag,
    "webhook.added": lambda e, d, _s, _e: e.webhooks.__setitem__(
        str(d["webhook"]["id"]), d["webhook"] | {"active": True}
    ),
    "webhook.removed": _webhook_removed,
}


def apply_gate_entry(
    exp: GateExpected, problems: Problems, seq: Any, type_: Any, subject: Any, body: dict[str, Any]
) -> None:
    """Replay one entry's sign-off state into ``exp``."""
    replay(GATE_APPLIERS, exp, problems, seq, type_, subject, body)


def check_gates(
    exp: GateExpected,
    rows: dict[str, dict[str, Any]],
    problems: Problems,
    *,
    profiles: Mapping[str, Any],
) -> None:
    """Compare the replayed sign-off state with the rows; report every difference.

    Args:
        exp: the replayed sign-off state.
        rows: what :func:`read_gate_rows` read.
        problems: where findings go.
        profiles: the replayed profile entries (``{name@version#id: body}``), whose
            recording time is an evaluation run's own.
    """
    compare("user", exp.users, rows["users"], problems)
    _check_policies(exp, rows, problems)
    _check_decisions(exp, rows["decisions"], problems)
    compare("approval", exp.approvals, rows["approvals"], problems)
    compare("stage move", exp.moves, rows["moves"], problems)
    compare("stage", exp.pointers, rows["pointers"], problems)
    compare("status of", exp.statuses, rows["statuses"], problems)
    compare("evaluation run", exp.runs, rows["runs"], problems)
    _check_run_times(exp, rows["run_times"], profiles, problems)
    compare("red-team target of", exp.targets, rows["targets"], problems)
    _check_times("red-team target of", "set_at", exp.target_times, rows["target_times"], problems)
    compare("API token", exp.tokens, rows["tokens"], problems)
    compare("monitoring flag", exp.flags, rows["flags"], problems)
    compare("webhook", exp.webhooks, rows["webhooks"], problems)


def _check_policies(exp: GateExpected, rows: dict[str, dict[str, Any]], problems: Problems) -> None:
    # A policy row is looked up by the digest assignments and decisions name:
    # deleted, it would silently turn them into "no policy"; edited, into another.
    compare("policy", exp.policies, rows["policies"], problems)
    _check_times("policy", "created_at", exp.policy_times, rows["policy_times"], problems)
    for digest, text in rows["policy_texts"].items():
        try:
            actual = policy_digest(parse_policy(text, source=f"stored policy {digest}"))
        except CharterError:
            actual = None
        if actual != digest:
            problems.add("state", f"policy {digest}", "its stored text no longer has this digest")
    compare("policy assignment", exp.assignments, rows["assignments"], problems)
    _check_times(
        "policy assignment", "set_at", exp.assignment_times, rows["assignment_times"], problems
    )


# Columns of a gate decision row that repeat a field of its (ledgered) document.
_DECISION_COLUMNS = (
    ("passed", "passed"),
    ("stage", "stage"),
    ("policy_digest", "policy_digest"),
    ("profile_digest", "profile_digest"),
    ("decided_at", "evaluated_at"),
)


def _check_decisions(exp: GateExpected, rows: dict[str, Any], problems: Problems) -> None:
    decisions = {
        key: {"ref": row["ref"], "document": row["document"], "decided_by": row["decided_by"]}
        for key, row in rows.items()
    }
    compare("gate decision", exp.decisions, decisions, problems)
    for key, row in rows.items():
        doc = row["document"]
        if not isinstance(doc, dict):
            differing = [column for column, _ in _DECISION_COLUMNS]
        else:
            differing = [c for c, k in _DECISION_COLUMNS if doc.get(k, _MISSING) != row[c]]
        if differing:
            problems.add(
                "state",
                f"gate decision {key}",
                f"its columns disagree with its document: {', '.join(differing)}",
            )


_MISSING: Any = object()


def _check_run_times(
    exp: GateExpected, stored: dict[str, Any], profiles: Mapping[str, Any], problems: Problems
) -> None:
    """A run's ``recorded_at`` is the time its result entries carry (one write took both)."""
    for run_id, recorded_at in stored.items():
        run = exp.runs.get(run_id)
        if run is None:
            continue  # reported by the comparison already
        stated = _entries_time(run, profiles)
        if stated is None:  # no result entry left to tell: hold it to the entry's time
            check_written_at(
                f"evaluation run {run_id}", "recorded_at", recorded_at, exp.run_times[run_id],
                problems,
            )  # fmt: skip
        elif recorded_at != stated:
            problems.add(
                "state",
                f"evaluation run {run_id}",
                f"its recorded_at differs from when its result entries were recorded ({stated})",
            )


def _entries_time(run: dict[str, Any], profiles: Mapping[str, Any]) -> Any:
    entries = run["document"].get("entries") if isinstance(run["document"], dict) else None
    if not isinstance(entries, list) or not entries:
        return None
    body = profiles.get(f"{run['ref']}#{entries[0]}")
    provenance = body.get("provenance") if isinstance(body, dict) else None
    return provenance.get("recorded_at") if isinstance(provenance, dict) else None


def _check_times(
    label: str,
    column: str,
    expected: Mapping[str, str],
    stored: Mapping[str, Any],
    problems: Problems,
) -> None:
    for key, value in stored.items():
        entry_time = expected.get(key)
        if entry_time is not None:  # a row without an entry was reported already
            check_written_at(f"{label} {key}", column, value, entry_time, problems)


def check_written_at(
    where: str, column: str, stored: Any, entry_time: Any, problems: Problems
) -> None:
    """Check a row's time against the time of the ledger entry that recorded it.

    The writer took it before the entry's (see :data:`MAX_WRITE_WAIT`), so it
    must be a Charter timestamp no later than the entry's and at most that long
    before it. Equal times pass too: a writer that stamps the row with its
    entry's time is held to the exact value.
    """
    try:
        written = parse_time(stored) if isinstance(stored, str) else None
        recorded = parse_time(entry_time)
    except (CharterError, TypeError, ValueError):
        written = recorded = None
    if written is None or recorded is None or format_time(written) != stored:
        problems.add("state", where, f"its {column} {stored!r} is not a Charter timestamp")
    elif written > recorded:
        problems.add(
            "state",
            where,
            f"its {column} {stored} is later than the ledger entry that recorded it ({entry_time})",
        )
    elif recorded - written > MAX_WRITE_WAIT:
        problems.add(
            "state",
            where,
            f"its {column} {stored} is more than {MAX_WRITE_WAIT.seconds // 60} minutes before "
            f"the ledger entry that recorded it ({entry_time})",
        )
