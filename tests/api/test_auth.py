"""Every endpoint checks a role; tokens that are missing, bad, expired or revoked get 401."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import update

from _api import ROLES, Team, snapshot
from charter.api.app import ROUTERS
from charter.service import Registry
from charter.store import schema as t


def _needed(route: APIRoute) -> set[str]:
    found: set[str] = set()
    pending = list(route.dependant.dependencies)
    while pending:
        dep = pending.pop()
        name = getattr(dep.call, "__name__", "")
        if name.startswith("require_"):
            found.add(name.removeprefix("require_"))
        pending.extend(dep.dependencies)
    return found


def _api_routes(app: FastAPI) -> list[tuple[str, str, str]]:
    """(method, concrete path, role needed) of every API endpoint."""
    out = []
    for router in ROUTERS:
        for route in router.routes:
            assert isinstance(route, APIRoute)
            needed = _needed(route)
            assert len(needed) == 1, f"{route.path} must check exactly one role, checks {needed}"
            path = re.sub(r"\{[^}]+\}", "x", route.path)
            out += [(method, path, next(iter(needed))) for method in sorted(route.methods)]
    return out


def test_every_endpoint_checks_a_role_and_reads_are_viewer(app: FastAPI) -> None:
    routes = _api_routes(app)
    assert len(routes) > 50
    for method, path, role in routes:
        if path.startswith("/webhooks"):  # URLs may hold secrets: admins only, reads too
            assert role == "admin", (method, path)
        elif method in ("GET", "HEAD"):
            assert role == "viewer", (method, path)
        elif path.startswith("/users") or path == "/policy":
            assert role == "admin", (method, path)


@pytest.mark.parametrize(
    ("method", "path", "role"),
    [
        ("POST", "/models", "contributor"),
        ("POST", "/models/x/versions", "contributor"),
        ("POST", "/models/x/versions/x/amendments", "contributor"),
        ("POST", "/models/x/versions/x/evaluations", "contributor"),
        ("POST", "/models/x/versions/x/approvals", "approver"),
        ("POST", "/models/x/versions/x/deprecate", "approver"),
        ("PUT", "/users/x", "admin"),
        ("PUT", "/policy", "admin"),
        ("POST", "/models/x/stages/x/rollback", "contributor"),  # forcing needs admin (service)
        ("PUT", "/blobs/x", "contributor"),
    ],
)
def test_roles_of_writes(app: FastAPI, method: str, path: str, role: str) -> None:
    assert (method, path, role) in _api_routes(app)


def _call(client: TestClient, method: str, path: str, headers: dict[str, str]) -> Any:
    return client.request(method, path, headers=headers)


def test_the_role_matrix(app: FastAPI, client: TestClient, team: Team, registry: Registry) -> None:
    """Each endpoint x each role: below its role 403, no credentials 401, else neither."""
    before = snapshot(registry)
    order = list(ROLES)
    for method, path, needed in _api_routes(app):
        response = _call(client, method, path, {})
        assert response.status_code == 401, (method, path, response.text)
        if method != "HEAD":
            assert response.json()["error"]["code"] == "unauthorized"
        for role in ROLES:
            response = _call(client, method, path, team.headers(role))
            if order.index(role) < order.index(needed):
                body = response.json()
                assert response.status_code == 403, (method, path, role, response.text)
                if method != "HEAD":
                    assert body["error"]["code"] == "forbidden"
                    assert needed in body["error"]["message"]
            else:
                assert response.status_code not in (401, 403), (method, path, role, body)
    # Only the idempotent maintenance calls could have changed anything: a checkpoint.
    after = snapshot(registry)
    assert after[1] == before[1]


@pytest.mark.parametrize(
    "header",
    ["", "Bearer", "Bearer ", "Basic YWxpY2U6cHc=", "Bearer chr_nothex_" + "a" * 43, "Bearer x y"],
)
def test_bad_credentials_are_401(client: TestClient, header: str) -> None:
    response = client.get("/models", headers={"Authorization": header})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.json()["error"]["code"] == "unauthorized"


def test_revoked_and_expired_tokens_are_401_and_change_nothing(
    client: TestClient, registry: Registry, team: Team
) -> None:
    token, info = registry.create_token(user="alice", expires="1h")
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/me", headers=headers).json()["user"] == "alice"
    registry.revoke_token(token_id=info.token_id)
    before = snapshot(registry)
    response = client.post("/models", json={"name": "m"}, headers=headers)
    assert response.status_code == 401 and "revoked" in response.json()["error"]["message"]
    assert snapshot(registry) == before
    token2, info2 = registry.create_token(user="bob", expires="1h")
    with registry.store.write() as tx:  # expire it: rewind its expiry
        tx.conn.execute(
            update(t.api_tokens)
            .where(t.api_tokens.c.token_id == info2.token_id)
            .values(expires_at="2000-01-01T00:00:00.000000Z")
        )
    response = client.get("/models", headers={"Authorization": f"Bearer {token2}"})
    assert response.status_code == 401 and "expired" in response.json()["error"]["message"]


def test_the_ledger_actor_is_the_token_user_never_a_client_name(
    client: TestClient, registry: Registry, team: Team
) -> None:
    response = client.post(
        "/models",
        json={"name": "m", "owner": "mallory"},
        headers={**team.headers("contributor"), "X-Charter-User": "mallory"},
    )
    assert response.status_code == 201
    assert response.json()["created_by"] == "carol"
    assert registry.audit_log()[-1].actor == "carol"
    # a body field naming someone else is refused, not believed
    response = client.post(
        "/models", json={"name": "n", "created_by": "mallory"}, headers=team.headers("admin")
    )
    assert response.status_code == 422
