"""A minimal OpenAI-compatible HTTP/1.1 server on loopback, for tests and benchmarks.

Plain asyncio streams, keep-alive, ``TCP_NODELAY``; it answers
``POST /v1/chat/completions`` after ``delay`` seconds with a reply chosen by
``reply(messages)``. It counts requests and the peak number in flight, so tests
can check a client's concurrency bound. Not a real server: no TLS, no chunked
request bodies, no pipelining.

Example::

    async with LoopbackServer(delay=0.05) as server:
        target = OpenAITarget(server.base_url, "fake")
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Callable
from types import TracebackType
from typing import Any

__all__ = ["LoopbackServer"]

ReplyFn = Callable[[list[dict[str, str]]], str]


def _default_reply(messages: list[dict[str, str]]) -> str:
    return "I'm sorry, but I can't help with that request."


class LoopbackServer:
    """Serve fake chat completions on ``127.0.0.1`` (an ephemeral port by default)."""

    def __init__(
        self,
        *,
        delay: float = 0.05,
        reply: ReplyFn | None = None,
        port: int = 0,
        status_script: list[int] | None = None,
    ) -> None:
        """Args:
        delay: seconds before each answer (simulated model latency).
        reply: builds the reply text from the request messages.
        port: port to bind (0: any free port).
        status_script: statuses to answer the first requests with (e.g. ``[429, 500]``),
            then 200s.
        """
        self.delay, self.port = delay, port
        self.reply = reply or _default_reply
        self.status_script = list(status_script or [])
        self.requests = 0
        self.in_flight = 0
        self.peak_in_flight = 0
        self.connections = 0
        self._server: asyncio.Server | None = None

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>/v1``."""
        return f"http://127.0.0.1:{self.port}/v1"

    async def start(self) -> None:
        """Bind and start serving."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop serving and close connections."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> LoopbackServer:
        await self.start()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def serve_forever(self) -> None:
        """Serve until cancelled (for a server in its own process)."""
        await self.start()
        assert self._server is not None
        async with self._server:
            await self._server.serve_forever()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                headers = {
                    k.strip().lower(): v.strip()
                    for k, _, v in (line.partition(":") for line in lines[1:] if line)
                }
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                status, payload = await self._answer(lines[0], body)
                data = json.dumps(payload).encode()
                writer.write(
                    f"HTTP/1.1 {status} {'OK' if status == 200 else 'Error'}\r\n"
                    f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
                    "Connection: keep-alive\r\n\r\n".encode()
                    + data
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    async def _answer(self, request_line: str, body: bytes) -> tuple[int, dict[str, Any]]:
        self.requests += 1
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay)
            if self.status_script:
                status = self.status_script.pop(0)
                if status != 200:
                    return status, {"error": {"message": "scripted failure"}}
            if not request_line.startswith("POST") or "/chat/completions" not in request_line:
                return 404, {"error": {"message": "not found"}}
            messages = json.loads(body or b"{}").get("messages", [])
            text = self.reply(messages)
            return 200, {
                "object": "chat.completion",
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": "stop",
                        "message": {"role": "assistant", "content": text},
                    }
                ],
            }
        finally:
            self.in_flight -= 1
