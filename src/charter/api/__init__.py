"""The REST API: ``create_app(settings)`` builds the FastAPI application.

Routes live under ``/api/v1`` (OpenAPI at ``/api/v1/openapi.json``); see
:mod:`charter.api.app`. The import is lazy so that ``charter.api.auth`` and
friends can be used by the web UI without building an app.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["create_app"]

if TYPE_CHECKING:
    from charter.api.app import create_app


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from charter.api.app import create_app

        return create_app
    raise AttributeError(f"module 'charter.api' has no attribute {name!r}")
