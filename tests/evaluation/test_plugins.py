"""Plugin discovery: built-ins and third parties through the same pluggy hooks."""

from __future__ import annotations

import importlib
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from charter.domain.errors import AlreadyExistsError, NotFoundError
from charter.evaluation import plugins
from charter.evaluation.base import Evaluator
from charter.evaluation.fairness import FairnessEvaluator
from charter.evaluation.slices import SlicePerformanceEvaluator

LATENCY_PLUGIN = """
from charter.domain.profile import EvaluationEntry, ProfileDocument
from charter.evaluation.base import EvaluationContext, EvaluationOutcome, Evaluator
from charter.evaluation.plugins import hookimpl


class LatencyEvaluator(Evaluator):
    name = "{name}"
    version = "1.0"
    description = "Median prediction latency."

    def evaluate(self, context: EvaluationContext) -> EvaluationOutcome:
        doc = ProfileDocument(evaluations=[EvaluationEntry(
            name="latency_p50", value=0.01, unit="seconds")])
        return EvaluationOutcome(document=doc, config=dict(context.options))


@hookimpl
def charter_evaluators():
    return [LatencyEvaluator]
"""


@pytest.fixture(autouse=True)
def fresh_plugins() -> Iterator[None]:
    """Every test discovers plugins afresh and leaves no plugin behind."""
    plugins.reset_plugins()
    yield
    plugins.reset_plugins()


