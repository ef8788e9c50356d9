"""Helpers of :mod:`charter.evaluation.targets`: resolving ``"module:function"`` targets
and checking target configs."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Mapping
from typing import Any

from charter.domain.errors import InvalidInputError

__all__ = [
    "CALLABLE_KEYS",
    "OPENAI_KEYS",
    "accepts_system",
    "check_keys",
    "check_numbers",
    "qualname",
    "resolve",
    "takes_messages",
]


def resolve(spec: str) -> Callable[..., Any]:
    """Import ``"package.module:function"`` (dotted attributes allowed after the colon).

    Args:
        spec: where the function lives.

    Returns:
        The callable.

    Raises:
        InvalidInputError: malformed spec, import failure, missing or non-callable attribute.
    """
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise InvalidInputError(f"callable {spec!r} must look like 'package.module:function'")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise InvalidInputError(
            f"cannot import {module_name!r} for target {spec!r}: {exc}"
        ) from None
    for part in attribute.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            raise InvalidInputError(f"{module_name!r} has no attribute {attribute!r}")
    if not callable(obj):
        raise InvalidInputError(f"{spec!r} is not callable")
    return obj  # type: ignore[no-any-return]


def takes_messages(function: Callable[..., Any]) -> bool:
    """Whether the first parameter is named ``messages`` or annotated as a list."""
    try:
        params = list(inspect.signature(function).parameters.values())
    except (TypeError, ValueError):
        return False
    if not params:
        return False
    first = params[0]
    annotation = str(first.annotation)
    return first.name == "messages" or annotation.startswith(("list", "List", "Sequence"))


def accepts_system(function: Callable[..., Any]) -> bool:
    """Whether the function takes a ``system`` keyword (the system prompt)."""
    try:
        return "system" in inspect.signature(function).parameters
    except (TypeError, ValueError):
        return False


def qualname(function: Callable[..., Any]) -> str:
    """``module:qualified.name`` of a callable, for descriptions."""
    module = getattr(function, "__module__", "?")
    return f"{module}:{getattr(function, '__qualname__', type(function).__name__)}"


OPENAI_KEYS = frozenset(
    {
        "kind",
        "base_url",
        "model",
        "api_key_env",
        "timeout",
        "retries",
        "concurrency",
        "rate_limit_per_s",
        "max_tokens",
        "temperature",
    }
)
CALLABLE_KEYS = frozenset({"kind", "function", "mode"})


_INTEGERS = ("retries", "concurrency", "max_tokens")
_NUMBERS = ("timeout", "rate_limit_per_s", "temperature")


def check_numbers(config: Mapping[str, Any]) -> None:
    """Integers and numbers of an openai target config have the right types."""
    for key in (*_INTEGERS, *_NUMBERS):
        value = config.get(key)
        if value is None:
            continue
        wanted = int if key in _INTEGERS else (int, float)
        if isinstance(value, bool) or not isinstance(value, wanted):
            kind = "an integer" if key in _INTEGERS else "a number"
            raise InvalidInputError(f"target.{key} must be {kind}, not {value!r}", field=key)


def check_keys(config: Mapping[str, Any], allowed: frozenset[str], kind: str) -> None:
    """No option outside ``allowed``."""
    unknown = sorted(set(config) - allowed)
    if unknown:
        raise InvalidInputError(
            f"unknown option(s) {unknown} for a {kind} target; valid: {sorted(allowed)}",
            field="target",
        )
