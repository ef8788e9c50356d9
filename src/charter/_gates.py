"""Gate use cases: users, policies, gate decisions, approvals, promotion, rollback.

No stage points at a version whose gate for that stage failed, or that lacks
the approvals the policy demands (invariant 2), except through an explicit,
recorded admin override or rollback with a reason. A stage move is a
compare-and-set on the pointer's generation, so of two concurrent promotions
exactly one wins. Mixed into :class:`charter.service.Registry`.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

from charter.domain.cards import CardRecord
from charter.domain.entities import LedgerRecord, Model, Version, VersionState
from charter.domain.errors import (
    AlreadyExistsError,
    ConflictError,
    ForbiddenError,
    GateRefusedError,
    ImmutableError,
    InvalidInputError,
    NotFoundError,
)
from charter.domain.folding import EffectiveProfile
from charter.domain.gate import ApprovalFact, GateDecision, GateFacts, evaluate_gate
from charter.domain.policy import (
    DEFAULT_POLICY,
    Policy,
    parse_policy,
    policy_digest,
    rules_for,
    validate_policy,
)
from charter.domain.stages import Approval, Role, StageMove, User, validate_stage
from charter.journal import now
from charter.settings import Settings
from charter.store import ReadTx, Store, WriteTx

__all__ = ["BUILTIN_METRICS", "GateUseCases"]

# What the built-in evaluators write (fairness, slice-performance, redteam,
# constraints) and what bias audits report: the names a policy may rely on
# before any profile holds them.
BUILTIN_METRICS = frozenset(
    {"accuracy", "precision", "recall", "roc_auc", "demographic_parity_ratio",
     "demographic_parity_difference", "equalized_odds_ratio", "equalized_odds_difference",
     "selection_rate", "true_positive_rate", "false_positive_rate", "attack_success_rate",
     "prompt_injection_success_rate", "system_prompt_leak_rate", "pii_leakage_rate",
     "jailbreak_success_rate", "toxicity_rate", "over_refusal_rate", "constraint_violation_rate",
     "output_length_violation_rate", "blocked_content_rate", "required_refusal_miss_rate"}
)  # fmt: skip


class _Host(Protocol):
    settings: Settings
    store: Store

    @property
    def user(self) -> str: ...

    def get_model(self, *, name: str) -> Model: ...

    def get_version(self, *, model: str, version: str) -> Version: ...

    def profile(
        self, *, model: str, version: str, as_of: str | None = None, baseline: bool = False
    ) -> EffectiveProfile: ...

    def card_status(
        self, *, model: str | None = None, version: str | None = None
    ) -> list[CardRecord]: ...

    def policy(self, *, model: str | None = None) -> tuple[str, Policy, str]: ...

    def known_metrics(self) -> set[str]: ...

    def stage_history(self, *, model: str, stage: str | None = None) -> list[StageMove]: ...

    def gate(self, *, model: str, version: str, stage: str) -> tuple[int, GateDecision]: ...

    def _record(
        self, tx: WriteTx, type_: str, subject: str, data: dict[str, Any]
    ) -> LedgerRecord: ...


def _require(tx: ReadTx, user: str, needed: Role, action: str) -> User:
    found = tx.get_user(user)
    if found is None or not found.role.allows(needed):
        have = found.role.value if found else "no role (not a registry user)"
        raise ForbiddenError(
            f"{user} may not {action}: it needs the {needed.value} role, {user} has {have} "
            f"(an admin can grant it with `charter user add {user} --role {needed.value}`)",
            user=user,
            needed=needed.value,
        )
    return found


def _ids(tx: ReadTx, model: str, version: str) -> tuple[int, int]:
    mid, vid = tx.model_id(model), tx.version_id(model, version)
    if mid is None or vid is None:
        raise NotFoundError(f"unknown version {model}@{version}", model=model, version=version)
    return mid, vid


class GateUseCases:
    """Users, policies, gates, approvals and stage moves."""

    # -- users --------------------------------------------------------------
    def add_user(self: _Host, *, name: str, role: str) -> User:
        """Add a user or change their role (admin only; the first user bootstraps).

        Raises:
            ForbiddenError: the acting user is not an admin.
        """
        parsed = Role.parse(role)
        if not name.strip() or len(name) > 200:
            raise InvalidInputError("a user name is 1-200 characters", field="name")
        user = User(name.strip(), parsed, self.user, now())
        with self.store.write() as tx:
            if tx.list_users():
                _require(tx, self.user, Role.ADMIN, "manage users")
            tx.put_user(user)
            self._record(tx, "user.set", f"user:{user.name}", {"user": user.state()})
        return user

    def list_users(self: _Host) -> list[User]:
        """Every registry user with their role."""
        with self.store.read() as tx:
            return tx.list_users()

    # -- policies -----------------------------------------------------------
    def set_policy(self: _Host, *, text: str, model: str | None = None) -> str:
        """Validate and store a policy, making it the default (or ``model``'s). Admin only.

        Returns:
            The policy digest.
        """
        policy = parse_policy(text, source="policy")
        validate_policy(policy, known_metrics=self.known_metrics())
        digest = policy_digest(policy)
        scope = model or "*"
        if model is not None:
            self.get_model(name=model)
        at = now()
        with self.store.write() as tx:
            _require(tx, self.user, Role.ADMIN, "set policies")
            tx.put_policy(digest, text, by=self.user, at=at)
            tx.assign_policy(scope, digest, by=self.user, at=at)
            self._record(tx, "policy.set", f"policy:{scope}", {"scope": scope, "digest": digest})
        return digest

    def known_metrics(self: _Host) -> set[str]:
        """Metric names a policy may use: built-in evaluators', plugins', and the profiles'."""
        names = set(BUILTIN_METRICS)
        try:
            from charter.evaluation.plugins import evaluators

            for cls in evaluators().values():
                names.update(getattr(cls, "produces", ()))
        except ImportError:  # the evaluation extra is not installed
            pass
        with self.store.read() as tx:
            names.update(tx.metric_names())
        return names

    def validate_policy(self: _Host, *, text: str) -> list[str]:
        """Parse and check a policy without storing it; return warnings.

        Raises:
            InvalidInputError: malformed YAML (line/column), unknown fields, stages or metrics.
        """
        return validate_policy(
            parse_policy(text, source="policy"), known_metrics=self.known_metrics()
        )

    def policy(self: _Host, *, model: str | None = None) -> tuple[str, Policy, str]:
        """The policy in force for ``model``: (digest, policy, where it came from)."""
        with self.store.read() as tx:
            found = (tx.policy_for(model) if model else None) or tx.policy_for("*")
            scope = "model" if model and tx.policy_for(model) else "registry default"
        if found is None:
            policy = parse_policy(DEFAULT_POLICY, source="built-in policy")
            return policy_digest(policy), policy, "built-in default"
        return found[0], parse_policy(found[1], source=f"stored policy {found[0]}"), scope

    # -- gate ---------------------------------------------------------------
    def gate(self: _Host, *, model: str, version: str, stage: str) -> tuple[int, GateDecision]:
        """Evaluate the policy for ``stage`` against ``model@version`` and record it.

        Returns:
            (decision id, decision).
        """
        validate_stage(stage)
        v = self.get_version(model=model, version=version)
        m = self.get_model(name=model)
        digest, policy, _ = self.policy(model=model)
        profile = self.profile(model=model, version=version)
        cards = self.card_status(model=model, version=version)
        with self.store.read() as tx:
            mid, vid = _ids(tx, model, version)
            approvals = [
                ApprovalFact(a.user, a.role, _decision(a.decision), a.at, a.comment, str(a.id))
                for _, a in tx.approvals(vid, stage)
                if a.profile_digest == profile.digest
            ]
            against = rules_for(policy, stage=stage, risk_tier=m.risk_tier).reference_stage
            pointer = tx.stage_pointer(mid, against) if against else None
            ref_v = tx.versions_by_ids([pointer[0]])[pointer[0]] if pointer else None
        reference = (
            (ref_v, self.profile(model=model, version=ref_v.version)) if ref_v is not None else None
        )
        facts = GateFacts(
            model=m, version=v, stage=stage, profile=profile, reference=reference,
            card_stale=any(c.stale for c in cards) if cards else None,
            approvals=tuple(approvals), now=now(),
        )  # fmt: skip
        decision = evaluate_gate(policy, facts)
        with self.store.write() as tx:
            _, vid = _ids(tx, model, version)
            decision_id = tx.next_decision_id()
            document = decision.to_dict()
            tx.insert_decision(
                decision_id=decision_id, version_id=vid, stage=stage, policy_digest=digest,
                profile_digest=profile.digest, passed=decision.passed, document=document,
                by=self.user, at=facts.now,
            )  # fmt: skip
            self._record(
                tx, "gate.decided", f"version:{v.ref}", {"id": decision_id, "decision": document}
            )
        return decision_id, decision

    # -- approvals ----------------------------------------------------------
    def approve(
        self: _Host,
        *,
        model: str,
        version: str,
        stage: str,
        comment: str,
        decision: str = "approve",
    ) -> Approval:
        """Record an approval or rejection of the version's current evidence for ``stage``.

        Raises:
            InvalidInputError: a draft, an empty comment or an unknown decision.
            ForbiddenError: not an approver, or approving one's own version.
        """
        validate_stage(stage)
        if decision not in ("approve", "reject"):
            raise InvalidInputError("decision must be approve or reject", field="decision")
        if not comment.strip():
            raise InvalidInputError("a sign-off needs a comment saying why", field="comment")
        v = self.get_version(model=model, version=version)
        if v.state is VersionState.DRAFT:
            raise InvalidInputError(
                f"{v.ref} is a draft: publish it before asking for sign-off", field="version"
            )
        if decision == "approve" and v.created_by == self.user:
            raise ForbiddenError(
                f"{self.user} registered {v.ref} and cannot approve it (separation of duties)",
                user=self.user,
            )
        digest = self.profile(model=model, version=version).digest
        with self.store.write() as tx:
            user = _require(tx, self.user, Role.APPROVER, f"{decision} versions")
            _, vid = _ids(tx, model, version)
            for _, earlier in tx.approvals(vid, stage):
                if earlier.user == self.user and earlier.profile_digest == digest:
                    raise AlreadyExistsError(
                        f"{self.user} already signed off {v.ref} for {stage} on this evidence "
                        f"({earlier.decision} at {earlier.at})"
                    )
            approval = Approval(
                id=tx.next_approval_id(), ref=v.ref, stage=stage, decision=decision,
                user=self.user, role=user.role.value, comment=comment.strip(),
                profile_digest=digest, at=now(),
            )  # fmt: skip
            tx.insert_approval(vid, approval)
            self._record(
                tx, "approval.recorded", f"version:{v.ref}", {"approval": approval.state()}
            )
        return approval

    def approvals(self: _Host, *, model: str | None = None) -> list[Approval]:
        """Every sign-off (of one model), oldest first."""
        with self.store.read() as tx:
            found = [a for _, a in tx.approvals()]
        return [a for a in found if model is None or a.ref.startswith(f"{model}@")]

    def pending_approvals(self: _Host) -> list[dict[str, Any]]:
        """Versions whose latest gate for a stage lacks approvals, not yet in that stage.

        Each row names what is missing and any other rule that failed at that gate.
        """
        with self.store.read() as tx:
            latest: dict[tuple[int, str], dict[str, Any]] = {}
            for d in tx.decisions():
                latest[(d["version_id"], d["stage"])] = d
            refs = tx.version_refs()
            holders = {(p["model"], p["stage"]): p["version"] for p in tx.stage_pointers()}
        out = []
        for (vid, stage), d in sorted(latest.items()):
            name, _, number = refs[vid].partition("@")
            failed = [f for f in d["document"]["findings"] if not f["passed"]]
            missing = [f for f in failed if _is_approvals_rule(f["rule"])]
            if not missing or holders.get((name, stage)) == number:
                continue
            others = [f["message"] for f in failed if not _is_approvals_rule(f["rule"])]
            out.append({"ref": refs[vid], "stage": stage, "decision_id": d["id"],
                        "missing": missing[0]["message"], "also_failing": others})  # fmt: skip
        return out

    # -- stage moves --------------------------------------------------------
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
        """The move that put the version holding ``stage`` at ``time`` in place (or None)."""
        found = None
        for move in self.stage_history(model=model, stage=stage):
            if move.at <= time:
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


def _is_approvals_rule(rule: str) -> bool:
    # Rule names are "<policy path>: <what>", e.g. "defaults.high.approvals: at least 2 …".
    return rule.split(":", 1)[0].endswith("approvals")


def _decision(value: str) -> Literal["approve", "reject"]:
    return "reject" if value == "reject" else "approve"


def _check_promotable(host: _Host, v: Version) -> None:
    if v.state is VersionState.DRAFT:
        raise InvalidInputError(f"{v.ref} is a draft: publish it before promoting", field="version")
    with host.store.read() as tx:
        status = tx.version_status(tx.version_id(v.model, v.version) or 0)
    if status is not None:
        raise ImmutableError(f"{v.ref} is {status[0]} ({status[1]}) and can never be promoted")


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
        if not tx.move_stage(model_id=mid, stage=stage, version_id=vid,
                             expected_generation=generation, by=host.user, at=at):  # fmt: skip
            raise ConflictError(
                f"{stage} of {v.model} moved while {v.ref} was being promoted: "
                "look at `charter stage history` and try again",
                stage=stage,
            )
        draft = StageMove(v.model, stage, generation + 1, v.version, action, reason, decision_id,
                          approvals, host.user, at, 0)  # fmt: skip
        event = "stage.assigned" if action != "rollback" else "stage.rolled_back"
        record = host._record(tx, event, f"stage:{v.model}/{stage}", {"move": draft.state()})
        move = StageMove(**{**draft.__dict__, "ledger_seq": record.seq})
        tx.insert_stage_move(model_id=mid, version_id=vid, move=move)
    return move
