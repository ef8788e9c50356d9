"""Plugins: evaluators, detectors, probe packs and targets, found through pluggy hooks.

Built-in plugins and third-party ones register the same way: a module (or any
object) implementing some of the hooks below with :data:`hookimpl`::

    from charter.evaluation.plugins import hookimpl

    @hookimpl
    def charter_evaluators():
        return [LatencyEvaluator]

and, for a third-party package, an entry point in one of the groups of
:data:`ENTRY_POINT_GROUPS` naming that module::

    [project.entry-points."charter.evaluators"]
    latency = "acme_charter.latency"

An entry point may also name the plugin class itself (``acme_charter:LatencyEvaluator``):
it is registered as the only item of its group's kind.

Nothing is imported until the first call of :func:`plugin_manager` (directly or
through :func:`evaluators` and friends), so importing Charter stays cheap. A
plugin that fails to import does not take the others down: its error is kept
(:func:`plugin_problems`) and shown when someone asks for a name that is not
found — perhaps because that plugin was to provide it.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import threading
from collections.abc import Callable
from types import ModuleType, SimpleNamespace
from typing import Any

import pluggy

from charter.domain.errors import AlreadyExistsError, NotFoundError
from charter.evaluation.base import Evaluator

__all__ = [
    "BUILTIN_MODULES",
    "ENTRY_POINT_GROUPS",
    "PROJECT",
    "CharterPluginManager",
    "detectors",
    "evaluators",
    "get_detector",
    "get_evaluator",
    "get_probe_pack",
    "get_target",
    "hookimpl",
    "hookspec",
    "plugin_manager",
    "plugin_problems",
    "probe_packs",
    "reset_plugins",
    "targets",
]

PROJECT = "charter"
hookspec = pluggy.HookspecMarker(PROJECT)
#: Decorate a plugin's hook functions with this.
hookimpl = pluggy.HookimplMarker(PROJECT)

#: Built-in plugin modules, registered like any third-party plugin.
BUILTIN_MODULES: tuple[str, ...] = (
    "charter.evaluation.fairness",
    "charter.evaluation.slices",
    "charter.evaluation.redteam",
)

#: Entry-point group -> the hook its plugins implement (and the kind, for messages).
ENTRY_POINT_GROUPS: dict[str, tuple[str, str]] = {
    "charter.evaluators": ("charter_evaluators", "evaluator"),
    "charter.detectors": ("charter_detectors", "detector"),
    "charter.probe_packs": ("charter_probe_packs", "probe pack"),
    "charter.targets": ("charter_targets", "target"),
}


class CharterSpecs:
    """The hooks a Charter plugin may implement (each takes no arguments)."""

    @hookspec
    def charter_evaluators(self) -> list[type[Evaluator]]:
        """Return :class:`~charter.evaluation.base.Evaluator` subclasses."""
        return []

    @hookspec
    def charter_detectors(self) -> list[Any]:
        """Return detector classes (anything with a ``name``)."""
        return []

    @hookspec
    def charter_probe_packs(self) -> list[Any]:
        """Return probe-pack loaders (anything with a ``name``)."""
        return []

    @hookspec
    def charter_targets(self) -> list[Any]:
        """Return target factories (anything with a ``name``)."""
        return []


class CharterPluginManager(pluggy.PluginManager):
    """A pluggy plugin manager that remembers where each plugin came from.

    Attributes:
        sources: plugin name -> a description of where it came from.
        problems: plugin source -> why it could not be loaded.
    """

    def __init__(self) -> None:
        super().__init__(PROJECT)
        self.add_hookspecs(CharterSpecs)
        self.sources: dict[str, str] = {}
        self.problems: dict[str, str] = {}

    def register(self, plugin: Any, name: str | None = None) -> str | None:
        """Register a plugin (see :meth:`pluggy.PluginManager.register`)."""
        registered = super().register(plugin, name)
        if registered is not None:
            self.sources.setdefault(registered, f"plugin {registered}")
        return registered


_lock = threading.Lock()
_manager: CharterPluginManager | None = None


def plugin_manager() -> CharterPluginManager:
    """Return the plugin manager, loading built-ins and entry points on first use.

    Returns:
        The same manager on every call (until :func:`reset_plugins`). Tests and
        applications may ``register`` more plugins on it.
    """
    global _manager
    with _lock:
        if _manager is None:
            manager = CharterPluginManager()
            for module in BUILTIN_MODULES:
                _load_builtin(manager, module)
            for group, (hook, _kind) in ENTRY_POINT_GROUPS.items():
                _load_entry_points(manager, group, hook)
            _manager = manager
        return _manager


def reset_plugins() -> None:
    """Forget the plugin manager; the next use discovers plugins afresh."""
    global _manager
    with _lock:
        _manager = None


def plugin_problems() -> dict[str, str]:
    """Plugins that could not be loaded: source -> reason."""
    return dict(plugin_manager().problems)


def _load_builtin(manager: CharterPluginManager, module_name: str) -> None:
    source = f"built-in module {module_name}"
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        if isinstance(exc, ModuleNotFoundError) and exc.name == module_name:
            manager.problems[source] = "not part of this installation yet"
        else:
            manager.problems[source] = f"cannot be imported: {exc}"
        return
    _register(manager, module, module_name, source)


def _load_entry_points(manager: CharterPluginManager, group: str, hook: str) -> None:
    for ep in importlib.metadata.entry_points(group=group):
        dist = getattr(ep, "dist", None)
        origin = f" of {dist.name} {dist.version}" if dist is not None else ""
        source = f"entry point {ep.name} = {ep.value} ({group}{origin})"
        try:
            loaded = ep.load()
        except Exception as exc:  # third-party code may raise anything on import
            manager.problems[source] = f"cannot be loaded: {type(exc).__name__}: {exc}"
            continue
        if manager.is_registered(loaded):  # one module serving several groups
            continue
        if not isinstance(loaded, ModuleType) and not _has_hooks(manager, loaded):
            loaded = SimpleNamespace(**{hook: hookimpl(_returning(loaded))})
        _register(manager, loaded, f"{group}:{ep.name}", source)


def _has_hooks(manager: CharterPluginManager, plugin: Any) -> bool:
    return any(manager.parse_hookimpl_opts(plugin, name) for name in dir(plugin))


def _returning(item: Any) -> Callable[[], list[Any]]:
    def impl() -> list[Any]:
        return [item]

    return impl


def _register(manager: CharterPluginManager, plugin: Any, name: str, source: str) -> None:
    try:
        manager.register(plugin, name=name)
    except (ValueError, pluggy.PluginValidationError) as exc:
        manager.problems[source] = f"cannot be registered: {exc}"
        return
    manager.sources[name] = source


def _collect(hook: str, kind: str) -> dict[str, tuple[Any, str]]:
    """Call one hook plugin by plugin: name -> (item, source)."""
    manager = plugin_manager()
    found: dict[str, tuple[Any, str]] = {}
    for impl in getattr(manager.hook, hook).get_hookimpls():
        if impl.hookwrapper or impl.wrapper:
            continue
        source = manager.sources.get(impl.plugin_name, f"plugin {impl.plugin_name}")
        try:
            items = list(impl.function() or [])
        except Exception as exc:  # third-party code may raise anything
            manager.problems[source] = f"{hook}() failed: {type(exc).__name__}: {exc}"
            continue
        for item in items:
            name = _item_name(item, kind)
            if name is None:
                problem = f"{hook}() returned {item!r}, which is not a valid {kind}"
                manager.problems[source] = problem
                continue
            if name in found and found[name][0] is not item:
                raise AlreadyExistsError(
                    f"two plugins provide a {kind} named {name!r}: {found[name][1]} "
                    f"and {source}; uninstall or disable one",
                    kind=kind,
                    name=name,
                    sources=[found[name][1], source],
                )
            found[name] = (item, source)
    return dict(sorted(found.items()))


def _item_name(item: Any, kind: str) -> str | None:
    if kind == "evaluator" and not (isinstance(item, type) and issubclass(item, Evaluator)):
        return None
    name = getattr(item, "name", None)
    return name if isinstance(name, str) and name else None


def _lookup(hook: str, kind: str, name: str) -> Any:
    found = _collect(hook, kind)
    if name in found:
        return found[name][0]
    available = ", ".join(found) or "none"
    message = f"no {kind} named {name!r} (available: {available})"
    problems = plugin_manager().problems
    if problems:
        notes = "; ".join(f"{source}: {why}" for source, why in sorted(problems.items()))
        message += f". Plugins that could not be loaded: {notes}"
    raise NotFoundError(message, kind=kind, name=name, valid=list(found), problems=dict(problems))


def evaluators() -> dict[str, type[Evaluator]]:
    """All evaluators, built-in and third-party, by name.

    Raises:
        AlreadyExistsError: two plugins provide the same name (naming both).
    """
    return {name: item for name, (item, _) in _collect("charter_evaluators", "evaluator").items()}


def get_evaluator(name: str) -> Evaluator:
    """Return a fresh instance of the evaluator called ``name``.

    Raises:
        NotFoundError: no such evaluator (listing the available ones and any
            plugin that failed to load).
        AlreadyExistsError: two plugins provide the same name.
    """
    cls: type[Evaluator] = _lookup("charter_evaluators", "evaluator", name)
    return cls()


def detectors() -> dict[str, Any]:
    """All detectors by name (see :func:`evaluators` for errors)."""
    return {name: item for name, (item, _) in _collect("charter_detectors", "detector").items()}


def get_detector(name: str) -> Any:
    """Return the detector registered as ``name`` (as registered, not instantiated).

    Raises:
        NotFoundError: no such detector.
    """
    return _lookup("charter_detectors", "detector", name)


def probe_packs() -> dict[str, Any]:
    """All probe-pack loaders by name (see :func:`evaluators` for errors)."""
    return {name: item for name, (item, _) in _collect("charter_probe_packs", "probe pack").items()}


def get_probe_pack(name: str) -> Any:
    """Return the probe-pack loader registered as ``name``.

    Raises:
        NotFoundError: no such probe pack.
    """
    return _lookup("charter_probe_packs", "probe pack", name)


def targets() -> dict[str, Any]:
    """All target factories by name (see :func:`evaluators` for errors)."""
    return {name: item for name, (item, _) in _collect("charter_targets", "target").items()}


def get_target(name: str) -> Any:
    """Return the target factory registered as ``name``.

    Raises:
        NotFoundError: no such target.
    """
    return _lookup("charter_targets", "target", name)
