"""The plain request-and-decode methods of :class:`charter.client.RemoteRegistry`.

One method per service verb, each one request: the server runs the use case
as the token's user, :mod:`charter.wire` turns the answer into domain values.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from charter._audit_report import VerifyReport
from charter._client_http import Http, path_of
from charter._search import Page
from charter._trends import Blame
from charter.domain.access import Principal, TokenInfo, split_token
from charter.domain.cards import CardRecord
from charter.domain.entities import FileRecord, LedgerRecord, Model, Version
from charter.domain.folding import EffectiveProfile, ProfileRecord
from charter.domain.gate import GateDecision
from charter.domain.lineage import Lineage, VersionDiff
from charter.domain.monitoring import Observation
from charter.domain.policy import Policy
from charter.domain.profile import ProfileDocument
from charter.domain.stages import Approval, StageMove, User
from charter.domain.trends import TrendPoint
from charter.journal import InclusionProof
from charter.ledger import Checkpoint
from charter.wire import (
    decode_approval,
    decode_blame,
    decode_card,
    decode_checkpoint,
    decode_diff,
    decode_entry,
    decode_file,
    decode_lineage,
    decode_list,
    decode_model,
    decode_move,
    decode_observation,
    decode_principal,
    decode_profile,
    decode_proof,
    decode_record,
    decode_report,
    decode_token,
    decode_trend_point,
    decode_user,
    decode_version,
)

__all__ = ["RemoteReads"]

_LEDGER_PAGE = 1000


def _v(model: str, version: str, *rest: str) -> str:
    return path_of("models", model, "versions", version, *rest)


class RemoteReads:
    """Request-per-verb methods over ``self._http``."""

    _http: Http

    def whoami(self) -> Principal:
        """Who the token acts as, with their current role."""
        return decode_principal(self._http.call("GET", "/me"))

    def authenticate(self, *, token: str) -> Principal:
        """The principal ``token`` stands for (asked of the server).

        Raises:
            UnauthorizedError: malformed, unknown, expired or revoked token.
        """
        split_token(token)  # a malformed one never leaves this process
        headers = {"Authorization": f"Bearer {token.strip()}"}
        return decode_principal(self._http.send("GET", "/me", headers=headers).json())

    # -- models, versions ------------------------------------------------------
    def get_model(self, *, name: str) -> Model:
        """One model."""
        return decode_model(self._http.call("GET", path_of("models", name)))

    def get_version(self, *, model: str, version: str) -> Version:
        """``model@version``."""
        return decode_version(self._http.call("GET", _v(model, version)))

    def files(self, *, model: str, version: str) -> list[FileRecord]:
        """The manifest of ``model@version``."""
        return decode_list(self._http.call("GET", _v(model, version, "files")), decode_file)

    def publish(self, *, model: str, version: str) -> Version:
        """Freeze a draft."""
        return decode_version(self._http.call("POST", _v(model, version, "publish")))

    def delete_draft(self, *, model: str, version: str) -> None:
        """Delete a draft."""
        self._http.send("DELETE", _v(model, version))

    def set_tags(self, *, model: str, version: str, tags: Mapping[str, str | None]) -> Version:
        """Set (value) or remove (None) tags."""
        body = {"tags": dict(tags)}
        return decode_version(self._http.call("PATCH", _v(model, version, "tags"), json=body))

    def search_versions(
        self,
        *,
        model: str | None = None,
        state: str | None = None,
        risk_tier: str | None = None,
        stage: str | None = None,
        tag: str | None = None,
        cursor: str | None = None,
        limit: int = 100,
        newest_first: bool = False,
    ) -> Page[Version]:
        """A page of versions matching every filter."""
        params = {"model": model, "state": state, "risk_tier": risk_tier, "stage": stage,
                  "tag": tag, "cursor": cursor, "limit": limit,
                  "newest_first": "true" if newest_first else None}  # fmt: skip
        data = self._http.call("GET", "/versions", params=params)
        return Page(tuple(decode_list(data["items"], decode_version)), data["next_cursor"])

    def deprecate(
        self, *, model: str, version: str, reason: str, status: str = "deprecated"
    ) -> None:
        """Mark a version deprecated or archived."""
        body = {"reason": reason, "status": status}
        self._http.send("POST", _v(model, version, "deprecate"), json=body)

    # -- lineage and trends ----------------------------------------------------
    def lineage(self, *, model: str, version: str) -> Lineage:
        """Ancestors and descendants."""
        return decode_lineage(self._http.call("GET", _v(model, version, "lineage")))

    def versions_using_dataset(self, *, digest: str) -> list[Version]:
        """Every version that declared a dataset with ``digest``."""
        found = self._http.call("GET", path_of("datasets", digest, "versions"))
        return decode_list(found, decode_version)

    def diff(self, *, model: str, a: str, b: str, model_b: str | None = None) -> VersionDiff:
        """Compare two versions."""
        params = {"against": b, "against_model": model_b}
        return decode_diff(self._http.call("GET", _v(model, a, "diff"), params=params))

    def trend(
        self, *, model: str, metric: str, slice_: str | None = None, version: str | None = None
    ) -> list[TrendPoint]:
        """A metric's value per version."""
        params = {"metric": metric, "slice": slice_, "version": version}
        found = self._http.call("GET", path_of("models", model, "trend"), params=params)
        return decode_list(found, decode_trend_point)

    def blame(
        self,
        *,
        model: str,
        version: str,
        metric: str,
        slice_: str | None = None,
        tolerance: float = 0.0,
    ) -> Blame:
        """Where ``metric`` first regressed along the ancestry."""
        params = {"metric": metric, "slice": slice_, "tolerance": tolerance}
        return decode_blame(self._http.call("GET", _v(model, version, "blame"), params=params))

    # -- profiles ----------------------------------------------------------------
    def profile(
        self, *, model: str, version: str, as_of: str | None = None, baseline: bool = False
    ) -> EffectiveProfile:
        """The effective profile, now or as of a time."""
        params = {"as_of": as_of, "baseline": "true" if baseline else None}
        return decode_profile(self._http.call("GET", _v(model, version, "profile"), params=params))

    def profile_records(self, *, model: str, version: str) -> list[ProfileRecord]:
        """Every stored entry of a version."""
        found = self._http.call("GET", _v(model, version, "profile", "records"))
        return decode_list(found, decode_record)

    def profile_history(self, *, model: str, version: str) -> list[dict[str, Any]]:
        """Every change to the profile."""
        found: list[dict[str, Any]] = self._http.call(
            "GET", _v(model, version, "profile", "history")
        )
        return found

    def observe(
        self, *, model: str, version: str, document: ProfileDocument, reason: str
    ) -> Observation:
        """Record production observations."""
        body = {"document": document.model_dump(mode="json", by_alias=True), "reason": reason}
        found = self._http.call("POST", _v(model, version, "observations"), json=body)
        return decode_observation(found)

    def at_risk(self, *, model: str | None = None) -> list[dict[str, Any]]:
        """Versions flagged at risk."""
        found: list[dict[str, Any]] = self._http.call("GET", "/at-risk", params={"model": model})
        return found

    # -- cards, exports, evaluations -------------------------------------------
    def card_status(
        self, *, model: str | None = None, version: str | None = None
    ) -> list[CardRecord]:
        """The latest card per version and format."""
        params = {"model": model, "version": version}
        return decode_list(self._http.call("GET", "/cards", params=params), decode_card)

    def render_stale(self) -> list[CardRecord]:
        """Re-render every stale card."""
        return decode_list(self._http.call("POST", "/cards/render-stale"), decode_card)

    def export(
        self, *, model: str, version: str, fmt: str, sign: bool = False
    ) -> dict[str, Any] | list[dict[str, Any]]:
        """CycloneDX BOM or in-toto statements (signed by the server's key)."""
        params = {"format": fmt, "sign": "true" if sign else None}
        found: dict[str, Any] | list[dict[str, Any]] = self._http.call(
            "GET", _v(model, version, "export"), params=params
        )
        return found

    def evaluation_runs(self, *, model: str, version: str) -> list[dict[str, Any]]:
        """Every recorded evaluation run of a version."""
        found: list[dict[str, Any]] = self._http.call("GET", _v(model, version, "evaluations"))
        return found

    def set_model_target(
        self,
        *,
        model: str,
        target: Mapping[str, Any],
        packs: list[str] | None = None,
        auto: bool = True,
        system_prompt: str | None = None,
    ) -> dict[str, Any]:
        """Declare a model's red-team target."""
        body = {"target": dict(target), "packs": packs, "auto": auto,
                "system_prompt": system_prompt}  # fmt: skip
        found: dict[str, Any] = self._http.call(
            "PUT", path_of("models", model, "target"), json=body
        )
        return found

    def model_target(self, *, model: str) -> dict[str, Any] | None:
        """The red-team target a model declared, or None."""
        found: dict[str, Any] | None = self._http.call("GET", path_of("models", model, "target"))
        return found

    # -- users, tokens, policies, gates ------------------------------------------
    def add_user(self, *, name: str, role: str) -> User:
        """Add a user or change their role (admin)."""
        return decode_user(self._http.call("PUT", path_of("users", name), json={"role": role}))

    def list_users(self) -> list[User]:
        """Every registry user."""
        return decode_list(self._http.call("GET", "/users"), decode_user)

    def create_token(
        self, *, user: str, expires: str | None = None, label: str = ""
    ) -> tuple[str, TokenInfo]:
        """Create a bearer token (shown once)."""
        body = {"user": user, "expires": expires, "label": label}
        data = self._http.call("POST", "/tokens", json=body)
        return str(data["token"]), decode_token(data["info"])

    def list_tokens(self, *, user: str | None = None) -> list[TokenInfo]:
        """Tokens (yours; anyone's for an admin)."""
        return decode_list(self._http.call("GET", "/tokens", params={"user": user}), decode_token)

    def revoke_token(self, *, token_id: str) -> TokenInfo:
        """Revoke a token."""
        return decode_token(self._http.call("DELETE", path_of("tokens", token_id)))

    def set_policy(self, *, text: str, model: str | None = None) -> str:
        """Validate and store a policy (admin); its digest."""
        return str(self._http.call("PUT", "/policy", json={"text": text, "model": model})["digest"])

    def policy(self, *, model: str | None = None) -> tuple[str, Policy, str]:
        """The policy in force: (digest, policy, where it came from)."""
        data = self._http.call("GET", "/policy", params={"model": model})
        return str(data["digest"]), Policy.model_validate(data["policy"]), str(data["scope"])

    def validate_policy(self, *, text: str) -> list[str]:
        """Check a policy without storing it; its warnings."""
        data = self._http.call("POST", "/policy/validate", json={"text": text})
        return [str(w) for w in data["warnings"]]

    def known_metrics(self) -> set[str]:
        """Metric names a policy may use."""
        return set(self._http.call("GET", "/known-metrics"))

    def gate(self, *, model: str, version: str, stage: str) -> tuple[int, GateDecision]:
        """Evaluate and record the gate for ``stage``."""
        data = self._http.call("POST", _v(model, version, "gate"), json={"stage": stage})
        return int(data["id"]), GateDecision.from_dict(data["decision"])

    def approve(
        self, *, model: str, version: str, stage: str, comment: str, decision: str = "approve"
    ) -> Approval:
        """Approve or reject the version's current evidence."""
        body = {"stage": stage, "comment": comment, "decision": decision}
        return decode_approval(self._http.call("POST", _v(model, version, "approvals"), json=body))

    def approvals(self, *, model: str | None = None) -> list[Approval]:
        """Every sign-off (of one model)."""
        found = self._http.call("GET", "/approvals", params={"model": model})
        return decode_list(found, decode_approval)

    def pending_approvals(self) -> list[dict[str, Any]]:
        """Versions whose latest gate lacks approvals."""
        found: list[dict[str, Any]] = self._http.call("GET", "/approvals/pending")
        return found

    # -- stages --------------------------------------------------------------------
    def promote(
        self,
        *,
        model: str,
        version: str,
        stage: str,
        force: bool = False,
        reason: str | None = None,
    ) -> StageMove:
        """Gate, then move ``stage``."""
        body = {"stage": stage, "force": force, "reason": reason}
        return decode_move(self._http.call("POST", _v(model, version, "promote"), json=body))

    def rollback(
        self, *, model: str, stage: str, reason: str, to: str | None = None, force: bool = False
    ) -> StageMove:
        """Move ``stage`` back."""
        body = {"reason": reason, "to": to, "force": force}
        where = path_of("models", model, "stages", stage, "rollback")
        return decode_move(self._http.call("POST", where, json=body))

    def stage_history(self, *, model: str, stage: str | None = None) -> list[StageMove]:
        """Every move of the model's stages."""
        where = path_of("models", model, "stages", "history")
        return decode_list(self._http.call("GET", where, params={"stage": stage}), decode_move)

    def stages(self, *, model: str | None = None) -> list[dict[str, Any]]:
        """Current stage pointers."""
        found: list[dict[str, Any]] = self._http.call("GET", "/stages", params={"model": model})
        return found

    def stage_at(self, *, model: str, stage: str, time: str) -> StageMove | None:
        """Who held ``stage`` at ``time``."""
        where = path_of("models", model, "stages", stage, "at")
        found = self._http.call("GET", where, params={"time": time})
        return None if found is None else decode_move(found)

    # -- the ledger ------------------------------------------------------------------
    def audit_log(self, *, start: int = 0, limit: int | None = None) -> list[LedgerRecord]:
        """Ledger entries from ``start`` (at most ``limit``), fetched a page at a time."""
        out: list[LedgerRecord] = []
        while limit is None or len(out) < limit:
            size = _LEDGER_PAGE if limit is None else min(_LEDGER_PAGE, limit - len(out))
            params = {"start": start + len(out), "limit": size}
            page = self._http.call("GET", "/ledger/entries", params=params)
            out.extend(decode_entry(e) for e in page)
            if len(page) < size:
                break
        return out

    def checkpoint(self, *, sign: bool = True) -> Checkpoint | None:
        """The latest signed checkpoint (signing one first if the log grew)."""
        if sign:
            return decode_checkpoint(self._http.call("POST", "/ledger/checkpoints"))
        return decode_checkpoint(self._http.call("GET", "/ledger/checkpoints/latest"))

    def proof(self, *, seq: int) -> InclusionProof:
        """Inclusion proof of entry ``seq``."""
        return decode_proof(self._http.call("GET", path_of("ledger", "entries", str(seq), "proof")))

    def public_key_pem(self) -> bytes:
        """The PEM public key that verifies checkpoints."""
        return self._http.send("GET", "/ledger/public-key").content

    def verify(self, *, artifacts: bool = False) -> VerifyReport:
        """Full verification, run by the server."""
        found = self._http.call("POST", "/ledger/verify", json={"artifacts": artifacts})
        return decode_report(found)

    def verify_version(self, *, model: str, version: str) -> VerifyReport:
        """Re-hash a version's stored files (on the server)."""
        return decode_report(self._http.call("GET", _v(model, version, "verify")))
