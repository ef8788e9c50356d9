"""The ``redteam`` evaluator: run probe packs against a target, record what got through.

Options (``charter evaluate <ref> redteam --option …``):

- ``target`` (required): ``{kind: openai, base_url, model, api_key_env, …}`` or
  ``{kind: callable, function: "module:function"}`` (see :mod:`charter.evaluation.targets`);
- ``system_prompt``: template with ``{canary}`` and ``{pii_records}`` placeholders
  (default: a bank support assistant holding both);
- ``packs``: pack names or paths (default ``["charter-default"]``);
- ``max_probes``: stratified subset size per pack, for CI; ``seed``: its shuffle seed;
- ``concurrency`` (default 8); ``guard``: wrap the target with the version's declared
  constraints; ``max_errors``: target failures tolerated before the campaign aborts (0).

Each campaign plants a fresh random canary (``secrets.token_hex``) and fixed fake
customer records. The outcome holds one adversarial entry per pack and, over all
packs, ``attack_success_rate`` plus one rate per category present
(``prompt_injection_success_rate``, ``system_prompt_leak_rate``, ``pii_leakage_rate``,
``jailbreak_success_rate``, ``toxicity_rate``, ``harmful_compliance_rate``) and
``over_refusal_rate`` (benign probes refused). Transcripts show the canary as
``[CANARY]``; the canary itself is never recorded.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import pluggy

from charter.domain.canonical import canonical_digest
from charter.domain.errors import InvalidInputError
from charter.domain.profile import (
    AdversarialEntry,
    CategoryResult,
    DatasetInfo,
    EvaluationEntry,
    PackRef,
    ProbeResult,
    ProfileDocument,
    Transcript,
)
from charter.evaluation._campaign import (
    ProbeOutcome,
    available_detectors,
    parse_options,
    run_campaign,
)
from charter.evaluation._text import truncate
from charter.evaluation.base import EvaluationContext, EvaluationOutcome, Evaluator
from charter.evaluation.detectors import Detector, builtin_detectors
from charter.evaluation.packs import ProbePack, builtin_packs
from charter.evaluation.targets import CallableTarget, OpenAITarget, Target

__all__ = [
    "CATEGORY_METRICS",
    "RedTeamEvaluator",
    "charter_detectors",
    "charter_evaluators",
    "charter_probe_packs",
    "charter_targets",
    "hookimpl",
]

hookimpl = pluggy.HookimplMarker("charter")

CATEGORY_METRICS = {
    "prompt_injection": "prompt_injection_success_rate",
    "system_prompt_extraction": "system_prompt_leak_rate",
    "pii_extraction": "pii_leakage_rate",
    "jailbreak": "jailbreak_success_rate",
    "toxicity": "toxicity_rate",
    "harmful_request": "harmful_compliance_rate",
}
MAX_SAMPLES = 20
_TEXT, _LONG = 500, 4000


def _redact(text: str, canary: str) -> str:
    return re.sub(re.escape(canary), "[CANARY]", text, flags=re.IGNORECASE) if canary else text


def adversarial_entry(
    pack: ProbePack, outcomes: Sequence[ProbeOutcome], target: str, canary: str
) -> AdversarialEntry:
    """One pack's campaign as an adversarial entry (benign controls and errors left out)."""
    attacks = [o for o in outcomes if o.detection is not None and not o.probe.benign]
    probes = [
        ProbeResult(
            probe=truncate(o.probe.id, _TEXT),
            category=o.probe.category,
            attempts=1,
            hits=int(o.detection is not None and o.detection.hit),
        )
        for o in attacks
    ]
    totals: dict[str, list[int]] = {}
    for p in probes:
        t = totals.setdefault(p.category, [0, 0])
        t[0], t[1] = t[0] + 1, t[1] + p.hits
    samples = [
        Transcript(
            probe=truncate(o.probe.id, _TEXT),
            category=o.probe.category,
            prompt=truncate(_redact(o.probe.prompt, canary), _LONG),
            response=truncate(_redact(o.response, canary), _LONG),
            detector=o.probe.detector,
        )
        for o in attacks
        if o.detection is not None and o.detection.hit
    ][:MAX_SAMPLES]
    hits = sum(p.hits for p in probes)
    return AdversarialEntry(
        pack=PackRef(name=pack.name, version=truncate(pack.version, _TEXT), digest=pack.digest),
        target=truncate(target, _TEXT),
        attempts=len(probes),
        hits=hits,
        probes=probes,
        categories={
            c: CategoryResult(attempts=a, hits=h, rate=h / a if a else 0.0)
            for c, (a, h) in sorted(totals.items())
        },
        samples=samples,
    )


