"""Logging in with an API token, and out."""

from __future__ import annotations

from fastapi import APIRouter, Form, Query
from fastapi.responses import Response

from charter.domain.errors import UnauthorizedError
from charter.web._deps import Anonymous, Checked, WebRoute, page, redirect, safe_next
from charter.web._render import PREFIX
from charter.web._session import Session

__all__ = ["router"]

router = APIRouter(route_class=WebRoute)


@router.get(f"{PREFIX}/login")
def login_form(ctx: Anonymous, next: str = Query("")) -> Response:
    """The login form (it issues an anonymous session, so the form has a CSRF token)."""
    return page(ctx, "login.html", next=safe_next(next), error=None)


@router.post(f"{PREFIX}/login")
def login(ctx: Checked, token: str = Form(""), next: str = Form("")) -> Response:
    """Check the token and start a session holding it (with a new CSRF secret)."""
    try:
        principal = ctx.registry.authenticate(token=token)
    except UnauthorizedError:
        # Which check failed (unknown, revoked, expired) is not told to a guesser.
        message = "That token is not valid (unknown, expired or revoked)."
        return page(ctx, "login.html", status=401, next=safe_next(next), error=message)
    ctx.cookie_out = Session.fresh(token=token.strip())
    welcome = f"Logged in as {principal.user} ({principal.role.value})."
    return redirect(ctx, safe_next(next), flash=("ok", welcome))


@router.post(f"{PREFIX}/logout")
def logout(ctx: Checked) -> Response:
    """Forget the token: a new anonymous session replaces the old one."""
    ctx.cookie_out = Session.fresh()
    return redirect(ctx, f"{PREFIX}/login", flash=("ok", "Logged out."))
