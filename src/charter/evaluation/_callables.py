"""Finding and inspecting the Python functions used as targets (``"module:function"``)."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from typing import Any

from charter.domain.errors import InvalidInputError

__all__ = ["accepts_system", "qualname", "resolve", "takes_messages"]


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
