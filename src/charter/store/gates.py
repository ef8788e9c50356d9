"""Store queries for users, policies, gate decisions, approvals and stages."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, bindparam, delete, func, insert, select, update

from charter.domain.stages import Approval, Role, StageMove, User
from charter.store import schema as t
from charter.store._audit_rows import AuditRows
from charter.store._sql import Compiled

__all__ = ["EvaluationRows", "GateRows"]

# Prebuilt statements of the hot paths: every registration reads the model's
# red-team target; every gate and promotion reads the user, the policy, the
# version's sign-offs and the stage pointer, then writes a decision and a move.
_MODEL_TARGET = Compiled(
    select(t.model_targets.c.document).where(t.model_targets.c.model_id == bindparam("model_id"))
)
_USER = Compiled(select(t.users).where(t.users.c.name == bindparam("name")))
_POLICY_FOR = Compiled(
    select(t.policies.c.digest, t.policies.c.text)
    .join(t.policy_assignments, t.policy_assignments.c.digest == t.policies.c.digest)
    .where(t.policy_assignments.c.scope == bindparam("scope"))
)
_NEXT_ID = {
    table.name: Compiled(select(func.coalesce(func.max(table.c.id), 0)))
    for table in (t.gate_decisions, t.approvals)
}
_INSERT_DECISION = Compiled(insert(t.gate_decisions), [c.name for c in t.gate_decisions.c])
_APPROVALS = (
    select(t.approvals, t.models.c.name, t.versions.c.version.label("number"))
    .outerjoin(t.versions, t.versions.c.id == t.approvals.c.version_id)
    .outerjoin(t.models, t.models.c.id == t.versions.c.model_id)
    .order_by(t.approvals.c.id)
)
_APPROVALS_AT = Compiled(
    _APPROVALS.where(
        t.approvals.c.version_id == bindparam("vid"), t.approvals.c.stage == bindparam("stage")
    )
)
_S = t.stages
_STAGE_POINTER = Compiled(
    select(_S.c.version_id, _S.c.generation).where(
        _S.c.model_id == bindparam("mid"), _S.c.stage == bindparam("stage")
    )
)
_INSERT_POINTER = Compiled(insert(_S), [c.name for c in _S.c])
_MOVE_POINTER = Compiled(
    update(_S)
    .where(
        _S.c.model_id == bindparam("mid"),
        _S.c.stage == bindparam("stage_name"),
        _S.c.generation == bindparam("expected"),
    )
    .values(
        version_id=bindparam("vid"), generation=bindparam("next_generation"),
        assigned_by=bindparam("by"), assigned_at=bindparam("at"),
    )
)  # fmt: skip
_POINTERS = (
    select(_S, t.models.c.name, t.versions.c.version.label("number"))
    .join(t.models, t.models.c.id == _S.c.model_id)
    .outerjoin(t.versions, t.versions.c.id == _S.c.version_id)
)
_POINTERS_OF = Compiled(_POINTERS.where(_S.c.model_id == bindparam("mid")))
_STATUS_OF = Compiled(
    select(t.version_status).where(t.version_status.c.version_id == bindparam("vid"))
)
_H = t.stage_history
_INSERT_MOVE = Compiled(insert(_H), [c.name for c in _H.c])
# Version numbers by join: never read every version's name to label a few moves.
_HISTORY = (
    select(_H, t.models.c.name, t.versions.c.version.label("number"))
    .join(t.models, t.models.c.id == _H.c.model_id)
    .outerjoin(t.versions, t.versions.c.id == _H.c.version_id)
    .where(_H.c.model_id == bindparam("mid"))
    .order_by(_H.c.at, _H.c.generation)
)
_HISTORY_OF = {
    False: Compiled(_HISTORY),
    True: Compiled(_HISTORY.where(_H.c.stage == bindparam("stage"))),
}


class EvaluationRows:
    """Evaluation runs (append-only) and declared red-team targets."""

    conn: Connection

    def insert_run(self, version_id: int, run_id: str, document: dict[str, Any], at: str) -> None:
        """Store one evaluation run's reproducibility record."""
        self.conn.execute(
            insert(t.evaluation_runs).values(
                run_id=run_id, version_id=version_id,
                document=json.dumps(document, sort_keys=True), recorded_at=at,
            )
        )  # fmt: skip

    def runs(self, version_id: int | None = None) -> list[dict[str, Any]]:
        """Evaluation run documents (of one version), oldest first."""
        query = select(t.evaluation_runs).order_by(t.evaluation_runs.c.recorded_at)
        if version_id is not None:
            query = query.where(t.evaluation_runs.c.version_id == version_id)
        return [json.loads(r.document) for r in self.conn.execute(query)]

    def model_target(self, model_id: int) -> dict[str, Any] | None:
        """The red-team target document a model declared, or None."""
        r = _MODEL_TARGET(self.conn, {"model_id": model_id}).first()
        return json.loads(r.document) if r else None

    def set_model_target(
        self, model_id: int, document: dict[str, Any], *, by: str, at: str
    ) -> None:
        """Declare (or replace) a model's red-team target."""
        self.conn.execute(delete(t.model_targets).where(t.model_targets.c.model_id == model_id))
        self.conn.execute(
            insert(t.model_targets).values(
                model_id=model_id,
                document=json.dumps(document, sort_keys=True),
                set_by=by,
                set_at=at,
            )
        )


