"""Request limits of ``/api/v1``, checked before any route runs.

JSON endpoints take ``application/json`` bodies of at most
``Settings.max_request_bytes`` (read here, bounded, then replayed to the app);
blob uploads take ``application/octet-stream`` and stream through untouched.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from charter.api.errors import error_response

__all__ = ["RequestLimits"]

_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})


class RequestLimits:
    """ASGI middleware: content types and body sizes of API requests."""

    def __init__(self, app: ASGIApp, *, max_body: int, prefix: str = "/api/v1") -> None:
        self.app = app
        self.max_body = max_body
        self.prefix = prefix
        self.blobs = prefix + "/blobs/"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if (
            scope["type"] != "http"
            or scope["method"] not in _WITH_BODY
            or not path.startswith(self.prefix)
        ):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        ctype = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        length = headers.get("content-length")
        chunked = "chunked" in headers.get("transfer-encoding", "")
        has_body = chunked or (length is not None and length != "0")
        if path.startswith(self.blobs) and scope["method"] == "PUT":
            if has_body and ctype != "application/octet-stream":
                await self._refuse(
                    scope, receive, send, 415, "upload blobs as application/octet-stream"
                )
                return
            await self.app(scope, receive, send)
            return
        if has_body and ctype != "application/json" and not ctype.endswith("+json"):
            message = f"send JSON (Content-Type: application/json), not {ctype or 'none'}"
            await self._refuse(scope, receive, send, 415, message)
            return
        if length is not None and (not length.isdigit() or int(length) > self.max_body):
            await self._refuse(scope, receive, send, 413, self._too_large())
            return
        body = bytearray()
        more = True
        while more:
            received = await receive()
            if received["type"] == "http.disconnect":
                return
            body += received.get("body", b"")
            more = received.get("more_body", False)
            if len(body) > self.max_body:
                await self._refuse(scope, receive, send, 413, self._too_large())
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    def _too_large(self) -> str:
        return f"the request body exceeds {self.max_body} bytes (CHARTER_MAX_REQUEST_BYTES)"

    async def _refuse(
        self, scope: Scope, receive: Receive, send: Send, status: int, message: str
    ) -> None:
        response = error_response(status, "invalid_input", message)
        await response(scope, receive, send)
