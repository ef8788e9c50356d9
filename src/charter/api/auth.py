"""Who a request acts as: bearer tokens, role checks, the per-request registry view.

The principal comes from ``request.state.principal`` when a layer in front set it
(the web UI's cookie session does), else from ``Authorization: Bearer <token>``.
Every endpoint depends on :func:`require` with the least role it needs; the
registry it gets acts as the authenticated user, so the ledger's actor is always
that user and never a name the client sent.

The check runs before the request body is validated (so a caller without the
role learns nothing from validation errors) and on the event loop: it is one
indexed read, cheaper than the extra worker-thread hop a sync dependency would
cost every request (the endpoint itself runs in the thread pool).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Request

from charter.domain.access import Principal
from charter.domain.errors import ForbiddenError, UnauthorizedError
from charter.domain.stages import Role
from charter.service import Registry

__all__ = ["current_principal", "principal_from_token", "require", "server_registry"]


def server_registry(request: Request) -> Registry:
    """The server-wide registry (``app.state.registry``)."""
    registry: Registry = request.app.state.registry
    return registry


def principal_from_token(request: Request, token: str) -> Principal:
    """Authenticate ``token`` against the server's registry.

    Raises:
        UnauthorizedError: malformed, unknown, expired or revoked token.
    """
    return server_registry(request).authenticate(token=token)


def current_principal(request: Request) -> Principal:
    """The principal of this request (set by a front layer, or from the bearer token).

    Raises:
        UnauthorizedError: no credentials, or bad ones.
    """
    found = getattr(request.state, "principal", None)
    if isinstance(found, Principal):
        return found
    headers = request.headers.getlist("authorization")
    if not headers:
        raise UnauthorizedError(
            "authentication required: send Authorization: Bearer <token> "
            "(create one with `charter token create USER`)"
        )
    if len(headers) > 1:
        # Proxies and frameworks disagree on which of several wins: refuse, not guess.
        raise UnauthorizedError(
            f"{len(headers)} Authorization headers were sent: send exactly one, Bearer <token>"
        )
    header = headers[0]
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise UnauthorizedError("the Authorization header must be: Bearer <token>")
    principal = principal_from_token(request, token.strip())
    request.state.principal = principal
    return principal


def require(role: Role) -> Callable[[Request], Awaitable[Registry]]:
    """A dependency: the registry acting as the principal, who must hold ``role``.

    Raises:
        UnauthorizedError: no valid credentials. ForbiddenError: a lesser role.
    """

    async def dependency(request: Request) -> Registry:
        principal = current_principal(request)
        if not principal.role.allows(role):
            raise ForbiddenError(
                f"{principal.user} may not {request.method} {request.url.path}: it needs "
                f"the {role.value} role, {principal.user} has {principal.role.value}",
                user=principal.user,
                needed=role.value,
            )
        return server_registry(request).as_user(principal.user)

    dependency.__name__ = f"require_{role.value}"
    return dependency
