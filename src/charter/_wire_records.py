"""Wire forms of users, sign-offs, stage moves, tokens, webhooks and the ledger.

Part of :mod:`charter.wire` (which re-exports everything here); split only to
keep modules small.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from charter._audit_report import Problem, VerifyReport
from charter.domain.access import Principal, TokenInfo
from charter.domain.canonical import canonical_bytes, sha256_hex
from charter.domain.entities import (
    LedgerRecord,
)
from charter.domain.errors import IntegrityError
from charter.domain.monitoring import Observation
from charter.domain.stages import Approval, Role, StageMove, User
from charter.domain.webhooks import Attempt, Delivery, DeliveryStatus, Webhook
from charter.journal import InclusionProof
from charter.ledger import Checkpoint

_LEAF_PREFIX = b"\x00"


# -- users, sign-off, stages, tokens ----------------------------------------
def decode_user(data: Mapping[str, Any]) -> User:
    """A :class:`User` from its ``state()``."""
    return User(data["name"], Role(data["role"]), data["updated_by"], data["updated_at"])


def decode_approval(data: Mapping[str, Any]) -> Approval:
    """An :class:`Approval` from its ``state()``."""
    return Approval(**{f: data[f] for f in Approval.__dataclass_fields__})


def encode_move(move: StageMove) -> dict[str, Any]:
    """A stage move: its ledger ``state()`` plus the entry that recorded it."""
    return {**move.state(), "ledger_seq": move.ledger_seq}


def decode_move(data: Mapping[str, Any]) -> StageMove:
    """A :class:`StageMove` from :func:`encode_move` output."""
    return StageMove(
        data["model"], data["stage"], data["generation"], data["version"], data["action"],
        data["reason"], data["gate_decision_id"], tuple(data["approval_ids"]), data["by"],
        data["at"], data["ledger_seq"],
    )  # fmt: skip


def decode_token(data: Mapping[str, Any]) -> TokenInfo:
    """A :class:`TokenInfo` from its ``state()`` (never carries a secret)."""
    return TokenInfo(
        data["token_id"], data["user"], data["label"], data["created_by"], data["created_at"],
        data.get("expires_at"), data.get("revoked_by"), data.get("revoked_at"),
    )  # fmt: skip


def encode_principal(principal: Principal) -> dict[str, Any]:
    """Who a request acts as."""
    return {"user": principal.user, "role": principal.role.value, "token_id": principal.token_id}


def decode_principal(data: Mapping[str, Any]) -> Principal:
    """A :class:`Principal` from :func:`encode_principal` output."""
    return Principal(data["user"], Role(data["role"]), data["token_id"])


def decode_observation(data: Mapping[str, Any]) -> Observation:
    """An :class:`Observation` from its ``to_dict()``."""
    return Observation(**{f: data[f] for f in Observation.__dataclass_fields__})


def decode_webhook(data: Mapping[str, Any]) -> Webhook:
    """A :class:`Webhook` from its ``to_dict()`` (never carries the secret)."""
    return Webhook(
        data["id"], data["url"], tuple(data["events"]), data["created_by"], data["created_at"],
        data["active"],
    )  # fmt: skip


def decode_delivery(data: Mapping[str, Any]) -> Delivery:
    """A :class:`Delivery` from its ``to_dict()``."""
    return Delivery(
        id=data["id"], webhook_id=data["webhook_id"], ledger_seq=data["ledger_seq"],
        event_type=data["event_type"], delivery_id=data["delivery_id"],
        status=DeliveryStatus(data["status"]), attempts=data["attempts"],
        next_attempt_at=data["next_attempt_at"], last_status_code=data["last_status_code"],
        last_error=data["last_error"], updated_at=data["updated_at"],
        log=tuple(Attempt.from_dict(a) for a in data["log"]),
    )  # fmt: skip


# -- the ledger ---------------------------------------------------------------
def decode_entry(data: Mapping[str, Any]) -> LedgerRecord:
    """A :class:`LedgerRecord` from :func:`charter.views.entry_view` output.

    The stored body is canonical JSON, so re-encoding the entry reproduces its bytes
    exactly; the leaf hash is recomputed and must agree.

    Raises:
        IntegrityError: when the entry does not hash to the leaf hash it came with.
    """
    entry = {k: v for k, v in data.items() if k != "leaf_hash"}
    body = canonical_bytes(entry)
    leaf = bytes.fromhex(sha256_hex(_LEAF_PREFIX + body))
    if leaf.hex() != data["leaf_hash"]:
        raise IntegrityError(
            f"ledger entry {entry.get('seq')} does not match its leaf hash", seq=entry.get("seq")
        )
    return LedgerRecord(
        entry["seq"], entry["type"], entry["subject"], entry["actor"], entry["time"], body, leaf
    )


def decode_checkpoint(data: Mapping[str, Any] | None) -> Checkpoint | None:
    """A :class:`Checkpoint` from its ``to_dict()`` (None stays None)."""
    return None if data is None else Checkpoint.from_dict(data)


def decode_proof(data: Mapping[str, Any]) -> InclusionProof:
    """An :class:`InclusionProof` from its ``to_dict()``."""
    return InclusionProof(
        entry=dict(data["entry"]),
        leaf_index=data["leaf_index"],
        leaf_hash=data["leaf_hash"],
        tree_size=data["tree_size"],
        proof=list(data["inclusion_proof"]),
        checkpoint=Checkpoint.from_dict(data["checkpoint"]),
    )


def decode_report(data: Mapping[str, Any]) -> VerifyReport:
    """A :class:`VerifyReport` from its ``to_dict()``."""
    return VerifyReport(
        entries=data["entries"],
        checkpoints=data["checkpoints"],
        unsigned_entries=data["unsigned_entries"],
        subjects=data["subjects"],
        blobs=data["blobs"],
        problems=tuple(Problem(p["kind"], p["where"], p["message"]) for p in data["problems"]),
    )
