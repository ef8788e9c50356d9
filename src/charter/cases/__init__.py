"""The three case studies behind ``make run``, driven through the real CLI.

1. :mod:`~charter.cases.credit` — a proxy feature fails the four-fifths rule.
2. :mod:`~charter.cases.heart` — a better-overall retrain regresses for women;
   monitoring flags it, rollback restores the previous version.
3. :mod:`~charter.cases.llm` — red-team, guardrails, a retroactive sweep, on a
   real small LLM served locally.

:func:`run` runs them on one registry home and returns a :class:`Summary`. A
second run on the same home reuses every case recorded in full: it runs no step,
writes nothing to the ledger, and takes seconds (the model server is not started).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from charter.cases._common import Case, CaseError, Outcome

__all__ = ["CASES", "CaseError", "Outcome", "Summary", "run"]

CASES = ("credit", "heart", "llm")


@dataclass
class Summary:
    """What the cases showed, and how long each took."""

    home: Path
    outcomes: list[Outcome] = field(default_factory=list)
    seconds: float = 0.0
    verified: bool = False

    def text(self) -> str:
        """A short report for the terminal."""
        lines = [f"\nCharter case studies on {self.home} ({self.seconds:.0f} s)"]
        for outcome in self.outcomes:
            reused = ", reused" if outcome.skipped else ""
            lines.append(f"\n[{outcome.name}] {outcome.seconds:.1f} s{reused}")
            lines += [f"  - {line}" for line in outcome.lines]
        lines.append(f"\nledger verified: {'yes' if self.verified else 'NO'}")
        return "\n".join(lines)


def run(
    home: Path | str,
    *,
    cases: Sequence[str] = CASES,
    max_probes: int = 60,
    llm_port: int = 0,
) -> Summary:
    """Run the case studies on ``home`` (created if missing).

    Args:
        home: the registry home.
        cases: which cases, in order (``credit``, ``heart``, ``llm``).
        max_probes: probes per red-team campaign of the LLM case (a stratified subset).
        llm_port: where the LLM case serves its model (0: a free loopback port).

    Returns:
        The summary; ``verified`` is the result of ``charter audit verify``.

    Raises:
        CaseError: a case did not show what it is about.
    """
    from charter.cases import credit, heart, llm

    started = time.perf_counter()
    root = Path(home)
    summary = Summary(home=root.resolve())
    setup = Case(root, "setup")
    if not (root / "registry.db").exists():
        setup.run("init")
    setup.ensure_users()
    for name in cases:
        case = Case(root, name)
        print(f"\n===== case: {name} =====", flush=True)
        with case.timed() as outcome:
            if name == "credit":
                credit.run(case)
            elif name == "heart":
                heart.run(case)
            elif name == "llm":
                llm.run(case, max_probes=max_probes, port=llm_port)
            else:
                raise CaseError(f"unknown case {name!r}; known: {', '.join(CASES)}")
        summary.outcomes.append(outcome)
    if not setup.checkpointed():  # a reused home already has its checkpoint: sign none
        setup.run("audit", "checkpoint")
    summary.verified = setup.run("audit", "verify", expect=(0, 1)) == 0
    summary.seconds = time.perf_counter() - started
    return summary
