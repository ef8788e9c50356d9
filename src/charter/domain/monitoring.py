"""Production monitoring: which gate findings put a deployed version at risk.

A version already in a stage is re-judged whenever production observations
amend its profile. Only findings about the *evidence* count: the amendment
itself changes the profile digest, which restarts the approval round and can
make the card stale — those sign-off findings say "review again", not "this
model misbehaves", so they never flag a version.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from charter.domain.gate import Finding, GateDecision

__all__ = ["Observation", "risk_findings"]

# The last segment of the policy path of a sign-off rule (``rules.production.approvals``).
_SIGN_OFF = frozenset({"approvals", "card"})


def risk_findings(decision: GateDecision) -> tuple[Finding, ...]:
    """The failed findings of ``decision`` that concern evidence, not sign-off."""
    return tuple(
        f for f in decision.failures if f.rule.split(":", 1)[0].rsplit(".", 1)[-1] not in _SIGN_OFF
    )


@dataclass(frozen=True)
class Observation:
    """The outcome of recording production observations for a version.

    Attributes:
        ref: ``name@version`` observed.
        amendment_id: the amendment that recorded the observations.
        at_risk: whether the version is now flagged at risk.
        changed: whether this observation raised or cleared the flag.
        findings: per stage the version is in, the failed evidence findings.
        decisions: per stage, the id of the gate decision recorded.
    """

    ref: str
    amendment_id: str
    at_risk: bool
    changed: bool
    findings: dict[str, list[dict[str, Any]]]
    decisions: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "ref": self.ref,
            "amendment_id": self.amendment_id,
            "at_risk": self.at_risk,
            "changed": self.changed,
            "findings": self.findings,
            "decisions": self.decisions,
        }