def write_module(folder: Path, name: str, source: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.py"
    path.write_text(textwrap.dedent(source))
    return path


def import_from(folder: Path, name: str, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.delitem(sys.modules, name, raising=False)
    return importlib.import_module(name)


def fake_distribution(folder: Path, dist: str, groups: dict[str, dict[str, str]]) -> None:
    """A ``*.dist-info`` folder with entry points, as an installed package would leave."""
    info = folder / f"{dist}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    lines = []
    for group, points in groups.items():
        lines.append(f"[{group}]")
        lines.extend(f"{name} = {target}" for name, target in points.items())
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")


def test_built_ins_register_through_the_hooks() -> None:
    found = plugins.evaluators()
    assert found["fairness"] is FairnessEvaluator
    assert found["slice-performance"] is SlicePerformanceEvaluator
    assert isinstance(plugins.get_evaluator("fairness"), FairnessEvaluator)
    manager = plugins.plugin_manager()
    assert manager.has_plugin("charter.evaluation.fairness")
    assert manager is plugins.plugin_manager()  # cached


def test_importing_charter_loads_no_plugin_and_no_heavy_library() -> None:
    code = (
        "import sys, charter, charter.evaluation, charter.evaluation.plugins as p;"
        "print(p._manager is None, 'charter.evaluation.fairness' in sys.modules,"
        " 'pandas' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "False", "False"]


def test_listing_evaluators_imports_neither_pandas_nor_fairlearn() -> None:
    code = (
        "import sys; from charter.evaluation.plugins import evaluators; evaluators();"
        "print(any(m in sys.modules for m in ('pandas', 'fairlearn', 'sklearn')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_module_registered_on_the_manager(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_module(tmp_path, "acme_latency", LATENCY_PLUGIN.format(name="latency"))
    module = import_from(tmp_path, "acme_latency", monkeypatch)
    plugins.plugin_manager().register(module)
    assert "latency" in plugins.evaluators()
    evaluator = plugins.get_evaluator("latency")
    assert isinstance(evaluator, Evaluator)
    assert evaluator.version == "1.0"


def test_an_entry_point_of_an_installed_distribution(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_module(tmp_path, "acme_ep_latency", LATENCY_PLUGIN.format(name="latency-ep"))
    fake_distribution(
        tmp_path, "acme_charter", {"charter.evaluators": {"latency": "acme_ep_latency"}}
    )
    monkeypatch.syspath_prepend(str(tmp_path))  # also invalidates importlib's caches
    monkeypatch.delitem(sys.modules, "acme_ep_latency", raising=False)
    names = [ep.name for ep in importlib.metadata.entry_points(group="charter.evaluators")]
    assert "latency" in names
    assert "latency-ep" in plugins.evaluators()
    source = plugins.plugin_manager().sources["charter.evaluators:latency"]
    assert "acme_charter 1.0" in source


def test_an_entry_point_may_name_the_class_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_module(tmp_path, "acme_cls", LATENCY_PLUGIN.format(name="latency-cls"))
    fake_distribution(
        tmp_path, "acme_cls_dist", {"charter.evaluators": {"lat": "acme_cls:LatencyEvaluator"}}
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "acme_cls", raising=False)
    assert plugins.evaluators()["latency-cls"].__name__ == "LatencyEvaluator"


def test_one_module_serving_several_groups_is_registered_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = LATENCY_PLUGIN.format(name="multi") + textwrap.dedent("""
        class Regex:
            name = "regex-multi"

        @hookimpl
        def charter_detectors():
            return [Regex]
    """)
    write_module(tmp_path, "acme_multi", source)
    fake_distribution(
        tmp_path,
        "acme_multi_dist",
        {"charter.evaluators": {"multi": "acme_multi"}, "charter.detectors": {"rx": "acme_multi"}},
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "acme_multi", raising=False)
    assert "multi" in plugins.evaluators()
    assert plugins.get_detector("regex-multi").__name__ == "Regex"
    assert plugins.plugin_problems().keys() <= {"built-in module charter.evaluation.redteam"}


def test_a_broken_entry_point_does_not_take_the_others_down(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_module(tmp_path, "acme_broken", "raise RuntimeError('boom at import')\n")
    fake_distribution(tmp_path, "acme_broken_dist", {"charter.evaluators": {"b": "acme_broken"}})
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "fairness" in plugins.evaluators()
    problems = plugins.plugin_problems()
    assert any(
        "acme_broken" in source and "boom at import" in why for source, why in problems.items()
    )
    with pytest.raises(NotFoundError) as caught:
        plugins.get_evaluator("broken-thing")
    assert "boom at import" in caught.value.message


def test_duplicate_names_name_both_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_module(tmp_path, "acme_one", LATENCY_PLUGIN.format(name="fairness"))
    module = import_from(tmp_path, "acme_one", monkeypatch)
    plugins.plugin_manager().register(module)
    with pytest.raises(AlreadyExistsError) as caught:
        plugins.evaluators()
    message = caught.value.message
    assert "'fairness'" in message
    assert "charter.evaluation.fairness" in message
    assert "acme_one" in message


def test_unknown_names_list_what_is_available() -> None:
    with pytest.raises(NotFoundError) as caught:
        plugins.get_evaluator("nope")
    assert "fairness" in caught.value.message
    assert "slice-performance" in caught.value.details["valid"]


def test_a_missing_built_in_module_is_only_mentioned_when_asked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    missing = "charter.evaluation.not_written_yet"
    monkeypatch.setattr(plugins, "BUILTIN_MODULES", (*plugins.BUILTIN_MODULES, missing))
    assert "fairness" in plugins.evaluators()  # no error on listing
    with pytest.raises(NotFoundError) as caught:
        plugins.get_evaluator("redteam-v2")
    assert missing in caught.value.message
    assert "not part of this installation" in caught.value.message


def test_detectors_packs_and_targets_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_module(
        tmp_path,
        "acme_kit",
        """
        from types import SimpleNamespace
        from charter.evaluation.plugins import hookimpl

        class Profanity:
            name = "profanity"

        PACK = SimpleNamespace(name="jailbreaks-mini", load=lambda: [])

        def echo_target():
            return "echo"
        echo_target.name = "echo"

        @hookimpl
        def charter_detectors():
            return [Profanity]

        @hookimpl
        def charter_probe_packs():
            return [PACK]

        @hookimpl
        def charter_targets():
            return [echo_target]
        """,
    )
    module = import_from(tmp_path, "acme_kit", monkeypatch)
    plugins.plugin_manager().register(module)
    assert plugins.detectors()["profanity"] is module.Profanity
    assert plugins.probe_packs()["jailbreaks-mini"] is module.PACK
    assert plugins.targets()["echo"] is module.echo_target
    assert plugins.get_target("echo")() == "echo"
    with pytest.raises(NotFoundError, match="no probe pack named 'x'"):
        plugins.get_probe_pack("x")


def test_a_hook_returning_garbage_is_reported_not_listed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_module(
        tmp_path,
        "acme_garbage",
        """
        from charter.evaluation.plugins import hookimpl

        class NotAnEvaluator:
            name = "imposter"

        @hookimpl
        def charter_evaluators():
            return [NotAnEvaluator]
        """,
    )
    plugins.plugin_manager().register(import_from(tmp_path, "acme_garbage", monkeypatch))
    assert "imposter" not in plugins.evaluators()
    assert any("NotAnEvaluator" in why for why in plugins.plugin_problems().values())
