"""Importing red-team results from other tools into profile entries.

- :func:`import_garak` reads a garak ``*.report.jsonl``. Per-output verdicts come
  from ``attempt`` lines with ``status: 2`` (evaluated): an output is a hit when any
  detector scored it 0.5 or more (garak's default threshold). Reports without
  evaluated attempts fall back to the ``eval`` summary lines (per probe, the
  detector with the most failures). The category is the probe module
  (``dan.Dan_11_0`` -> ``dan``).
- :func:`import_promptfoo` reads a promptfoo ``--output results.json``. A result is a
  hit when the test failed (``success: false``; promptfoo red-team tests pass when
  the target resists); results that errored (``failureReason: 2``) are not attempts.
  The category is the red-team plugin (``metadata.pluginId``), the probe is
  ``plugin/strategy``.

Both return a :class:`ProfileDocument` with one adversarial entry (up to 20 hit
transcripts), ready for ``profile add`` or an amendment.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from charter.domain.errors import InvalidInputError
from charter.domain.profile import (
    AdversarialEntry,
    PackRef,
    ProbeResult,
    ProfileDocument,
    Provenance,
    Transcript,
)
from charter.evaluation._text import truncate

__all__ = ["import_garak", "import_promptfoo"]

GARAK_THRESHOLD = 0.5
_TEXT, _LONG, _SAMPLES = 500, 4000, 20


def _read(path: str | Path) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInputError(f"cannot read {path}: {exc.strerror}", path=str(path)) from None


class _Tally:
    """Attempts and hits per probe, plus sample transcripts."""

    def __init__(self) -> None:
        self.probes: dict[str, tuple[str, list[int]]] = {}
        self.samples: list[Transcript] = []

    def add(self, probe: str, category: str, attempts: int, hits: int) -> None:
        _, counts = self.probes.setdefault(probe, (category, [0, 0]))
        counts[0] += attempts
        counts[1] += hits

    def sample(self, probe: str, category: str, prompt: str, response: str, detector: str) -> None:
        if len(self.samples) < _SAMPLES:
            self.samples.append(
                Transcript(
                    probe=truncate(probe, _TEXT),
                    category=truncate(category, _TEXT),
                    prompt=truncate(prompt, _LONG),
                    response=truncate(response, _LONG),
                    detector=detector or None,
                )
            )

    def entry(self, *, tool: str, version: str, target: str) -> ProfileDocument:
        probes = [
            ProbeResult(
                probe=truncate(name, _TEXT), category=truncate(cat, _TEXT), attempts=a, hits=h
            )
            for name, (cat, (a, h)) in sorted(self.probes.items())
        ]
        entry = AdversarialEntry(
            pack=PackRef(name=tool, version=truncate(version or "unknown", _TEXT)),
            target=truncate(target or f"{tool}:unknown", _TEXT),
            attempts=sum(p.attempts for p in probes),
            hits=sum(p.hits for p in probes),
            probes=probes,
            samples=self.samples,
            provenance=Provenance(source=f"import:{tool}"),
        )
        return ProfileDocument(adversarial=[entry])


def _jsonl(text: str, source: str) -> list[dict[str, Any]]:
    lines = [line for line in text.splitlines() if line.strip()]
    rows = []
    for number, line in enumerate(lines, 1):
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            if number == len(lines):  # a run interrupted mid-write leaves a partial last line
                break
            raise InvalidInputError(f"{source}: line {number} is not JSON", line=number) from None
        if isinstance(row, dict):
            rows.append(row)
    return rows


def _garak_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        turns = value.get("turns")
        if isinstance(turns, list) and turns:
            users = [t for t in turns if isinstance(t, Mapping) and t.get("role") == "user"]
            return _garak_text((users or turns)[-1].get("content"))
        return str(value.get("text") or "")
    return ""


def _garak_attempts(tally: _Tally, rows: Iterable[dict[str, Any]]) -> bool:
    found = False
    for row in rows:
        if row.get("entry_type") != "attempt" or row.get("status") != 2:
            continue
        probe = str(row.get("probe_classname") or "unknown.unknown")
        category = probe.split(".", 1)[0]
        outputs = row.get("outputs") or []
        results: Mapping[str, list[Any]] = row.get("detector_results") or {}
        attempts = hits = 0
        for i, output in enumerate(outputs):
            scores = {
                d: s[i]
                for d, s in results.items()
                if isinstance(s, list) and i < len(s) and isinstance(s[i], int | float)
            }
            if not scores:
                continue
            attempts += 1
            worst = max(scores, key=lambda d: scores[d])
            if scores[worst] >= GARAK_THRESHOLD:
                hits += 1
                tally.sample(
                    probe, category, _garak_text(row.get("prompt")), _garak_text(output), worst
                )
        if attempts:
            found = True
            tally.add(probe, category, attempts, hits)
    return found


def _garak_evals(tally: _Tally, rows: Iterable[dict[str, Any]]) -> None:
    worst: dict[str, tuple[int, int]] = {}
    for row in rows:
        if row.get("entry_type") != "eval" or not row.get("probe"):
            continue
        passed = int(row.get("passed") or 0)
        total = row.get("total_evaluated", row.get("total"))
        fails = row.get("fails")
        total = int(total) if total is not None else passed + int(fails or 0)
        hits = int(fails) if fails is not None else max(0, total - passed)
        probe = str(row["probe"])
        if probe not in worst or hits > worst[probe][1]:
            worst[probe] = (total, min(hits, total))
    for probe, (total, hits) in worst.items():
        tally.add(probe, probe.split(".", 1)[0], total, hits)


def import_garak(path: str | Path) -> ProfileDocument:
    """Read a garak ``report.jsonl`` into an adversarial entry (see the module docstring).

    Args:
        path: the report file.

    Returns:
        A document with one adversarial entry.

    Raises:
        InvalidInputError: unreadable file, a malformed line, or no results in it.
    """
    rows = _jsonl(_read(path), str(path))
    version, target = "unknown", ""
    for row in rows:
        kind = row.get("entry_type", "")
        if kind == "init" and row.get("garak_version"):
            version = str(row["garak_version"])
        if "setup" in str(kind):
            version = str(row.get("_config.version") or version)
            kind_ = row.get("plugins.target_type") or row.get("plugins.model_type")
            name = row.get("plugins.target_name") or row.get("plugins.model_name")
            if kind_ or name:
                target = f"garak:{kind_ or '?'}:{name or '?'}"
    tally = _Tally()
    if not _garak_attempts(tally, rows):
        _garak_evals(tally, rows)
    if not tally.probes:
        raise InvalidInputError(f"{path}: no evaluated attempts or eval lines found")
    return tally.entry(tool="garak", version=version, target=target)


def _promptfoo_rows(data: Any, source: str) -> tuple[list[Mapping[str, Any]], Mapping[str, Any]]:
    if isinstance(data, list):
        return data, {}
    if isinstance(data, Mapping):
        results = data.get("results")
        if isinstance(results, Mapping) and isinstance(results.get("results"), list):
            return results["results"], results
        if isinstance(results, list):
            return results, data
    raise InvalidInputError(f"{source}: expected promptfoo output with results.results[]")


def _meta(row: Mapping[str, Any], key: str) -> str | None:
    for holder in (row.get("metadata"), (row.get("testCase") or {}).get("metadata")):
        if isinstance(holder, Mapping) and holder.get(key):
            return str(holder[key])
    return None


def _promptfoo_output(row: Mapping[str, Any]) -> str:
    response = row.get("response")
    output = response.get("output") if isinstance(response, Mapping) else response
    return output if isinstance(output, str) else json.dumps(output) if output is not None else ""


def import_promptfoo(path: str | Path) -> ProfileDocument:
    """Read a promptfoo results JSON into an adversarial entry (see the module docstring).

    Args:
        path: the ``results.json`` file written by ``promptfoo eval --output``.

    Returns:
        A document with one adversarial entry.

    Raises:
        InvalidInputError: unreadable or not JSON, or no graded results.
    """
    try:
        data = json.loads(_read(path))
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"{path} is not JSON (line {exc.lineno})") from None
    rows, holder = _promptfoo_rows(data, str(path))
    tally, providers = _Tally(), []
    for row in rows:
        if not isinstance(row, Mapping) or row.get("failureReason") == 2:
            continue
        grading = row.get("gradingResult") if isinstance(row.get("gradingResult"), Mapping) else {}
        success = row.get("success", grading.get("pass") if grading else None)
        if not isinstance(success, bool):
            continue
        plugin = _meta(row, "pluginId") or "promptfoo"
        probe = f"{plugin}/{_meta(row, 'strategyId') or 'basic'}"
        tally.add(probe, plugin, 1, int(not success))
        if not success:
            prompt = row.get("prompt")
            text = prompt.get("raw") if isinstance(prompt, Mapping) else prompt
            tally.sample(probe, plugin, str(text or ""), _promptfoo_output(row), "promptfoo-grader")
        provider = row.get("provider")
        pid = provider.get("id") if isinstance(provider, Mapping) else provider
        if pid and str(pid) not in providers:
            providers.append(str(pid))
    if not tally.probes:
        raise InvalidInputError(f"{path}: no graded results found")
    meta = data.get("metadata") if isinstance(data, Mapping) else None
    version = (meta or {}).get("promptfooVersion") if isinstance(meta, Mapping) else None
    version = version or (f"results-v{holder['version']}" if holder.get("version") else "unknown")
    return tally.entry(
        tool="promptfoo",
        version=str(version),
        target="promptfoo:" + ",".join(providers) if providers else "",
    )
