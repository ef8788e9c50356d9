"""Stage use cases: promotion, rollback, stage history, "which version at time T",
and deprecation.

No stage points at a version whose gate for that stage failed, or that lacks
the approvals the policy demands (invariant 2), except through an explicit,
recorded admin override or rollback with a reason. A stage move is a
compare-and-set on the pointer's generation, so of two concurrent promotions
exactly one wins. Mixed into :class:`charter.service.Registry`.
"""

from __future__ import annotations

from typing import Any

from charter._gates import _Host, _ids, _is_approvals_rule, _require
from charter.domain.canonical import loads
from charter.domain.entities import Version, VersionState, canonical_time
from charter.domain.errors import (
    ConflictError,
    GateRefusedError,
    ImmutableError,
    InvalidInputError,
    LedgerError,
    NotFoundError,
)
from charter.domain.stages import Role, StageMove, validate_stage
from charter.journal import now
from charter.store import WriteTx

__all__ = ["StageUseCases"]


class StageUseCases:
    """Moving stage pointers, and their history."""

    def promote(
        self: _Host,
        *,
        model: str,
        version: str,
        stage: str,
        force: bool = False,
        reason: str | None = None,
    ) -> StageMove:
        """Gate, then move ``stage`` to ``model@version`` atomically.

        ``force`` (admin only, with a reason) overrides a failed gate; it is recorded
        as an ``override``.

        Raises:
            GateRefusedError: the gate failed (findings in ``details``).
            ConflictError: another promotion moved the stage first.
        """
        validate_stage(stage)
        v = self.get_version(model=model, version=version)
        _check_promotable(self, v)
        if force and not (reason and reason.strip()):
            raise InvalidInputError("--force needs --reason", field="reason")
        with self.store.read() as tx:
            mid, vid = _ids(tx, model, version)
            pointer = tx.stage_pointer(mid, stage)
            if force:
                _require(tx, self.user, Role.ADMIN, "override a gate")
            else:
                _require(tx, self.user, Role.CONTRIBUTOR, "promote versions")
        if pointer is not None and pointer[0] == vid:
            raise InvalidInputError(f"{v.ref} already holds {stage}", field="stage")
        decision_id, decision = self.gate(model=model, version=version, stage=stage)
        if not decision.passed and not force:
            failed = [f.message for f in decision.findings if not f.passed]
            raise GateRefusedError(
                f"{v.ref} may not enter {stage}: " + "; ".join(failed),
                decision_id=decision_id,
                findings=[f.to_dict() for f in decision.findings],
            )
        action = "override" if (force and not decision.passed) else "promote"
        counted = tuple(
            int(e) for f in decision.findings if _is_approvals_rule(f.rule) for e in f.evidence
            if e.isdigit()
        )  # fmt: skip
        return _move(self, v, mid=mid, vid=vid, stage=stage, expected=pointer, action=action,
                     reason=reason, decision_id=decision_id, approvals=counted)  # fmt: skip

    def rollback(
        self: _Host,
        *,
        model: str,
        stage: str,
        reason: str,
        to: str | None = None,
        force: bool = False,
    ) -> StageMove:
        """Move ``stage`` back (default: to its previous holder), with a reason.

        The target must have passed this stage's gate before; otherwise only an admin
        may force it.
        """
        validate_stage(stage)
        if not reason.strip():
            raise InvalidInputError("a rollback needs --reason", field="reason")
        self.get_model(name=model)
        with self.store.read() as tx:
            mid = tx.model_id(model) or 0
            pointer = tx.stage_pointer(mid, stage)
            history = tx.stage_history(mid, stage)
            if pointer is None:
                raise InvalidInputError(f"{model} has never been in {stage}: nothing to roll back")
            current = tx.versions_by_ids([pointer[0]])[pointer[0]]
            target = to or _previous_holder(history, current.version)
            if target is None:
                raise InvalidInputError(
                    f"{stage} of {model} has no earlier holder: name one with --to VERSION"
                )
            tv = self.get_version(model=model, version=target)
            _check_promotable(self, tv)
            _, tvid = _ids(tx, model, target)
            passed_before = [d["id"] for d in tx.decisions(tvid, stage) if d["passed"]]
            if not passed_before:
                if not force:
                    raise GateRefusedError(
                        f"{tv.ref} never passed the {stage} gate: only an admin may force "
                        "this rollback (--force)",
                        field="to",
                    )
                _require(tx, self.user, Role.ADMIN, "force a rollback")
            else:
                _require(tx, self.user, Role.CONTRIBUTOR, "roll back")
        if tvid == pointer[0]:
            raise InvalidInputError(f"{tv.ref} already holds {stage}", field="to")
        last_pass = passed_before[-1] if passed_before else None
        return _move(self, tv, mid=mid, vid=tvid, stage=stage, expected=pointer, action="rollback",
                     reason=reason.strip(), decision_id=last_pass, approvals=())  # fmt: skip

    def stage_history(self: _Host, *, model: str, stage: str | None = None) -> list[StageMove]:
        """Every move of the model's stages (or one stage), oldest first."""
        self.get_model(name=model)
        with self.store.read() as tx:
            return tx.stage_history(tx.model_id(model) or 0, stage)

    def stages(self: _Host, *, model: str | None = None) -> list[dict[str, Any]]:
        """Current stage pointers (of one model, or all)."""
        with self.store.read() as tx:
            mid = tx.model_id(model) if model else None
            if model and mid is None:
                raise NotFoundError(f"unknown model {model!r}", model=model)
            return tx.stage_pointers(mid)

    def stage_at(self: _Host, *, model: str, stage: str, time: str) -> StageMove | None:
        """The move that put the version holding ``stage`` at ``time`` in place (or None).

        Args:
            time: ISO-8601 (a date, or a time with ``Z`` or an offset; naive is UTC).

        Raises:
            InvalidInputError: ``time`` is not an ISO-8601 time. NotFoundError.
        """
        when = canonical_time(time)
        found = None
        for move in self.stage_history(model=model, stage=stage):
            if move.at <= when:
                found = move
        return found

    def deprecate(
        self: _Host, *, model: str, version: str, reason: str, status: str = "deprecated"
    ) -> None:
        """Mark a version deprecated or archived: it can never be promoted again."""
        if status not in ("deprecated", "archived"):
            raise InvalidInputError("status must be deprecated or archived", field="status")
        if not reason.strip():
            raise InvalidInputError("deprecating needs a reason", field="reason")
        v = self.get_version(model=model, version=version)
        with self.store.write() as tx:
            _require(tx, self.user, Role.APPROVER, "deprecate versions")
            _, vid = _ids(tx, model, version)
            if tx.version_status(vid) is not None:
                raise ImmutableError(f"{v.ref} is already {tx.version_status(vid)[0]}")  # type: ignore[index]
            at = now()
            tx.set_version_status(vid, status=status, reason=reason.strip(), by=self.user, at=at)
            data = {"status": status, "reason": reason.strip(), "by": self.user, "at": at}
            self._record(tx, f"version.{status}", f"version:{v.ref}", data)


