"""Helpers of the webhook tests: a real HTTP receiver on loopback, a fake clock, a deployer."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from charter.domain.profile import parse_document
from charter.service import Registry

PROFILE = """
evaluations: [{name: accuracy, value: 0.91}]
"""


@dataclass(frozen=True)
class Received:
    """One request the receiver got."""

    path: str
    headers: dict[str, str]
    body: bytes


class Receiver:
    """A webhook receiver on 127.0.0.1: records every POST, answers from a script.

    ``script`` holds the status codes of the next answers (then 200). With
    ``hold`` set, each request waits for ``release`` before answering, so a test
    can show that nothing else waits for it. ``timeline`` interleaves what the
    receiver did with what the test notes, in order.
    """

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.script: list[int] = []
        self.default_status = 200
        self.hold = False
        self.release = threading.Event()
        self.arrived = threading.Event()
        self.timeline: list[str] = []
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}/hook"

    def note(self, what: str) -> None:
        with self.lock:
            self.timeline.append(what)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                got = Received(self.path, dict(self.headers.items()), body)
                with receiver.lock:
                    receiver.requests.append(got)
                    receiver.timeline.append(f"received {got.headers['Charter-Delivery']}")
                    status = receiver.script.pop(0) if receiver.script else receiver.default_status
                receiver.arrived.set()
                if receiver.hold:
                    receiver.release.wait(10)
                receiver.note(f"answered {got.headers['Charter-Delivery']}")
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        return Handler

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


class Clock:
    """A settable UTC clock for the dispatcher: backoff is tested without sleeping."""

    def __init__(self) -> None:
        self.now = datetime(2026, 3, 3, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def deploy(reg: Registry, artifact: Path, *, model: str = "m", version: str = "1.0.0") -> None:
    """Create ``model`` (once) and register and publish ``version`` of it."""
    if model not in {m.name for m in reg.list_models()}:
        reg.create_model(name=model)
    reg.register(model=model, path=artifact, version=version, profile=parse_document(PROFILE))
    reg.publish(model=model, version=version)
