"""Monitoring use cases: production observations, and versions flagged at risk.

Observations (live toxicity rate, drift, error rate per slice…) are amendments
whose entries carry provenance source ``monitoring``. Recording them re-judges
the version against the policy of every stage it holds; when the evidence now
fails (see :mod:`charter.domain.monitoring`), the version is flagged at risk
(``version.at_risk``), and the flag clears (``version.risk_cleared``) once a
later observation passes. Mixed into :class:`charter.service.Registry`.
"""

from __future__ import annotations

from typing import Any, Protocol

from charter._gates import _Host
from charter.domain.errors import NotFoundError
from charter.domain.folding import AmendmentRecord
from charter.domain.monitoring import Observation, risk_findings
from charter.domain.profile import ProfileDocument
from charter.journal import now

__all__ = ["MonitoringUseCases"]

SOURCE = "monitoring"


def _as_monitoring(document: ProfileDocument) -> ProfileDocument:
    sections: dict[str, Any] = {}
    for name in ("evaluations", "bias_audits", "constraints", "adversarial"):
        sections[name] = [
            e.model_copy(update={"provenance": e.provenance.model_copy(update={"source": SOURCE})})
            for e in getattr(document, name)
        ]
    return document.model_copy(update=sections)


class _MonitorHost(_Host, Protocol):
    def amend_profile(
        self, *, model: str, version: str, document: ProfileDocument, reason: str
    ) -> AmendmentRecord: ...

    def stages(self, *, model: str | None = None) -> list[dict[str, Any]]: ...


class MonitoringUseCases:
    """Production observations and at-risk flags."""

    def observe(
        self: _MonitorHost, *, model: str, version: str, document: ProfileDocument, reason: str
    ) -> Observation:
        """Record production observations and re-judge the stages the version holds.

        Args:
            model: the model name.
            version: the observed (published) version.
            document: the observations, as profile entries (``--metrics`` or ``--profile``).
            reason: where they come from (``"prod monitor, week 12"``).

        Returns:
            The amendment id, whether the version is (now) at risk, and the failing
            evidence per stage.

        Raises:
            InvalidInputError: a draft version, an empty reason or an empty document.
            NotFoundError: unknown model or version.
        """
        amendment = self.amend_profile(
            model=model, version=version, document=_as_monitoring(document), reason=reason
        )
        held = [p["stage"] for p in self.stages(model=model) if p["version"] == version]
        findings: dict[str, list[dict[str, Any]]] = {}
        decisions: dict[str, int] = {}
        for stage in sorted(held):
            decision_id, decision = self.gate(model=model, version=version, stage=stage)
            decisions[stage] = decision_id
            failing = risk_findings(decision)
            if failing:
                findings[stage] = [f.to_dict() for f in failing]
        at_risk = bool(findings)
        changed = _set_flag(self, model, version, at_risk, findings, amendment.id)
        return Observation(
            ref=f"{model}@{version}", amendment_id=amendment.id, at_risk=at_risk,
            changed=changed, findings=findings, decisions=decisions,
        )  # fmt: skip

    def at_risk(self: _Host, *, model: str | None = None) -> list[dict[str, Any]]:
        """Versions currently flagged at risk (of one model, or all), with their findings."""
        with self.store.read() as tx:
            flags = tx.current_flags()
            # Only the flagged versions' names: pages call this on every view.
            refs = {vid: tx.version_ref(vid) for vid, f in flags.items() if f["at_risk"]}
        out = []
        for vid, ref in sorted(refs.items()):
            flag = flags[vid]
            if model is None or ref.split("@")[0] == model:
                out.append({"ref": ref, "since": flag["at"], "by": flag["by"], **flag["document"]})
        return out


def _set_flag(
    host: _Host,
    model: str,
    version: str,
    at_risk: bool,
    findings: dict[str, list[dict[str, Any]]],
    amendment_id: str,
) -> bool:
    """Raise or clear the flag when it changes; False when it already said so."""
    at = now()
    with host.store.write() as tx:
        tx.lock_ledger()
        vid = tx.version_id(model, version)
        if vid is None:
            raise NotFoundError(f"unknown version {model}@{version}")
        current = tx.current_flags(vid).get(vid)
        if bool(current and current["at_risk"]) == at_risk:
            return False
        document = {"findings": findings, "amendment": amendment_id}
        flag: dict[str, Any] = {"at_risk": at_risk, "document": document, "by": host.user, "at": at}
        kind = "version.at_risk" if at_risk else "version.risk_cleared"
        record = host._record(tx, kind, f"version:{model}@{version}", {"flag": flag})
        tx.insert_flag(vid, ledger_seq=record.seq, **flag)
    return True
