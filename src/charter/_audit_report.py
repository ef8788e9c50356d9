"""What ``audit verify`` reports: problems, and the report that carries them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["MAX_PER_KIND", "Problem", "Problems", "VerifyReport"]

MAX_PER_KIND = 50
"""Problems listed per kind; the rest are counted in one summary problem."""


@dataclass(frozen=True)
class Problem:
    """One discrepancy: ``kind`` (ledger, checkpoint, state, artifact), where, what."""

    kind: str
    where: str
    message: str

    def to_dict(self) -> dict[str, str]:
        """JSON-ready form."""
        return {"kind": self.kind, "where": self.where, "message": self.message}


@dataclass(frozen=True)
class VerifyReport:
    """Outcome of a verification run."""

    entries: int = 0
    checkpoints: int = 0
    unsigned_entries: int = 0
    subjects: int = 0
    blobs: int = 0
    problems: tuple[Problem, ...] = ()

    @property
    def ok(self) -> bool:
        """True when no problem was found."""
        return not self.problems

    def extend(self, other: VerifyReport) -> VerifyReport:
        """Combine two reports (e.g. ledger and artifacts)."""
        return VerifyReport(
            entries=max(self.entries, other.entries),
            checkpoints=max(self.checkpoints, other.checkpoints),
            unsigned_entries=max(self.unsigned_entries, other.unsigned_entries),
            subjects=max(self.subjects, other.subjects),
            blobs=self.blobs + other.blobs,
            problems=self.problems + other.problems,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "ok": self.ok,
            "entries": self.entries,
            "checkpoints": self.checkpoints,
            "unsigned_entries": self.unsigned_entries,
            "subjects": self.subjects,
            "blobs": self.blobs,
            "problems": [p.to_dict() for p in self.problems],
        }


class Problems:
    """Collects problems, keeping at most :data:`MAX_PER_KIND` of each kind."""

    def __init__(self) -> None:
        self.items: list[Problem] = []
        self.counts: dict[str, int] = {}

    def add(self, kind: str, where: str, message: str) -> None:
        """Record one problem."""
        self.counts[kind] = self.counts.get(kind, 0) + 1
        if self.counts[kind] <= MAX_PER_KIND:
            self.items.append(Problem(kind, where, message))

    def result(self) -> tuple[Problem, ...]:
        """The listed problems, plus one "N more" line per kind over the limit."""
        extra = [
            Problem(kind, "…", f"{n - MAX_PER_KIND} more {kind} problems not listed")
            for kind, n in self.counts.items()
            if n > MAX_PER_KIND
        ]
        return tuple(self.items + extra)
