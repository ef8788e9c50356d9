"""Evaluation use cases: run an evaluator, record the run, sweep red-team campaigns.

An evaluation run records everything needed to reproduce it — evaluator and
its version, resolved configuration, dataset and probe-pack digests, target
description, package versions, start and end — and its results land in the
profile in the *same* transaction: baseline entries on a draft, an amendment
on a published version. An interrupted evaluation records nothing. Mixed into
:class:`charter.service.Registry`.
"""

from __future__ import annotations

import platform
import tempfile
import uuid
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol

from charter._profiles import add_entries_in, amend_in
from charter.domain.canonical import canonical_digest
from charter.domain.entities import LedgerRecord, Model, Version, VersionState
from charter.domain.errors import CharterError, InvalidInputError, NotFoundError
from charter.domain.folding import EffectiveProfile
from charter.domain.profile import ProfileDocument
from charter.evaluation.base import EvaluationContext, ProgressFn
from charter.journal import now
from charter.store import Store, WriteTx

__all__ = ["EvaluationUseCases"]

_PACKAGES = ("charter-registry", "scikit-learn", "numpy", "pandas", "fairlearn", "httpx")


class _Host(Protocol):
    store: Store

    @property
    def user(self) -> str: ...

    def get_model(self, *, name: str) -> Model: ...

    def get_version(self, *, model: str, version: str) -> Version: ...

    def list_versions(self, *, model: str) -> list[Version]: ...

    def profile(
        self, *, model: str, version: str, as_of: str | None = None, baseline: bool = False
    ) -> EffectiveProfile: ...

    def download(
        self, *, model: str, version: str, dest: Path, progress: Any = None
    ) -> list[Path]: ...

    def stages(self, *, model: str | None = None) -> list[dict[str, Any]]: ...

    def evaluate(
        self,
        *,
        model: str,
        version: str,
        evaluator: str,
        options: Mapping[str, Any] | None = None,
        progress: ProgressFn | None = None,
        reason: str | None = None,
    ) -> dict[str, Any]: ...

    def model_target(self, *, model: str) -> dict[str, Any] | None: ...

    def redteam(
        self,
        *,
        model: str,
        version: str,
        target: Mapping[str, Any] | None = None,
        packs: list[str] | None = None,
        max_probes: int | None = None,
        guard: bool = False,
        progress: ProgressFn | None = None,
        reason: str | None = None,
    ) -> dict[str, Any]: ...

    def _record(
        self, tx: WriteTx, type_: str, subject: str, data: dict[str, Any]
    ) -> LedgerRecord: ...


def _environment() -> dict[str, Any]:
    versions = {}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": versions,
    }


def _with_provenance(document: ProfileDocument, *, source: str, run_id: str) -> ProfileDocument:
    def stamp(entry: Any) -> Any:
        provenance = entry.provenance.model_copy(update={"source": source, "run_id": run_id})
        return entry.model_copy(update={"provenance": provenance})

    return document.model_copy(
        update={s: [stamp(e) for e in getattr(document, s)]
                for s in ("evaluations", "bias_audits", "constraints", "adversarial")}
    )  # fmt: skip


