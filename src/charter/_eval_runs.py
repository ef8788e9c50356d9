"""Running an evaluator next to the model, recording nothing yet.

Used by :meth:`charter.service.Registry.evaluate` (then recorded locally) and by
:class:`charter.client.RemoteRegistry` (then uploaded to the server, which
records it with :meth:`~charter._evaluations.EvaluationUseCases.record_evaluation`).
"""

from __future__ import annotations

import platform
import tempfile
import uuid
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol

from charter.domain.entities import Model, Version
from charter.domain.errors import CharterError
from charter.domain.folding import EffectiveProfile
from charter.domain.profile import ProfileDocument
from charter.evaluation.base import EvaluationContext, ProgressFn
from charter.journal import now

__all__ = ["run_evaluator"]

_PACKAGES = ("charter-registry", "scikit-learn", "numpy", "pandas", "fairlearn", "httpx")


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


class _Runner(Protocol):
    """What running an evaluator needs: reads and a download (local or remote)."""

    def get_model(self, *, name: str) -> Model: ...

    def get_version(self, *, model: str, version: str) -> Version: ...

    def profile(
        self, *, model: str, version: str, as_of: str | None = None, baseline: bool = False
    ) -> EffectiveProfile: ...

    def download(
        self, *, model: str, version: str, dest: Path, progress: Any = None
    ) -> list[Path]: ...


def run_evaluator(
    host: _Runner,
    *,
    model: str,
    version: str,
    evaluator: str,
    options: Mapping[str, Any] | None = None,
    progress: ProgressFn | None = None,
) -> tuple[dict[str, Any], ProfileDocument]:
    """Run one evaluator on ``model@version`` here, recording nothing yet.

    Returns:
        (the run document, the results) for :meth:`EvaluationUseCases.record_evaluation`.

    Raises:
        NotFoundError: unknown version or evaluator. InvalidInputError: bad options.
    """
    from charter.evaluation.plugins import get_evaluator

    v = host.get_version(model=model, version=version)
    instance = get_evaluator(evaluator)
    started = now()
    with tempfile.TemporaryDirectory(prefix="charter-eval-") as tmp:
        host.download(model=model, version=version, dest=Path(tmp))
        context = EvaluationContext(
            model=host.get_model(name=model), version=v, artifact_dir=Path(tmp),
            profile=host.profile(model=model, version=version),
            options=dict(options or {}), progress=progress,
        )  # fmt: skip
        outcome = instance.evaluate(context)
    if not outcome.document.entries():
        raise CharterError(f"evaluator {evaluator} produced no results for {v.ref}")
    run: dict[str, Any] = {
        "run_id": f"run-{uuid.uuid4().hex[:16]}", "evaluator": instance.name,
        "evaluator_version": instance.version, "config": dict(outcome.config),
        "datasets": [dict(d) for d in outcome.datasets],
        "probe_pack": dict(outcome.probe_pack) if outcome.probe_pack else None,
        "target": outcome.target, "environment": _environment(),
        "started_at": started, "finished_at": now(), "summary": dict(outcome.summary),
    }  # fmt: skip
    return run, outcome.document
