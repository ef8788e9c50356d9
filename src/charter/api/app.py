"""The FastAPI application: ``create_app(settings)``, served by ``charter serve``.

One server-wide :class:`~charter.service.Registry` lives in ``app.state.registry``;
each request acts through a cheap view of it as its authenticated user
(:mod:`charter.api.auth`). Imports stay light: evaluators, pandas, matplotlib and
the card renderer load on first use, not at start.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from charter import __version__
from charter.api.errors import install_error_handlers
from charter.api.limits import RequestLimits
from charter.api.routes import (
    ERROR_SCHEMA,
    blobs,
    gates,
    hooks,
    ledger,
    models,
    profiles,
    versions,
)
from charter.api.schemas import ErrorOut
from charter.service import Registry
from charter.settings import Settings

__all__ = ["API_PREFIX", "ROUTERS", "create_app"]

API_PREFIX = "/api/v1"
#: Every router of the API, mounted under :data:`API_PREFIX`. Routes are matched
#: in order, one by one: the hot ones (registration, blobs) come first.
ROUTERS = tuple(m.router for m in (versions, blobs, models, profiles, gates, ledger, hooks))
log = logging.getLogger("charter.api")


def _optional(module: str, name: str) -> Callable[[FastAPI], Any] | None:
    """``module.name`` when that part of the server is installed (web UI, metrics…)."""
    try:
        found = importlib.import_module(module)
    except ImportError as exc:
        if exc.name and module.startswith(exc.name):
            return None
        raise
    hook = getattr(found, name, None)
    return hook if callable(hook) else None


def _hook(name: str) -> Callable[[FastAPI], Any] | None:
    for module in ("charter.api.metrics", "charter.webhooks"):
        found = _optional(module, name)
        if found is not None:
            return found
    return None


def create_app(settings: Settings, *, registry: Registry | None = None) -> FastAPI:
    """Build the API (and, when installed, the web UI and metrics) for one registry.

    Args:
        settings: the server's settings (home or database + artifact store).
        registry: an open registry to serve (tests); default: open ``settings``'s.
            A registry passed in is not closed at shutdown.

    Returns:
        The application, with ``app.state.registry`` and ``app.state.settings``.
    """
    owned = registry is None
    served = registry if registry is not None else Registry(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        start, stop = _hook("start_dispatcher"), _hook("stop_dispatcher")
        if start is not None:
            await _maybe_await(start(app))
        try:
            yield
        finally:
            if stop is not None:
                await _maybe_await(stop(app))
            if owned:
                served.close()

    app = FastAPI(
        title="Charter",
        version=__version__,
        description="A model registry that gates every version on its safety profile.",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.registry = served
    app.state.settings = settings
    install_error_handlers(app)
    _document_errors(app)
    for router in ROUTERS:
        app.include_router(router, prefix=API_PREFIX)
    app.add_middleware(RequestLimits, max_body=settings.max_request_bytes, prefix=API_PREFIX)
    for where, name in (("charter.api.metrics", "install_metrics"), ("charter.web", "mount")):
        hook = _optional(where, name)
        if hook is not None:
            hook(app)
    return app


def _document_errors(app: FastAPI) -> None:
    """Add the error body the routes refer to (:data:`ERRORS`) to the OpenAPI schema."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            found = ErrorOut.model_json_schema(ref_template="#/components/schemas/{model}")
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            components.update(found.pop("$defs", {}))
            components[ERROR_SCHEMA] = found
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


async def _maybe_await(value: Any) -> None:
    if hasattr(value, "__await__"):
        await value
