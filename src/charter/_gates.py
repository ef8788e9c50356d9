"""Gate use cases: users and roles, policies, gate decisions, approvals.

A gate decision records the policy digest and one finding per rule; approvals
record the profile digest they reviewed, so only sign-offs of the current
evidence count. Stage moves, which rely on both, live in :mod:`charter._stages`.
Mixed into :class:`charter.service.Registry`.
"""

from __future__ import annotations

import functools
from typing import Any, Literal, Protocol

from charter.domain.cards import CardRecord
from charter.domain.entities import LedgerRecord, Model, Version, VersionState
from charter.domain.errors import (
    AlreadyExistsError,
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
)
from charter.domain.folding import EffectiveProfile
from charter.domain.gate import (
    ApprovalFact,
    GateDecision,
    GateFacts,
    evaluate_gate,
    replaced_version,
)
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


# Every gate needs the policy in force, and parsing one cost about 18 ms
# per gate under cProfile in the MLflow bench run: cache by text.
# Policies are frozen and stored by digest, so the same text always means the same.
@functools.lru_cache(maxsize=64)
def _parsed_with_digest(text: str, source: str) -> tuple[Policy, str]:
    policy = parse_policy(text, source=source)
    return policy, policy_digest(policy)


def _parsed(text: str, source: str) -> Policy:
    return _parsed_with_digest(text, source)[0]


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
            policy, digest = _parsed_with_digest(DEFAULT_POLICY, "built-in policy")
            return digest, policy, "built-in default"
        return found[0], _parsed(found[1], f"stored policy {found[0]}"), scope

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
            incumbent = pointer is not None and pointer[0] == vid
            if incumbent:  # never compared with itself: with the version it replaced there
                moves = [(s.version, s.action) for s in tx.stage_history(mid, against)]
                replaced = replaced_version(moves, version)
                ref_id = tx.version_id(model, replaced) if replaced else None
                pointer = (ref_id, 0) if ref_id is not None else None
            ref_v = tx.versions_by_ids([pointer[0]])[pointer[0]] if pointer else None
        reference = (
            (ref_v, self.profile(model=model, version=ref_v.version)) if ref_v is not None else None
        )
        facts = GateFacts(
            model=m, version=v, stage=stage, profile=profile, reference=reference,
            card_stale=any(c.stale for c in cards) if cards else None,
            approvals=tuple(approvals), now=now(), incumbent=incumbent,
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


def _is_approvals_rule(rule: str) -> bool:
    # Rule names are "<policy path>: <what>", e.g. "defaults.high.approvals: at least 2 …".
    return rule.split(":", 1)[0].endswith("approvals")


def _decision(value: str) -> Literal["approve", "reject"]:
    return "reject" if value == "reject" else "approve"