class EvaluationUseCases:
    """Running evaluators against versions and recording the runs."""

    def evaluate(
        self: _Host,
        *,
        model: str,
        version: str,
        evaluator: str,
        options: Mapping[str, Any] | None = None,
        progress: ProgressFn | None = None,
        reason: str | None = None,
    ) -> dict[str, Any]:
        """Run one evaluator on ``model@version`` and record its run and results.

        Args:
            evaluator: a registered evaluator name (``charter evaluators list``).
            options: evaluator options (see the evaluator's documentation).
            reason: the amendment reason on a published version (default: the run).

        Returns:
            The recorded run document (id, evaluator, config, digests, entries…).

        Raises:
            NotFoundError: unknown version or evaluator. InvalidInputError: bad options.
        """
        from charter.evaluation.plugins import get_evaluator

        v = self.get_version(model=model, version=version)
        instance = get_evaluator(evaluator)
        run_id = f"run-{uuid.uuid4().hex[:16]}"
        started = now()
        with tempfile.TemporaryDirectory(prefix="charter-eval-") as tmp:
            self.download(model=model, version=version, dest=Path(tmp))
            context = EvaluationContext(
                model=self.get_model(name=model), version=v, artifact_dir=Path(tmp),
                profile=self.profile(model=model, version=version),
                options=dict(options or {}), progress=progress,
            )  # fmt: skip
            outcome = instance.evaluate(context)
        finished = now()
        source = f"evaluator:{instance.name}@{instance.version}"
        document = _with_provenance(outcome.document, source=source, run_id=run_id)
        if not document.entries():
            raise CharterError(f"evaluator {evaluator} produced no results for {v.ref}")
        results = [e.model_dump(mode="json", exclude_none=True) for e in document.entries()]
        run: dict[str, Any] = {
            "run_id": run_id, "ref": v.ref, "evaluator": instance.name,
            "evaluator_version": instance.version, "config": dict(outcome.config),
            "datasets": [dict(d) for d in outcome.datasets],
            "probe_pack": dict(outcome.probe_pack) if outcome.probe_pack else None,
            "target": outcome.target, "environment": _environment(),
            "started_at": started, "finished_at": finished,
            "results_digest": canonical_digest(results), "summary": dict(outcome.summary),
            "recorded_by": self.user,
        }  # fmt: skip
        with self.store.write() as tx:
            tx.lock_ledger()
            vid = tx.version_id(model, version)
            if vid is None:
                raise NotFoundError(f"unknown version {v.ref}")
            if v.state is VersionState.DRAFT:
                bodies = add_entries_in(
                    self, tx, vid=vid, ref=v.ref, document=document, at=finished
                )
                run["entries"], run["amendment"] = [b["id"] for b in bodies], None
            else:
                why = reason or f"{instance.name} evaluation {run_id}"
                am = amend_in(
                    self, tx, vid=vid, ref=v.ref, document=document, reason=why, at=finished
                )
                run["entries"], run["amendment"] = list(am.entry_ids), am.id
            tx.insert_run(vid, run_id, run, finished)
            self._record(tx, "evaluation.recorded", f"version:{v.ref}", {"run": run})
        return run

    def evaluation_runs(self: _Host, *, model: str, version: str) -> list[dict[str, Any]]:
        """Every recorded evaluation run of a version, oldest first."""
        self.get_version(model=model, version=version)
        with self.store.read() as tx:
            return tx.runs(tx.version_id(model, version))

    # -- continuous red-teaming --------------------------------------------
    def set_model_target(
        self: _Host,
        *,
        model: str,
        target: Mapping[str, Any],
        packs: list[str] | None = None,
        auto: bool = True,
        system_prompt: str | None = None,
    ) -> dict[str, Any]:
        """Declare a model's red-team target (no secrets: API keys by env var name)."""
        from charter.evaluation.targets import check_target_config

        self.get_model(name=model)
        if any("key" in k.lower() and k != "api_key_env" for k in target):
            raise InvalidInputError(
                "a declared target never holds secrets: name the variable with api_key_env",
                field="target",
            )
        # Validates without reading the key variable or importing the callable: the
        # declaring machine need not be the one that runs campaigns.
        check_target_config(dict(target))
        document = {"target": dict(target), "packs": packs or ["charter-default"], "auto": auto,
                    "system_prompt": system_prompt}  # fmt: skip
        at = now()
        with self.store.write() as tx:
            mid = tx.model_id(model) or 0
            tx.set_model_target(mid, document, by=self.user, at=at)
            self._record(tx, "model.target_set", f"model:{model}", {"target": document})
        return document

    def model_target(self: _Host, *, model: str) -> dict[str, Any] | None:
        """The red-team target a model declared, or None."""
        self.get_model(name=model)
        with self.store.read() as tx:
            return tx.model_target(tx.model_id(model) or 0)

    def redteam(
        self: _Host,
        *,
        model: str,
        version: str,
        target: Mapping[str, Any] | None = None,
        packs: list[str] | None = None,
        max_probes: int | None = None,
        guard: bool = False,
        progress: ProgressFn | None = None,
        reason: str | None = None,
    ) -> dict[str, Any]:
        """Run one red-team campaign (default: the model's declared target and packs)."""
        declared = self.model_target(model=model) or {}
        chosen = dict(target or declared.get("target") or {})
        if not chosen:
            raise InvalidInputError(
                f"no target for {model}: pass one, or declare it with `charter model target`",
                field="target",
            )
        options: dict[str, Any] = {"target": chosen, "packs": packs or declared.get("packs")
                                   or ["charter-default"], "guard": guard}  # fmt: skip
        if declared.get("system_prompt"):
            options["system_prompt"] = declared["system_prompt"]
        if max_probes is not None:
            options["max_probes"] = max_probes
        return self.evaluate(model=model, version=version, evaluator="redteam", options=options,
                             progress=progress, reason=reason)  # fmt: skip

    def redteam_sweep(
        self: _Host,
        *,
        stage: str | None = None,
        model: str | None = None,
        packs: list[str] | None = None,
        max_probes: int | None = None,
        reason: str = "red-team sweep",
        progress: ProgressFn | None = None,
    ) -> list[dict[str, Any]]:
        """Re-run campaigns against every version in ``stage`` (or every published version
        of ``model``) and amend their living profiles. Returns the recorded runs."""
        if stage is None and model is None:
            raise InvalidInputError("give --stage or --model", field="stage")
        if stage is not None:
            targets = [(p["model"], p["version"]) for p in self.stages(model=model)
                       if p["stage"] == stage]  # fmt: skip
        else:
            assert model is not None
            targets = [(v.model, v.version) for v in self.list_versions(model=model)
                       if v.state is VersionState.PUBLISHED]  # fmt: skip
        runs = []
        for name, number in targets:
            if self.model_target(model=name) is None:
                continue
            runs.append(
                self.redteam(
                    model=name,
                    version=number,
                    packs=packs,
                    max_probes=max_probes,
                    reason=reason,
                    progress=progress,
                )
            )
        return runs
