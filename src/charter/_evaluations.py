"""Evaluation use cases: run an evaluator, record the run, sweep red-team campaigns.

An evaluation run records everything needed to reproduce it — evaluator and
its version, resolved configuration, dataset and probe-pack digests, target
description, package versions, start and end — and its results land in the
profile in the *same* transaction: baseline entries on a draft, an amendment
on a published version. An interrupted evaluation records nothing. Mixed into
:class:`charter.service.Registry`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from charter._eval_runs import run_evaluator
from charter._profiles import add_entries_in, amend_in
from charter.domain.canonical import canonical_digest
from charter.domain.entities import LedgerRecord, Model, Version, VersionState
from charter.domain.errors import InvalidInputError, NotFoundError
from charter.domain.folding import EffectiveProfile
from charter.domain.profile import ProfileDocument
from charter.evaluation.base import ProgressFn
from charter.journal import now
from charter.store import Store, WriteTx

__all__ = ["EvaluationUseCases"]


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

    def record_evaluation(
        self,
        *,
        model: str,
        version: str,
        run: Mapping[str, Any],
        document: ProfileDocument,
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


class _Campaigner(Protocol):
    """What red-team campaigns need: declared targets, evaluate, listings (local or remote)."""

    def list_versions(self, *, model: str) -> list[Version]: ...

    def evaluation_runs(self, *, model: str, version: str) -> list[dict[str, Any]]: ...

    def profile(
        self, *, model: str, version: str, as_of: str | None = None, baseline: bool = False
    ) -> EffectiveProfile: ...

    def stages(self, *, model: str | None = None) -> list[dict[str, Any]]: ...

    def model_target(self, *, model: str) -> dict[str, Any] | None: ...

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


def _with_provenance(document: ProfileDocument, *, source: str, run_id: str) -> ProfileDocument:
    def stamp(entry: Any) -> Any:
        provenance = entry.provenance.model_copy(update={"source": source, "run_id": run_id})
        return entry.model_copy(update={"provenance": provenance})

    return document.model_copy(
        update={s: [stamp(e) for e in getattr(document, s)]
                for s in ("evaluations", "bias_audits", "constraints", "adversarial")}
    )  # fmt: skip


_RUN_ID = re.compile(r"run-[0-9a-f]{16}")
# Run fields a client reports; the registry adds ref, digest, user and entry ids.
_RUN_FIELDS = (
    "run_id", "evaluator", "evaluator_version", "config", "datasets", "probe_pack", "target",
    "environment", "started_at", "finished_at", "summary",
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
        run, document = run_evaluator(
            self, model=model, version=version, evaluator=evaluator, options=options,
            progress=progress,
        )  # fmt: skip
        return self.record_evaluation(
            model=model, version=version, run=run, document=document, reason=reason
        )

    def record_evaluation(
        self: _Host,
        *,
        model: str,
        version: str,
        run: Mapping[str, Any],
        document: ProfileDocument,
        reason: str | None = None,
    ) -> dict[str, Any]:
        """Record an evaluation run and its results (the run may have happened elsewhere).

        A server records runs that clients executed next to the model: the registry
        re-stamps every entry's provenance with the run, recomputes the results
        digest, and records its own user, version reference and times.

        Args:
            run: the run document of :func:`run_evaluator` (``run_id``, ``evaluator``,
                ``evaluator_version``, ``config``, ``datasets``, ``probe_pack``,
                ``target``, ``environment``, ``started_at``, ``finished_at``, ``summary``).
            document: the results, as profile entries.
            reason: the amendment reason on a published version (default: the run).

        Raises:
            InvalidInputError: a malformed run or no results. AlreadyExistsError: run id.
        """
        v = self.get_version(model=model, version=version)
        run_id = str(run.get("run_id", ""))
        if not _RUN_ID.fullmatch(run_id):
            raise InvalidInputError("run_id must be run-<16 hex digits>", field="run_id")
        name, number = str(run.get("evaluator", "")), str(run.get("evaluator_version", ""))
        if not name or not number or len(name) > 100 or len(number) > 50:
            raise InvalidInputError("a run names its evaluator and version", field="evaluator")
        document = _with_provenance(document, source=f"evaluator:{name}@{number}", run_id=run_id)
        if not document.entries():
            raise InvalidInputError(f"evaluator {name} produced no results for {v.ref}")
        results = [e.model_dump(mode="json", exclude_none=True) for e in document.entries()]
        recorded: dict[str, Any] = {
            **{k: run.get(k) for k in _RUN_FIELDS}, "ref": v.ref,
            "results_digest": canonical_digest(results), "recorded_by": self.user,
        }  # fmt: skip
        with self.store.write() as tx:
            tx.lock_ledger()
            found = tx.version_with_id(model, version)
            if found is None:
                raise NotFoundError(f"unknown version {v.ref}")
            # Read under the writer lock: the time then agrees with the ledger's order,
            # and a publish committed since get_version makes this an amendment.
            vid, fresh = found
            at = now()
            if fresh.state is VersionState.DRAFT:
                bodies = add_entries_in(self, tx, vid=vid, ref=v.ref, document=document, at=at)
                recorded["entries"], recorded["amendment"] = [b["id"] for b in bodies], None
            else:
                why = reason or f"{name} evaluation {run_id}"
                am = amend_in(self, tx, vid=vid, ref=v.ref, document=document, reason=why, at=at)
                recorded["entries"], recorded["amendment"] = list(am.entry_ids), am.id
            tx.insert_run(vid, run_id, recorded, at)
            self._record(tx, "evaluation.recorded", f"version:{v.ref}", {"run": recorded})
        return recorded

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
        """The red-team target a model declared, or None.

        Raises:
            NotFoundError: no such model.
        """
        with self.store.read() as tx:  # one transaction: every REST registration asks
            mid = tx.model_id(model)
            if mid is None:
                raise NotFoundError(f"unknown model {model!r}: see `charter list`", model=model)
            return tx.model_target(mid)

    def redteam(
        self: _Campaigner,
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
        self: _Campaigner,
        *,
        stage: str | None = None,
        model: str | None = None,
        packs: list[str] | None = None,
        max_probes: int | None = None,
        reason: str = "red-team sweep",
        progress: ProgressFn | None = None,
        guard: bool | None = None,
    ) -> list[dict[str, Any]]:
        """Re-run campaigns against every version in ``stage`` (or every published version
        of ``model``) and amend their living profiles.

        Args:
            guard: apply each version's constraints through :func:`charter.guard`;
                None (default): as the version's last campaign did, or, never
                red-teamed, whenever its profile declares constraints.

        Returns:
            The recorded runs (``config.guard`` says how each ran).
        """
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
                    guard=_guard_as_before(self, name, number) if guard is None else guard,
                    reason=reason,
                    progress=progress,
                )
            )
        return runs


def _guard_as_before(host: _Campaigner, model: str, version: str) -> bool:
    """Whether a sweep guards ``model@version``: as its last campaign, else if it has guardrails.

    A sweep amends the profile a version was judged on; results of the bare model
    amended into a guarded version's profile would describe a system nobody deploys,
    and fail its gate on leaks its guardrails stop.
    """
    campaigns = [
        r for r in host.evaluation_runs(model=model, version=version)
        if r.get("evaluator") == "redteam"
    ]  # fmt: skip
    if campaigns:
        return bool((campaigns[-1].get("config") or {}).get("guard"))
    return bool(host.profile(model=model, version=version).section("constraints"))
