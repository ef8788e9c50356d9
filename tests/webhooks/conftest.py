"""Webhook fixtures: a receiver on loopback, a fake clock; every backend.

Every test here runs on each metadata store backend (SQLite, and PostgreSQL
unless ``CHARTER_TEST_BACKENDS`` says otherwise): the outbox's compare-and-set
steps are exactly what differs between them.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from _postgres import selected_backends
from webhooks._support import Clock, Receiver


@pytest.fixture(params=selected_backends())
def backend(request: pytest.FixtureRequest) -> str:
    """Each selected backend in turn."""
    return str(request.param)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A running receiver; stopped after the test."""
    r = Receiver()
    r.thread.start()
    yield r
    r.close()


@pytest.fixture
def clock() -> Clock:
    """A fake clock starting at 2026-03-03T12:00Z."""
    return Clock()
