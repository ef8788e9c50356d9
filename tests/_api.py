"""Helpers for the API tests: a real uvicorn server on loopback, users of every role."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import uvicorn

from charter.api import create_app
from charter.service import Registry
from charter.settings import Settings


@contextmanager
def serving(settings: Settings, registry: Registry) -> Iterator[str]:
    """Serve ``registry`` on a free loopback port; yield its base URL."""
    app = create_app(settings, registry=registry)
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_level="warning", access_log=False, lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="charter-test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.002)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


ROLES = ("viewer", "contributor", "approver", "admin")


@dataclass(frozen=True)
class Team:
    """Tokens of one user per role (``admin`` is alice, who initialised the home)."""

    tokens: dict[str, str]

    def headers(self, role: str) -> dict[str, str]:
        """``Authorization`` for ``role``'s user."""
        return {"Authorization": f"Bearer {self.tokens[role]}"}


def make_team(registry: Registry) -> Team:
    """bob (viewer), carol (contributor), dave (approver) and alice (admin), with tokens."""
    users = {"viewer": "bob", "contributor": "carol", "approver": "dave", "admin": "alice"}
    tokens = {}
    for role, user in users.items():
        if user != "alice":
            registry.add_user(name=user, role=role)
        tokens[role] = registry.create_token(user=user, label=f"{role} in tests")[0]
    return Team(tokens)


def blob_count(registry: Registry) -> int:
    """Blobs in the artifact store (to prove bad input stored nothing)."""
    return len(list(registry.artifacts.iter_digests()))


def snapshot(registry: Registry) -> tuple[int, int]:
    """(ledger size, blob count): what any change would move."""
    return len(registry.audit_log()), blob_count(registry)
