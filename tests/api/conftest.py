"""Fixtures for the REST API tests: an app on a fresh registry, users of every role."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from _api import Team, make_team
from charter.api import create_app
from charter.service import Registry
from charter.settings import Settings


@pytest.fixture
def team(registry: Registry) -> Team:
    """bob (viewer), carol (contributor), dave (approver) and alice (admin), with tokens."""
    return make_team(registry)


@pytest.fixture
def app(settings: Settings, registry: Registry) -> FastAPI:
    """The API serving ``registry``."""
    return create_app(settings, registry=registry)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    """An in-process client of ``app`` (lifespan run), paths relative to ``/api/v1``."""
    with TestClient(app, base_url="http://testserver/api/v1") as test_client:
        yield test_client
