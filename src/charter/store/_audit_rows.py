"""Raw whole-table reads for ``audit verify``: every row as stored, unconverted.

Verification must see rows no entity query reaches (a stage pointer whose model
was deleted, a run filed under another version) and must not stop at a value
that cannot be converted (a tampered column may hold anything). So each read
here returns plain tuples, straight from the driver, one query per table, and
leaves every judgement to :mod:`charter._audit_gates` and its neighbours.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, func, select

from charter.store import schema as t
from charter.store._sql import raw_rows

__all__ = ["AuditRows"]

# Module level: raw_rows caches compiled SQL by the statement's identity.
_MODEL_NAMES = select(t.models.c.id, t.models.c.name)
_POLICIES = select(
    t.policies.c.digest, t.policies.c.text, t.policies.c.created_by, t.policies.c.created_at
)
_ASSIGNMENTS = select(
    t.policy_assignments.c.scope,
    t.policy_assignments.c.digest,
    t.policy_assignments.c.set_by,
    t.policy_assignments.c.set_at,
)
_TARGETS = select(
    t.model_targets.c.model_id,
    t.model_targets.c.document,
    t.model_targets.c.set_by,
    t.model_targets.c.set_at,
)
_RUNS = select(
    t.evaluation_runs.c.run_id,
    t.evaluation_runs.c.version_id,
    t.evaluation_runs.c.document,
    t.evaluation_runs.c.recorded_at,
)
_STAGES = select(
    t.stages.c.model_id,
    t.stages.c.stage,
    t.stages.c.version_id,
    t.stages.c.generation,
    t.stages.c.assigned_by,
    t.stages.c.assigned_at,
)
_HISTORY_COLUMNS = (
    "model_id", "stage", "generation", "version_id", "action", "reason", "gate_decision_id",
    "approval_ids", "by", "at", "ledger_seq",
)  # fmt: skip
_HISTORY = select(*(t.stage_history.c[name] for name in _HISTORY_COLUMNS))
_PROFILE_ENTRIES = select(
    t.profile_entries.c.version_id,
    t.profile_entries.c.entry_id,
    t.profile_entries.c.section,
    t.profile_entries.c.body,
    t.profile_entries.c.amendment_id,
    t.profile_entries.c.recorded_at,
)
_ENTRY_COUNT = select(func.count()).select_from(t.ledger_entries)


class AuditRows:
    """Whole-table reads for verification; ``conn`` is the transaction's connection."""

    conn: Connection

    def model_names(self) -> dict[Any, Any]:
        """``{model row id: name}`` of every model."""
        return dict(raw_rows(self.conn, _MODEL_NAMES))

    def policy_rows(self) -> list[tuple[Any, ...]]:
        """Every stored policy: ``(digest, text, created_by, created_at)``."""
        return list(raw_rows(self.conn, _POLICIES))

    def policy_assignment_rows(self) -> list[tuple[Any, ...]]:
        """Every policy assignment: ``(scope, digest, set_by, set_at)``."""
        return list(raw_rows(self.conn, _ASSIGNMENTS))

    def model_target_rows(self) -> list[tuple[Any, ...]]:
        """Every declared red-team target: ``(model id, document, set_by, set_at)``."""
        return list(raw_rows(self.conn, _TARGETS))

    def run_rows(self) -> list[tuple[Any, ...]]:
        """Every evaluation run: ``(run_id, version id, document, recorded_at)``."""
        return list(raw_rows(self.conn, _RUNS))

    def stage_rows(self) -> list[tuple[Any, ...]]:
        """Every stage pointer, orphans included:
        ``(model id, stage, version id, generation, assigned_by, assigned_at)``."""
        return list(raw_rows(self.conn, _STAGES))

    def stage_history_rows(self) -> list[dict[str, Any]]:
        """Every stage move of every model (orphans included), as column → value."""
        return [
            dict(zip(_HISTORY_COLUMNS, row, strict=True)) for row in raw_rows(self.conn, _HISTORY)
        ]

    def profile_entry_rows(self) -> list[tuple[Any, ...]]:
        """Every profile entry:
        ``(version id, entry_id, section, body, amendment_id, recorded_at)``."""
        return list(raw_rows(self.conn, _PROFILE_ENTRIES))

    def ledger_entry_count(self) -> int:
        """How many ledger entries are stored (whatever the head says)."""
        return int(next(iter(raw_rows(self.conn, _ENTRY_COUNT)))[0])
