"""Measuring the built-in detectors on labelled examples: precision and recall.

``python -m charter.evaluation.detectors --measure [--verbose]`` prints a Markdown
table. Sources: Charter's own hand-labelled set (``packs/labelled/detectors.yaml``)
and, when the ``pyrit`` wheel is installed, its human-labelled refusal CSV.
"""

from __future__ import annotations

import argparse
import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import yaml

from charter.evaluation.detectors import Detector, builtin_detectors
from charter.evaluation.packs import Probe

__all__ = ["Score", "labelled_examples", "main", "measure", "pyrit_refusal_examples"]


@dataclass
class Score:
    """Confusion counts of one detector on one labelled set."""

    detector: str
    source: str
    tp: int = 0
    fp: int = 0
    tn: int = 0
    fn: int = 0
    errors: list[tuple[bool, str]] = field(default_factory=list)

    @property
    def precision(self) -> float:
        """TP / (TP + FP); 1.0 when nothing was flagged."""
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        """TP / (TP + FN); 1.0 when there were no positives."""
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def total(self) -> int:
        """Examples scored."""
        return self.tp + self.fp + self.tn + self.fn


@dataclass(frozen=True)
class Example:
    """One labelled example (``label``: the detector should fire)."""

    detector: str
    label: bool
    response: str
    prompt: str = ""
    secrets: dict[str, str] = field(default_factory=dict)


def labelled_examples(split: str = "examples") -> list[Example]:
    """Charter's hand-labelled examples for the four built-in detectors.

    Args:
        split: ``examples`` (the development set the detectors were tuned on) or
            ``holdout`` (written after tuning, measured once).
    """
    path = resources.files("charter.evaluation") / "packs" / "labelled" / "detectors.yaml"
    data: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    secrets = {"canary": data["canary"]["secret"], "pii_records": data["pii"]["records"]}
    out = []
    for name in ("canary", "pii", "toxicity", "refusal"):
        for item in data[name].get(split, []):
            out.append(
                Example(
                    name, bool(item["label"]), item["response"], item.get("prompt", ""), secrets
                )
            )
    return out


def _refusal_rows(text: str) -> Iterator[tuple[str, bool]]:
    lines = [line for line in text.splitlines(keepends=True) if not line.startswith("#")]
    reader = csv.DictReader(io.StringIO("".join(lines)))
    columns = reader.fieldnames or []
    response = next((c for c in columns if "response" in c.lower()), None)
    label = next((c for c in columns if c.lower().startswith("human_score")), None)
    if response is None or label is None:
        return
    for row in reader:
        value = (row.get(label) or "").strip().lower()
        if value in ("1", "1.0", "true", "0", "0.0", "false"):
            yield row[response] or "", value in ("1", "1.0", "true")


def pyrit_refusal_examples() -> list[Example] | None:
    """The human-labelled refusal CSV shipped in the ``pyrit`` wheel, or None if absent.

    Rows labelled 1/true are refusals. The file is read by path; pyrit is not imported.
    """
    from charter.evaluation._corpora import package_dir

    root = package_dir("pyrit")
    if root is None:
        return None
    files = sorted(
        p for p in (root / "datasets").rglob("*refusal*.csv") if "scoring_results" not in p.name
    )
    preferred = [p for p in files if p.name == "refusal.csv"] or files
    if not preferred:
        return None
    rows = _refusal_rows(preferred[0].read_text(encoding="utf-8"))
    return [Example("refusal", label, response) for response, label in rows]


def measure(examples: Iterable[Example], source: str) -> list[Score]:
    """Run each example through its detector and count agreements.

    A refusal example is judged as a benign probe would be (hit = refused), so the
    score measures refusal detection itself.
    """
    detectors: dict[str, Detector] = builtin_detectors()
    scores: dict[str, Score] = {}
    for ex in examples:
        probe = Probe("x", "measure", ex.prompt or "x", ex.detector, benign=True)
        hit = (
            detectors[ex.detector]
            .detect(prompt=ex.prompt, response=ex.response, probe=probe, secrets=ex.secrets)
            .hit
        )
        score = scores.setdefault(ex.detector, Score(ex.detector, source))
        if hit and ex.label:
            score.tp += 1
        elif hit:
            score.fp += 1
            score.errors.append((False, ex.response))
        elif ex.label:
            score.fn += 1
            score.errors.append((True, ex.response))
        else:
            score.tn += 1
    return list(scores.values())


def table(scores: Iterable[Score]) -> str:
    """A Markdown table of the scores."""
    rows = [
        "| detector | labelled set | examples | TP | FP | TN | FN | precision | recall |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in scores:
        rows.append(
            f"| {s.detector} | {s.source} | {s.total} | {s.tp} | {s.fp} | {s.tn} | {s.fn} "
            f"| {s.precision:.2f} | {s.recall:.2f} |"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> None:
    """Command-line entry: ``python -m charter.evaluation.detectors --measure``."""
    parser = argparse.ArgumentParser(prog="python -m charter.evaluation.detectors")
    parser.add_argument("--measure", action="store_true", help="print precision/recall")
    parser.add_argument("--verbose", action="store_true", help="list misjudged examples")
    args = parser.parse_args(argv)
    if not args.measure:
        parser.print_help()
        return
    scores = measure(labelled_examples("examples"), "charter dev (tuned on)")
    scores += measure(labelled_examples("holdout"), "charter holdout")
    pyrit = pyrit_refusal_examples()
    if pyrit:
        scores += measure(pyrit, "pyrit refusal.csv (human)")
    print(table(scores))
    if pyrit is None:
        print("\n(pyrit not installed: its human-labelled refusal set was skipped)")
    if args.verbose:
        for s in scores:
            for expected, text in s.errors:
                kind = "missed" if expected else "false alarm"
                print(f"- {s.detector} {kind}: {text[:120]!r}")
