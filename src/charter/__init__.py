"""Charter: a model registry that gates every version on its safety profile.

``charter.open_registry(home)`` returns a :class:`charter.service.Registry`.
The import is lazy so that ``charter.ledger`` (used by auditors offline) does
not pull in the database and artifact layers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["__version__", "guard", "init_registry", "open_registry"]

if TYPE_CHECKING:
    from charter.evaluation.guard import guard
    from charter.sdk import init_registry, open_registry


def __getattr__(name: str) -> Any:
    if name in ("open_registry", "init_registry"):
        from charter import sdk

        return getattr(sdk, name)
    if name == "guard":
        from charter.evaluation.guard import guard

        return guard
    raise AttributeError(f"module 'charter' has no attribute {name!r}")
