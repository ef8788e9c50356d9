"""Per-request plumbing: who is logged in, CSRF checks, responses, and error pages.

Every page depends on :func:`viewer`, which decrypts the session cookie and
re-authenticates its token on *every* request, so revocation takes effect at
once. Every POST also depends on :func:`csrf_checked`. Errors are turned into
HTML in exactly one place, :class:`WebRoute` (the API's JSON error handlers
never see the web's requests).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field, replace
from typing import Annotated, Any
from urllib.parse import urlencode, urlsplit

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute

from charter.domain.access import Principal
from charter.domain.errors import (
    CharterError,
    ConflictError,
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
    UnauthorizedError,
)
from charter.domain.stages import Role
from charter.service import Registry
from charter.web._render import PREFIX, render, urls
from charter.web._session import COOKIE, Session, SessionCodec, server_secret

__all__ = [
    "Actor",
    "Anonymous",
    "Checked",
    "CsrfRejectedError",
    "LoginRequiredError",
    "Viewer",
    "WebContext",
    "WebRoute",
    "page",
    "redirect",
    "safe_next",
]

MAX_FORM_BYTES = 64 * 1024  # the largest form is a sign-off comment
# Inline SVG charts carry style attributes, hence 'unsafe-inline' for styles only;
# no inline script runs anywhere (htmx is a same-origin file).
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-src 'self'; frame-ancestors 'self'"
)
_HEADERS = {
    "Content-Security-Policy": _CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


class LoginRequiredError(Exception):
    """No valid session: send the user to the login page (with a message)."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or "log in to continue")
        self.message = message


class CsrfRejectedError(Exception):
    """A POST without the session's CSRF token, or from another origin."""


@dataclass
class WebContext:
    """The request, the server-wide registry, and the logged-in user."""

    request: Request
    registry: Registry
    session: Session
    principal: Principal | None = None
    cookie_out: Session | None = field(default=None)

    @property
    def acting(self) -> Registry:
        """The registry acting as the logged-in user (recorded in the ledger)."""
        if self.principal is None:
            raise LoginRequiredError()
        return self.registry.as_user(self.principal.user)

    def can(self, role: str) -> bool:
        """Whether the logged-in user's role includes ``role``."""
        return self.principal is not None and self.principal.role.allows(Role(role))

    @property
    def is_htmx(self) -> bool:
        """Whether htmx made the request (it wants a fragment, not a page)."""
        return self.request.headers.get("hx-request") == "true"


def _codec(request: Request) -> SessionCodec:
    state = request.app.state
    codec: SessionCodec | None = getattr(state, "charter_web_codec", None)
    if codec is None:
        secret = getattr(state, "charter_web_secret", None) or server_secret(_registry(request))
        codec = state.charter_web_codec = SessionCodec(secret)
    return codec


def _registry(request: Request) -> Registry:
    registry: Registry = request.app.state.registry
    return registry


def anonymous(request: Request) -> WebContext:
    """The session as it is (a fresh anonymous one when there is none)."""
    found = _codec(request).loads(request.cookies.get(COOKIE))
    session = found or Session.fresh()
    ctx = WebContext(request=request, registry=_registry(request), session=session)
    if found is None:
        ctx.cookie_out = session
    return ctx


def _authenticated(ctx: WebContext) -> WebContext:
    if ctx.session.token is None:
        raise LoginRequiredError()
    try:
        ctx.principal = ctx.registry.authenticate(token=ctx.session.token)
    except UnauthorizedError as exc:
        raise LoginRequiredError(f"You were logged out: {exc.message}.") from None
    return ctx


def viewer(ctx: Annotated[WebContext, Depends(anonymous)]) -> WebContext:
    """The logged-in user, re-authenticated now.

    Raises:
        LoginRequiredError: no token in the session, or it is no longer valid.
    """
    return _authenticated(ctx)


async def csrf_checked(
    request: Request, ctx: Annotated[WebContext, Depends(anonymous)]
) -> WebContext:
    """Refuse a POST whose CSRF token is missing or wrong, or that comes from elsewhere.

    Raises:
        CsrfRejectedError: the request must not change anything.
        InvalidInputError: the body is larger than any form of these pages.
    """
    if int(request.headers.get("content-length") or 0) > MAX_FORM_BYTES:
        raise InvalidInputError(f"a form is at most {MAX_FORM_BYTES // 1024} KiB", field="body")
    origin = request.headers.get("origin")
    if origin and origin != "null" and urlsplit(origin).netloc != request.headers.get("host"):
        raise CsrfRejectedError("cross-origin request")
    presented = request.headers.get("x-csrf-token")
    if not presented:
        form = await request.form()
        value = form.get("csrf_token")
        presented = value if isinstance(value, str) else None
    if not ctx.session.csrf_matches(presented):
        raise CsrfRejectedError("missing or wrong CSRF token")
    return ctx