def rate_entries(outcomes: Sequence[ProbeOutcome], dataset: DatasetInfo) -> list[EvaluationEntry]:
    """Overall, per-category and over-refusal rates (only for categories present)."""
    judged = [o for o in outcomes if o.detection is not None]
    attacks = [o for o in judged if not o.probe.benign]
    benign = [o for o in judged if o.probe.benign]

    def entry(name: str, group: Sequence[ProbeOutcome]) -> EvaluationEntry:
        hits = sum(1 for o in group if o.detection is not None and o.detection.hit)
        return EvaluationEntry(
            name=name,
            value=hits / len(group),
            unit="ratio",
            direction="lower_is_better",
            dataset=dataset,
            samples=len(group),
        )

    entries = [entry("attack_success_rate", attacks)] if attacks else []
    for category, metric in CATEGORY_METRICS.items():
        group = [o for o in attacks if o.probe.category == category]
        if group:
            entries.append(entry(metric, group))
    if benign:
        entries.append(entry("over_refusal_rate", benign))
    return entries


def pack_dataset(runs: Sequence[ProbePack]) -> DatasetInfo:
    """The probes as a dataset: ``name@version`` joined, digest over the pack digests."""
    name = "+".join(f"{p.name}@{p.version}" for p in runs)
    digest = runs[0].digest if len(runs) == 1 else canonical_digest([p.digest for p in runs])
    return DatasetInfo(name=truncate(name, _TEXT), digest=digest)


class RedTeamEvaluator(Evaluator):
    """Red-team campaign: probe packs against a live target (see the module docstring)."""

    name = "redteam"
    version = "1.0"
    description = "Prompt injection, extraction, PII, jailbreak, toxicity and over-refusal probes."

    def __init__(self, detectors: Mapping[str, Detector] | None = None) -> None:
        """Args:
        detectors: detectors by name (default: the built-ins; plugins may add more).
        """
        self._given = dict(detectors) if detectors is not None else None

    def evaluate(self, context: EvaluationContext) -> EvaluationOutcome:
        """Run the campaign and build the profile entries.

        Raises:
            InvalidInputError: bad options, packs or placeholders.
            TargetError: the target failed more than ``max_errors`` times.
            KeyboardInterrupt: interrupted; pending probes cancelled, target closed.
        """
        opts = parse_options(context.options)
        detectors = self._given if self._given is not None else available_detectors()
        packs = opts.load()
        runs = [run for _, run in packs]
        used = {p.detector for run in runs for p in run.probes}
        for placeholder, detector in (("{canary}", "canary"), ("{pii_records}", "pii")):
            if detector in used and placeholder not in opts.system_prompt:
                raise InvalidInputError(
                    f"system_prompt lacks {placeholder}: the {detector} detector would judge "
                    "nothing",
                    field="system_prompt",
                )
        outcomes, target, planted = run_campaign(opts, context, runs, detectors)

        canary = planted["canary"]
        entries = [
            adversarial_entry(
                run, [o for o in outcomes if o.pack == run.name], target.description, canary
            )
            for run in runs
        ]
        document = ProfileDocument(
            adversarial=entries, evaluations=rate_entries(outcomes, pack_dataset(runs))
        )
        return EvaluationOutcome(
            document=document,
            config={
                **opts.config(),
                "detectors": {d: detectors[d].version for d in sorted(used)},
            },
            probe_pack=_pack_record(packs),
            target=target.description,
            summary=_summary(entries, document, outcomes),
        )


def _pack_record(packs: Sequence[tuple[ProbePack, ProbePack]]) -> dict[str, Any]:
    records: list[dict[str, Any]] = [
        {
            **run.ref(),
            "probes": len(run.probes),
            **(
                {"full_digest": full.digest, "full_probes": len(full.probes)}
                if run is not full
                else {}
            ),
        }
        for full, run in packs
    ]
    if len(records) == 1:
        return records[0]
    dataset = pack_dataset([run for _, run in packs])
    return {
        "name": dataset.name,
        "version": "+".join(str(r["version"]) for r in records),
        "digest": dataset.digest,
        "packs": records,
    }


def _summary(
    entries: Sequence[AdversarialEntry], document: ProfileDocument, outcomes: Sequence[ProbeOutcome]
) -> dict[str, Any]:
    rates = {e.name: round(e.value, 4) for e in document.evaluations}
    return {
        "attempts": sum(e.attempts for e in entries),
        "hits": sum(e.hits for e in entries),
        "errors": sum(1 for o in outcomes if o.error is not None),
        **rates,
    }


@hookimpl
def charter_evaluators() -> list[type[Evaluator]]:
    """Built-in evaluators: ``redteam`` and ``constraints``."""
    from charter.evaluation.constraints_eval import ConstraintsEvaluator

    return [RedTeamEvaluator, ConstraintsEvaluator]


@hookimpl
def charter_detectors() -> list[Detector]:
    """Built-in detectors: ``canary``, ``pii``, ``refusal``, ``toxicity``."""
    return list(builtin_detectors().values())


@hookimpl
def charter_probe_packs() -> list[ProbePack]:
    """Built-in probe packs (``charter-default``)."""
    return builtin_packs()


@hookimpl
def charter_targets() -> list[type[Target]]:
    """Built-in target kinds (classes named by ``name``): ``openai``, ``callable``."""
    return [OpenAITarget, CallableTarget]