def _check_promotable(host: _Host, v: Version) -> None:
    if v.state is VersionState.DRAFT:
        raise InvalidInputError(f"{v.ref} is a draft: publish it before promoting", field="version")
    with host.store.read() as tx:
        status = tx.version_status(tx.version_id(v.model, v.version) or 0)
    if status is not None:
        raise ImmutableError(f"{v.ref} is {status[0]} ({status[1]}) and can never be promoted")


def _still_valid(
    tx: WriteTx, v: Version, *, vid: int, stage: str, decision_id: int | None, gated: bool
) -> None:
    """Re-check, under the writer lock, what the move was decided on.

    ``promote`` and ``rollback`` check the version's status and gate it in earlier
    transactions; a deprecation, amendment, sign-off or policy change committed
    in between would otherwise let the move rest on facts no longer true (a
    deprecated version entering a stage; a version entering on evidence its gate
    never judged, the ledger showing the change before the move).

    Raises:
        ImmutableError: the version was deprecated or archived meanwhile.
        ConflictError: for a gated promotion, something the gate read was
            recorded after its decision (other gate decisions aside).
        LedgerError: the decision has no ledger entry.
    """
    status = tx.version_status(vid)
    if status is not None:
        raise ImmutableError(f"{v.ref} is {status[0]} ({status[1]}) and can never be promoted")
    if not gated or decision_id is None:
        return
    about = tx.entries_for(f"version:{v.ref}")
    decided = next(
        (r.seq for r in reversed(about)
         if r.type == "gate.decided" and loads(r.body)["data"]["id"] == decision_id),
        None,
    )  # fmt: skip
    if decided is None:  # written with the decision, in its transaction
        raise LedgerError(f"gate decision {decision_id} of {v.ref} has no ledger entry")
    policies = tx.entries_for("policy:*") + tx.entries_for(f"policy:{v.model}")
    since = sorted(
        {r.type for r in [*about, *policies] if r.seq > decided and r.type != "gate.decided"}
    )
    if since:
        raise ConflictError(
            f"{v.ref} changed while it was being promoted to {stage} ({', '.join(since)} "
            "after its gate decision): gate it again",
            stage=stage,
            changed=since,
        )


def _previous_holder(history: list[StageMove], current: str) -> str | None:
    for move in reversed(history):
        if move.version != current:
            return move.version
    return None


def _move(
    host: _Host,
    v: Version,
    *,
    mid: int,
    vid: int,
    stage: str,
    expected: tuple[int, int] | None,
    action: str,
    reason: str | None,
    decision_id: int | None,
    approvals: tuple[int, ...],
) -> StageMove:
    generation = expected[1] if expected else 0
    at = now()
    with host.store.write() as tx:
        _still_valid(tx, v, vid=vid, stage=stage, decision_id=decision_id,
                     gated=action == "promote")  # fmt: skip
        if not tx.move_stage(model_id=mid, stage=stage, version_id=vid,
                             expected_generation=generation, by=host.user, at=at):  # fmt: skip
            raise ConflictError(
                f"{stage} of {v.model} moved while {v.ref} was being promoted: "
                "look at `charter stage history` and try again",
                stage=stage,
                expected_generation=generation,  # the generation it read, another won
            )
        draft = StageMove(v.model, stage, generation + 1, v.version, action, reason, decision_id,
                          approvals, host.user, at, 0)  # fmt: skip
        event = "stage.assigned" if action != "rollback" else "stage.rolled_back"
        record = host._record(tx, event, f"stage:{v.model}/{stage}", {"move": draft.state()})
        move = StageMove(**{**draft.__dict__, "ledger_seq": record.seq})
        tx.insert_stage_move(model_id=mid, version_id=vid, move=move)
    return move