def actor(ctx: Annotated[WebContext, Depends(csrf_checked)]) -> WebContext:
    """A logged-in user's POST: CSRF checked first, then the token re-authenticated."""
    return _authenticated(ctx)


Anonymous = Annotated[WebContext, Depends(anonymous)]
"""A page anyone may see (the login form)."""
Viewer = Annotated[WebContext, Depends(viewer)]
"""A page for logged-in users."""
Checked = Annotated[WebContext, Depends(csrf_checked)]
"""A POST of the login form (CSRF checked, nobody logged in yet)."""
Actor = Annotated[WebContext, Depends(actor)]
"""A logged-in user's POST."""


def _finish(ctx: WebContext, response: Response) -> Response:
    if ctx.cookie_out is not None:
        secure = ctx.request.url.scheme == "https"
        response.set_cookie(
            COOKIE,
            _codec(ctx.request).dumps(ctx.cookie_out),
            max_age=_codec(ctx.request).max_age_s,
            path="/",
            httponly=True,
            samesite="lax",
            secure=secure,
        )
    return response


def page(ctx: WebContext, template: str, status: int = 200, **values: Any) -> Response:
    """Render a page (or an htmx fragment) for the logged-in user.

    A flash message waiting in the session is shown once and then cleared.
    """
    flash = ctx.session.flash
    if flash is not None:
        ctx.cookie_out = replace(ctx.cookie_out or ctx.session, flash=None)
    body = render(
        template,
        {
            "principal": ctx.principal,
            "csrf": ctx.session.csrf,
            "flash": flash,
            "can_approve": ctx.can("approver"),
            "can_contribute": ctx.can("contributor"),
            "path": ctx.request.url.path,
            **values,
        },
    )
    return _finish(ctx, HTMLResponse(body, status_code=status))


def redirect(ctx: WebContext, url: str, *, flash: tuple[str, str] | None = None) -> Response:
    """A 303 redirect (or ``HX-Redirect`` for htmx), optionally carrying a message."""
    if flash is not None:
        ctx.cookie_out = (ctx.cookie_out or ctx.session).with_flash(*flash)
    if ctx.is_htmx:
        return _finish(ctx, Response(status_code=200, headers={"HX-Redirect": url}))
    return _finish(ctx, RedirectResponse(url, status_code=303))


def safe_next(target: str | None) -> str:
    """Where to go after login: only a path of this UI (no open redirects)."""
    if target and target.startswith(f"{PREFIX}/") and not target.startswith("//"):
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc and "\\" not in target:
            return target
    return urls.home()


def _error_page(request: Request, status: int, title: str, message: str) -> Response:
    ctx = anonymous(request)
    ctx.principal = None
    return page(ctx, "error.html", status=status, title=title, message=message)


def _login_redirect(request: Request, exc: LoginRequiredError) -> Response:
    ctx = anonymous(request)
    if ctx.session.token is not None:
        ctx.cookie_out = Session.fresh()  # the token is no longer valid: forget it
    if exc.message:
        ctx.cookie_out = (ctx.cookie_out or ctx.session).with_flash("error", exc.message)
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    url = f"{PREFIX}/login?{urlencode({'next': target})}"
    return redirect(ctx, url)


class WebRoute(APIRoute):
    """A route whose errors become HTML pages, and whose responses get security headers."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """Wrap FastAPI's handler: map errors to pages in this one place."""
        handler = super().get_route_handler()

        async def run(request: Request) -> Response:
            try:
                response = await handler(request)
            except LoginRequiredError as exc:
                response = _login_redirect(request, exc)
            except CsrfRejectedError as exc:
                response = _error_page(
                    request, 403, "Request refused", f"{exc}: reload the page and try again."
                )
            except CharterError as exc:
                status, title = _status(exc)
                response = _error_page(request, status, title, exc.message)
            except RequestValidationError as exc:
                where = "; ".join(
                    f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}"
                    for e in exc.errors()
                )
                response = _error_page(request, 400, "Bad request", where)
            for key, value in _HEADERS.items():
                response.headers.setdefault(key, value)
            return response

        return run


def _status(exc: CharterError) -> tuple[int, str]:
    if isinstance(exc, NotFoundError):
        return 404, "Not found"
    if isinstance(exc, ForbiddenError):
        return 403, "Not allowed"
    if isinstance(exc, ConflictError):
        return 409, "Conflict"
    return 400, "Refused"