class GateRows(EvaluationRows, AuditRows):
    """Gate-related rows; writes happen inside the caller's write transaction.

    :class:`AuditRows` rides along here so the read transaction gains verify's
    whole-table reads without another base in :mod:`charter.store.store`.
    """

    conn: Connection

    # -- users --------------------------------------------------------------
    def get_user(self, name: str) -> User | None:
        """The user called ``name``, or None."""
        r = _USER(self.conn, {"name": name}).first()
        return User(r.name, Role(r.role), r.updated_by, r.updated_at) if r else None

    def list_users(self) -> list[User]:
        """Every user, by name."""
        rows = self.conn.execute(select(t.users).order_by(t.users.c.name))
        return [User(r.name, Role(r.role), r.updated_by, r.updated_at) for r in rows]

    def put_user(self, user: User) -> None:
        """Insert or replace a user."""
        self.conn.execute(delete(t.users).where(t.users.c.name == user.name))
        self.conn.execute(insert(t.users).values(**user.state()))

    # -- policies -----------------------------------------------------------
    def put_policy(self, digest: str, text: str, *, by: str, at: str) -> None:
        """Store a policy text by digest (once)."""
        found = self.conn.execute(
            select(t.policies.c.digest).where(t.policies.c.digest == digest)
        ).first()
        if found is None:
            self.conn.execute(
                insert(t.policies).values(digest=digest, text=text, created_by=by, created_at=at)
            )

    def assign_policy(self, scope: str, digest: str, *, by: str, at: str) -> None:
        """Make ``digest`` the policy of ``scope`` ("*" or a model name)."""
        self.conn.execute(delete(t.policy_assignments).where(t.policy_assignments.c.scope == scope))
        self.conn.execute(
            insert(t.policy_assignments).values(scope=scope, digest=digest, set_by=by, set_at=at)
        )

    def policy_for(self, scope: str) -> tuple[str, str] | None:
        """(digest, text) of the policy assigned to ``scope``, or None."""
        r = _POLICY_FOR(self.conn, {"scope": scope}).first()
        return (r.digest, r.text) if r else None

    def policy_assignments(self) -> dict[str, str]:
        """``{scope: digest}`` of every assignment."""
        rows = self.conn.execute(select(t.policy_assignments))
        return {r.scope: r.digest for r in rows}

    def policy_texts(self) -> dict[str, str]:
        """``{digest: text}`` of every stored policy."""
        return {r.digest: r.text for r in self.conn.execute(select(t.policies))}

    # -- gate decisions -----------------------------------------------------
    def _next_id(self, table: Any) -> int:
        # Writers are serialised on the ledger head, so max + 1 cannot collide.
        return int(_NEXT_ID[table.name](self.conn).scalar_one()) + 1

    def next_decision_id(self) -> int:
        """The id the next gate decision gets."""
        return self._next_id(t.gate_decisions)

    def next_approval_id(self) -> int:
        """The id the next approval gets."""
        return self._next_id(t.approvals)

    def insert_decision(
        self,
        *,
        decision_id: int,
        version_id: int,
        stage: str,
        policy_digest: str,
        profile_digest: str,
        passed: bool,
        document: dict[str, Any],
        by: str,
        at: str,
    ) -> None:
        """Store one gate decision."""
        _INSERT_DECISION(
            self.conn,
            {
                "id": decision_id,
                "version_id": version_id,
                "stage": stage,
                "policy_digest": policy_digest,
                "profile_digest": profile_digest,
                "passed": passed,
                "document": json.dumps(document, sort_keys=True),
                "decided_by": by,
                "decided_at": at,
            },
        )

    def decisions(
        self, version_id: int | None = None, stage: str | None = None
    ) -> list[dict[str, Any]]:
        """Gate decisions (of one version and/or stage), oldest first."""
        query = select(t.gate_decisions).order_by(t.gate_decisions.c.id)
        if version_id is not None:
            query = query.where(t.gate_decisions.c.version_id == version_id)
        if stage is not None:
            query = query.where(t.gate_decisions.c.stage == stage)
        return [
            {"id": r.id, "version_id": r.version_id, "stage": r.stage, "passed": bool(r.passed),
             "policy_digest": r.policy_digest, "profile_digest": r.profile_digest,
             "document": json.loads(r.document), "decided_by": r.decided_by,
             "decided_at": r.decided_at}
            for r in self.conn.execute(query)
        ]  # fmt: skip

    # -- approvals ----------------------------------------------------------
    def insert_approval(self, version_id: int, approval: Approval) -> None:
        """Store one approval or rejection."""
        state = approval.state()
        state.pop("ref")
        self.conn.execute(insert(t.approvals).values(version_id=version_id, **state))

    def approvals(
        self,
        version_id: int | None = None,
        stage: str | None = None,
        refs: dict[int, str] | None = None,
    ) -> list[tuple[int, Approval]]:
        """(version id, approval) pairs, oldest first."""
        # Names by join unless the caller (``audit verify``) already holds them all.
        rows: Any
        if version_id is not None and stage is not None:  # every gate's question
            rows = _APPROVALS_AT(self.conn, {"vid": version_id, "stage": stage})
        else:
            query = _APPROVALS
            if version_id is not None:
                query = query.where(t.approvals.c.version_id == version_id)
            if stage is not None:
                query = query.where(t.approvals.c.stage == stage)
            rows = self.conn.execute(query)
        out = []
        for r in rows:
            if refs is not None:
                ref = refs.get(r.version_id, "?")
            else:
                ref = f"{r.name}@{r.number}" if r.number is not None else "?"
            out.append((r.version_id, Approval(r.id, ref, r.stage, r.decision, r.user, r.role,
                                               r.comment, r.profile_digest, r.at)))  # fmt: skip
        return out

    # -- stages -------------------------------------------------------------
    def stage_pointer(self, model_id: int, stage: str) -> tuple[int, int] | None:
        """(version id, generation) currently holding ``stage``, or None."""
        r = _STAGE_POINTER(self.conn, {"mid": model_id, "stage": stage}).first()
        return (r.version_id, r.generation) if r else None

    def stage_pointers(
        self, model_id: int | None = None, refs: dict[int, str] | None = None
    ) -> list[dict[str, Any]]:
        """Every current stage pointer (of one model), with model and version names."""
        # Without ``refs``, names come from a join: reading every version's name to
        # show a model's two pointers made stage reads grow with the registry.
        rows: Any = (
            self.conn.execute(_POINTERS)
            if model_id is None
            else _POINTERS_OF(self.conn, {"mid": model_id})
        )
        return [
            {"model": r.name, "stage": r.stage,
             "version": (refs[r.version_id].split("@")[1] if refs is not None else r.number),
             "generation": r.generation, "assigned_by": r.assigned_by, "assigned_at": r.assigned_at}
            for r in rows
        ]  # fmt: skip

    def move_stage(
        self,
        *,
        model_id: int,
        stage: str,
        version_id: int,
        expected_generation: int,
        by: str,
        at: str,
    ) -> bool:
        """Compare-and-set the pointer; False when another writer moved it first."""
        if expected_generation == 0:
            if self.stage_pointer(model_id, stage) is not None:
                return False
            _INSERT_POINTER(
                self.conn,
                {"model_id": model_id, "stage": stage, "version_id": version_id,
                 "generation": 1, "assigned_by": by, "assigned_at": at},
            )  # fmt: skip
            return True
        done = _MOVE_POINTER(
            self.conn,
            {"mid": model_id, "stage_name": stage, "expected": expected_generation,
             "vid": version_id, "next_generation": expected_generation + 1, "by": by, "at": at},
        )  # fmt: skip
        return done.rowcount == 1

    def insert_stage_move(self, *, model_id: int, version_id: int, move: StageMove) -> None:
        """Append one stage move to the history."""
        _INSERT_MOVE(
            self.conn,
            {"model_id": model_id, "stage": move.stage, "generation": move.generation,
             "version_id": version_id, "action": move.action, "reason": move.reason,
             "gate_decision_id": move.gate_decision_id,
             "approval_ids": json.dumps(list(move.approval_ids)), "by": move.by, "at": move.at,
             "ledger_seq": move.ledger_seq},
        )  # fmt: skip

    def stage_history(
        self, model_id: int, stage: str | None = None, refs: dict[int, str] | None = None
    ) -> list[StageMove]:
        """Every move of a model's stages (or of one), oldest first."""
        params = {"mid": model_id, "stage": stage}
        rows = _HISTORY_OF[stage is not None](self.conn, params)
        return [
            StageMove(r.name, r.stage, r.generation,
                      (refs.get(r.version_id, "?@?").split("@")[1] if refs is not None
                       else r.number if r.number is not None else "?"),
                      r.action, r.reason, r.gate_decision_id, tuple(json.loads(r.approval_ids)),
                      r.by, r.at, r.ledger_seq)
            for r in rows
        ]  # fmt: skip

    # -- lifecycle ----------------------------------------------------------
    def version_statuses(self) -> dict[int, tuple[str, str, str, str]]:
        """Every deprecated or archived version: ``{version id: (status, reason, by, at)}``."""
        rows = self.conn.execute(select(t.version_status))
        return {r.version_id: (r.status, r.reason, r.by, r.at) for r in rows}

    def version_status(self, version_id: int) -> tuple[str, str, str, str] | None:
        """(status, reason, by, at) when the version was deprecated or archived."""
        r = _STATUS_OF(self.conn, {"vid": version_id}).first()
        return (r.status, r.reason, r.by, r.at) if r else None

    def set_version_status(
        self, version_id: int, *, status: str, reason: str, by: str, at: str
    ) -> None:
        """Deprecate or archive a version (once, forever)."""
        self.conn.execute(
            insert(t.version_status).values(
                version_id=version_id, status=status, reason=reason, by=by, at=at
            )
        )
