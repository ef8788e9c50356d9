"""``audit verify``, sign-off part: read the rows in the shapes the ledger replay builds.

Every table is read whole, once (no query per model or version), and rows are
keyed by what they describe (``model/stage``, a run id…), found through the id
maps read once: a row whose model or version no longer exists is keyed by its
raw id instead, so it still shows up as a row without a ledger entry. Columns
the ledger records only as its entry's time (``set_at``…) are kept apart in
``*_times`` tables: :func:`charter._audit_gates.check_gates` judges them
against the entry's time rather than for equality.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from charter.store import ReadTx

__all__ = ["read_gate_rows"]

_UNREADABLE: Any = object()
"""Stands for a JSON column that does not parse: it equals no ledger value."""


def read_gate_rows(tx: ReadTx, refs: dict[int, str]) -> dict[str, dict[str, Any]]:
    """Read the sign-off rows in the shapes the ledger replay produces.

    Args:
        tx: the verification's read transaction.
        refs: ``{version id: name@version}`` of every version, read once by the caller.

    Raises:
        ValueError, TypeError, KeyError, CharterError: a row the entity reads
            (users, decisions, approvals, tokens, webhooks) cannot convert; the
            caller reports the sign-off state as unreadable.
    """
    names = tx.model_names()
    rows: dict[str, dict[str, Any]] = {
        "users": {u.name: u.state() for u in tx.list_users()},
        "decisions": {
            str(d["id"]): {**d, "ref": refs.get(d["version_id"], f"id {d['version_id']}")}
            for d in tx.decisions()
        },
        "approvals": {str(a.id): a.state() for _, a in tx.approvals(refs=refs)},
        "statuses": {
            refs.get(vid, f"id {vid}"): dict(zip(("status", "reason", "by", "at"), s, strict=True))
            for vid, s in tx.version_statuses().items()
        },
        "tokens": tx.token_rows(),
        "flags": _flags(tx, refs),
        "webhooks": {str(w.id): w.ledger_state() | {"active": w.active} for w in tx.webhooks()},
        "moves": _moves(tx, names, refs),
        **_policies(tx),
        **_pointers(tx, names, refs),
        **_runs(tx, refs),
        **_targets(tx, names),
    }
    return rows


def _policies(tx: ReadTx) -> dict[str, dict[str, Any]]:
    texts, policies, policy_times = {}, {}, {}
    for digest, text, created_by, created_at in tx.policy_rows():
        texts[digest] = text
        policies[digest] = {"created_by": created_by}
        policy_times[digest] = created_at
    assignments, assignment_times = {}, {}
    for scope, digest, set_by, set_at in tx.policy_assignment_rows():
        assignments[scope] = {"digest": digest, "set_by": set_by}
        assignment_times[scope] = set_at
    return {
        "policy_texts": texts,
        "policies": policies,
        "policy_times": policy_times,
        "assignments": assignments,
        "assignment_times": assignment_times,
    }


def _pointers(
    tx: ReadTx, names: Mapping[Any, Any], refs: Mapping[int, str]
) -> dict[str, dict[str, Any]]:
    pointers = {}
    for mid, stage, vid, generation, assigned_by, assigned_at in tx.stage_rows():
        # The full name@version: a pointer moved to another model's version differs too.
        pointers[f"{_model(names, mid)}/{stage}"] = {
            "version": refs.get(vid, f"id {vid}"), "generation": generation,
            "assigned_by": assigned_by, "assigned_at": assigned_at,
        }  # fmt: skip
    return {"pointers": pointers}


def _moves(tx: ReadTx, names: Mapping[Any, Any], refs: Mapping[int, str]) -> dict[str, Any]:
    moves = {}
    for row in tx.stage_history_rows():
        model = _model(names, row["model_id"])
        ref = refs.get(row["version_id"], f"id {row['version_id']}")
        owner, _, version = ref.partition("@")
        approvals = _json(row["approval_ids"])
        moves[f"{model}/{row['stage']}#{row['generation']}"] = {
            "model": model, "stage": row["stage"], "generation": row["generation"],
            # Only the version number is in the move; another model's version must differ.
            "version": version if owner == model else ref,
            "action": row["action"], "reason": row["reason"],
            "gate_decision_id": row["gate_decision_id"],
            "approval_ids": approvals if isinstance(approvals, list) else _UNREADABLE,
            "by": row["by"], "at": row["at"], "ledger_seq": row["ledger_seq"],
        }  # fmt: skip
    return moves


def _runs(tx: ReadTx, refs: Mapping[int, str]) -> dict[str, dict[str, Any]]:
    runs, run_times = {}, {}
    for run_id, vid, document, recorded_at in tx.run_rows():
        # Keyed by the run_id column, not the document's: an edited key must show.
        runs[run_id] = {"ref": refs.get(vid, f"id {vid}"), "document": _json(document)}
        run_times[run_id] = recorded_at
    return {"runs": runs, "run_times": run_times}


def _targets(tx: ReadTx, names: Mapping[Any, Any]) -> dict[str, dict[str, Any]]:
    targets, target_times = {}, {}
    for mid, document, set_by, set_at in tx.model_target_rows():
        model = _model(names, mid)
        targets[model] = {"document": _json(document), "set_by": set_by}
        target_times[model] = set_at
    return {"targets": targets, "target_times": target_times}


def _flags(tx: ReadTx, refs: Mapping[int, str]) -> dict[str, Any]:
    # Keyed by position among the version's flags, in id order: rows carry no other order.
    flags: dict[str, Any] = {}
    seen: dict[str, int] = {}
    for vid, flag in tx.flag_rows():
        ref = refs.get(vid, f"id {vid}")
        seen[ref] = seen.get(ref, -1) + 1
        flags[f"{ref}#{seen[ref]}"] = flag
    return flags


def _model(names: Mapping[Any, Any], model_id: Any) -> str:
    name = names.get(model_id)
    return name if isinstance(name, str) else f"model id {model_id}"


def _json(text: Any) -> Any:
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return _UNREADABLE
