"""The Markdown report of ``compare_mlflow.py``: rows with ratios and goals, then notes."""

from __future__ import annotations

from dataclasses import dataclass, field

from _servers import log


@dataclass(frozen=True)
class Row:
    """One line of the comparison table."""

    measure: str
    mlflow: list[str]  # one cell per MLflow configuration
    charter: str
    ratio: str
    goal: str
    met: str


@dataclass
class Report:
    """Rows, a second table (Charter alone on PostgreSQL) and notes."""

    mlflow_columns: list[str] = field(default_factory=lambda: ["MLflow"])
    rows: list[Row] = field(default_factory=list)
    pg_rows: list[tuple[str, ...]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def row(
        self,
        measure: str,
        mlflow: list[str],
        charter: str,
        ratio: str,
        goal: str,
        met: bool | None,
    ) -> None:
        """Add a comparison row; ``met`` None means no goal applies."""
        verdict = "—" if met is None else ("yes" if met else "**NO**")
        self.rows.append(Row(measure, mlflow or ["—"], charter, ratio, goal, verdict))
        log(f"row: {measure}: MLflow {' / '.join(mlflow)} | Charter {charter} | {ratio}")

    def pg_row(
        self, size: str, search: str, lookup: str, stage: str, growth: str, met: bool | None
    ) -> None:
        """Add a row to the PostgreSQL table (``met``: the 2x goal, at the largest size)."""
        verdict = "—" if met is None else ("yes" if met else "**NO**")
        cells = (size, search, lookup, stage, growth, verdict)
        self.pg_rows.append(cells)
        log(f"pg row: {' | '.join(cells)}")

    def note(self, text: str) -> None:
        """Add a note (also echoed to stderr as progress)."""
        self.notes.append(text)
        log(f"note: {text}")

    def render(self) -> str:
        """Both tables, then the notes."""
        ml = " | ".join(self.mlflow_columns)
        lines = [
            f"| measure | {ml} | Charter | ratio (vs best MLflow) | goal | met? |",
            "|---|" + "---:|" * len(self.mlflow_columns) + "---:|---:|---|:-:|",
        ]
        lines += [
            f"| {r.measure} | {' | '.join(r.mlflow)} | {r.charter} | {r.ratio} | {r.goal} "
            f"| {r.met} |"
            for r in self.rows
        ]
        if self.pg_rows:
            lines += [
                "",
                "| Charter on PostgreSQL | search versions of one model | read one version "
                "| read a stage (W3 read) | search p95 vs smallest size (goal ≤ 2x) | met? |",
                "|---|---:|---:|---:|---:|:-:|",
            ]
            lines += ["| " + " | ".join(cells) + " |" for cells in self.pg_rows]
        lines.append("")
        lines += [f"- {n}" for n in self.notes]
        return "\n".join(lines)


def fmt_rate(rate: float) -> str:
    """Versions per second."""
    return f"{rate:,.0f} versions/s"


def fmt_mib(nbytes: int) -> str:
    """Bytes as MiB."""
    return f"{nbytes / 2**20:,.0f} MiB"
