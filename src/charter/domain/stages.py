"""Users and roles, approvals, stage assignments: the human side of a gate.

Approvals are bound to the evidence they reviewed: each records the digest of
the effective profile it approved or rejected. Only approvals of the *current*
profile count — that is the approval round. A rejection therefore blocks the
version for that stage until its profile changes (an amendment that answers
the rejection starts a new round), and approvals given on older evidence never
carry over to new evidence.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from charter.domain.errors import InvalidInputError

__all__ = ["Approval", "Role", "StageMove", "User", "validate_stage"]

_STAGE_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789-_")


def validate_stage(stage: str) -> str:
    """Validate a stage name: 1-64 lowercase letters, digits, '-' or '_'.

    Raises:
        InvalidInputError: naming the rule.
    """
    if not stage or len(stage) > 64 or not set(stage) <= _STAGE_CHARS:
        raise InvalidInputError(
            f"invalid stage {stage!r}: use 1-64 lowercase letters, digits, '-' or '_'",
            field="stage",
            value=stage,
        )
    return stage


class Role(StrEnum):
    """What a user may do: read, register/evaluate, approve, administer."""

    VIEWER = "viewer"
    CONTRIBUTOR = "contributor"
    APPROVER = "approver"
    ADMIN = "admin"

    @classmethod
    def parse(cls, value: str) -> Role:
        """Parse a role.

        Raises:
            InvalidInputError: for anything but viewer, contributor, approver, admin.
        """
        try:
            return cls(value)
        except ValueError:
            raise InvalidInputError(
                f"invalid role {value!r}: use viewer, contributor, approver or admin",
                field="role",
                valid=[r.value for r in cls],
            ) from None

    def allows(self, needed: Role) -> bool:
        """True when this role includes ``needed`` (admin includes everything)."""
        order = [Role.VIEWER, Role.CONTRIBUTOR, Role.APPROVER, Role.ADMIN]
        return order.index(self) >= order.index(needed)


@dataclass(frozen=True)
class User:
    """A registry user and their role."""

    name: str
    role: Role
    updated_by: str
    updated_at: str

    def state(self) -> dict[str, Any]:
        """Canonical document for the ledger."""
        return {
            "name": self.name,
            "role": self.role.value,
            "updated_by": self.updated_by,
            "updated_at": self.updated_at,
        }


@dataclass(frozen=True)
class Approval:
    """One sign-off (or rejection) of a version for a stage."""

    id: int
    ref: str
    stage: str
    decision: str
    user: str
    role: str
    comment: str
    profile_digest: str
    at: str

    def state(self) -> dict[str, Any]:
        """Canonical document for the ledger."""
        return {
            "id": self.id,
            "ref": self.ref,
            "stage": self.stage,
            "decision": self.decision,
            "user": self.user,
            "role": self.role,
            "comment": self.comment,
            "profile_digest": self.profile_digest,
            "at": self.at,
        }


@dataclass(frozen=True)
class StageMove:
    """One move of a stage pointer (promotion, rollback or override)."""

    model: str
    stage: str
    generation: int
    version: str
    action: str
    reason: str | None
    gate_decision_id: int | None
    approval_ids: tuple[int, ...]
    by: str
    at: str
    ledger_seq: int

    def state(self) -> dict[str, Any]:
        """Canonical document for the ledger (``ledger_seq`` is the entry itself)."""
        return {
            "model": self.model,
            "stage": self.stage,
            "generation": self.generation,
            "version": self.version,
            "action": self.action,
            "reason": self.reason,
            "gate_decision_id": self.gate_decision_id,
            "approval_ids": list(self.approval_ids),
            "by": self.by,
            "at": self.at,
        }
