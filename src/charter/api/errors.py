"""The one place errors become HTTP responses.

Every error leaves the API as ``{"error": {"code", "message", "details"}}``: the
same body as the CLI's ``--json`` errors, with a stable ``code``. The status
comes from :data:`STATUS`, by the error's class (the nearest class listed).

Choices worth stating:

- ``gate_refused`` is **409 Conflict**: the request is well-formed, but the
  version's current evidence conflicts with the policy; it can succeed later
  (after approvals or an amendment) without changing the request. Likewise
  ``immutable`` (already published) and ``conflict`` (a concurrent move won).
- ``invalid_input`` and ``bump_refused`` are **422**: the values sent are wrong.
  A body that is not JSON at all is **400**, a wrong ``Content-Type`` **415**, an
  oversized body **413** — all with code ``invalid_input`` and the reason.
- ``storage`` is **503** (the database or object store is unavailable); ledger,
  integrity and home errors are **500**: the server's state, not the request.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from charter.api.routes import TEXT
from charter.domain.errors import (
    AlreadyExistsError,
    BumpRefusedError,
    CharterError,
    ConflictError,
    ForbiddenError,
    GateRefusedError,
    HomeError,
    ImmutableError,
    IntegrityError,
    InvalidInputError,
    LedgerError,
    NotFoundError,
    StorageError,
    UnauthorizedError,
)

__all__ = ["STATUS", "error_response", "install_error_handlers", "status_of"]

log = logging.getLogger("charter.api")

STATUS: dict[type[CharterError], int] = {
    UnauthorizedError: 401,
    ForbiddenError: 403,
    NotFoundError: 404,
    AlreadyExistsError: 409,
    ConflictError: 409,
    ImmutableError: 409,
    GateRefusedError: 409,
    InvalidInputError: 422,
    BumpRefusedError: 422,
    IntegrityError: 500,
    LedgerError: 500,
    HomeError: 500,
    StorageError: 503,
    CharterError: 400,
}
"""HTTP status per error class; subclasses take their nearest listed ancestor's."""

_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "invalid_input",
               415: "invalid_input", 400: "invalid_input"}  # fmt: skip


def status_of(error: CharterError) -> int:
    """The HTTP status of ``error`` (see :data:`STATUS`)."""
    for cls in type(error).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 400


def error_response(
    status: int, code: str, message: str, details: dict[str, Any] | None = None
) -> Response:
    """The error body every failure of the API returns."""
    body = {"error": {"code": code, "message": message, "details": details or {}}}
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    try:
        content = json.dumps(body, default=str, ensure_ascii=False).encode()
    except UnicodeEncodeError:  # an unpaired surrogate the client sent, quoted back: escape
        content = json.dumps(body, default=str).encode()
    return Response(
        content,
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


def _field(loc: tuple[Any, ...]) -> str:
    parts = [p for p in loc if p not in ("body", "query", "path", "header")]
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(request)"


async def _charter(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, CharterError)
    return error_response(status_of(exc), exc.code, exc.message, exc.details)


def _say(error: Any) -> str:
    """Pydantic's message, except for the one pattern every text parameter has."""
    if (
        error.get("type") == "string_pattern_mismatch"
        and error.get("ctx", {}).get("pattern") == TEXT
    ):
        return "text may not contain NUL characters"
    return str(error.get("msg", ""))


async def _validation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    if any(e.get("type") == "json_invalid" for e in errors):
        return error_response(400, "invalid_input", "the request body is not valid JSON")
    problems = [{"field": _field(tuple(e.get("loc", ()))), "message": _say(e)} for e in errors]
    first = problems[0] if problems else {"field": "(request)", "message": "invalid"}
    message = f"invalid request: {first['field']}: {first['message']}"
    return error_response(
        422, "invalid_input", message, {"field": first["field"], "problems": problems}
    )


async def _http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    message = str(exc.detail) if exc.detail else "request failed"
    if exc.status_code == 404:
        message = f"no such endpoint: {request.method} {request.url.path}"
    response = error_response(exc.status_code, code, message)
    for key, value in (exc.headers or {}).items():
        response.headers[key] = value
    return response


async def _bug(request: Request, exc: Exception) -> Response:
    log.exception("internal error on %s %s", request.method, request.url.path)
    return error_response(
        500, "internal", f"internal error: {type(exc).__name__} (this is a bug in Charter)"
    )


def install_error_handlers(app: FastAPI) -> None:
    """Route every error of ``app`` through :func:`error_response`."""
    app.add_exception_handler(CharterError, _charter)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(Exception, _bug)
