"""The web UI: server-rendered pages (Jinja2, htmx for small interactions), under ``/ui``.

:func:`mount` adds the pages to the API's FastAPI app (``charter.api.create_app``
calls it); they use the app's server-wide registry (``app.state.registry``)
and act as the logged-in user. Pages:

- ``/ui/`` models (risk tier, stages, latest versions, gate state, at-risk flags)
- ``/ui/models/NAME`` versions; ``…/lineage`` graph (Graphviz); ``…/history`` stage timeline
- ``/ui/models/NAME/versions/VERSION`` metadata, files, fingerprints, effective
  profile, bias charts, red-team results, gate decisions, sign-offs, model card
- ``/ui/approvals`` versions waiting for sign-off
- ``/ui/ledger`` entries, verification status, a checked inclusion proof per entry
- ``/ui/login`` log in with an API token (``charter token create``)

Example:
    >>> from fastapi import FastAPI  # doctest: +SKIP
    >>> app = FastAPI(); app.state.registry = registry; mount(app)  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

from charter.web import _auth, _ledger, _pages, _version
from charter.web._render import PREFIX

__all__ = ["PREFIX", "mount"]

_STATIC = Path(__file__).parent / "static"


def _home() -> RedirectResponse:
    return RedirectResponse(f"{PREFIX}/", status_code=307)


def mount(app: FastAPI, *, secret: bytes | None = None) -> None:
    """Add the web UI to ``app``.

    Args:
        app: a FastAPI app whose ``state.registry`` is the server-wide registry.
        secret: the secret session cookies are encrypted with; by default
            ``Settings.session_secret`` if set, else derived from the ledger key.

    The registry may be set after mounting (in the app's lifespan): the cookie
    key is derived on the first request.
    """
    app.state.charter_web_secret = secret
    for module in (_auth, _pages, _version, _ledger):
        app.include_router(module.router, include_in_schema=False)
    app.add_api_route(PREFIX, _home, include_in_schema=False)
    if not any(getattr(route, "path", None) == "/" for route in app.router.routes):
        app.add_api_route("/", _home, include_in_schema=False)
    app.mount(f"{PREFIX}/static", StaticFiles(directory=_STATIC), name="charter-web-static")
