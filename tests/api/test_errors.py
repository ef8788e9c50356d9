"""One error body everywhere, one status per error class, and the same classes client-side."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from _api import Team
from charter._client_http import _BY_CODE
from charter.api.errors import STATUS, status_of
from charter.domain import errors as e


def _error(response: object) -> dict[str, object]:
    body = response.json()  # type: ignore[attr-defined]
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return dict(body["error"])


def test_every_error_class_has_a_status_and_a_client_class() -> None:
    classes = [getattr(e, name) for name in e.__all__]
    for cls in classes:
        assert 400 <= status_of(cls("x")) < 600, cls
        assert _BY_CODE[cls.code] is cls, cls
    assert status_of(e.GateRefusedError("x")) == 409
    assert status_of(e.UnauthorizedError("x")) == 401
    assert status_of(e.InvalidInputError("x")) == 422
    assert set(STATUS) >= set(classes)


def test_service_errors_keep_their_code_and_details(client: TestClient, team: Team) -> None:
    admin = team.headers("admin")
    assert client.post("/models", json={"name": "m"}, headers=admin).status_code == 201
    again = client.post("/models", json={"name": "m"}, headers=admin)
    assert again.status_code == 409 and _error(again)["code"] == "already_exists"
    missing = client.get("/models/nope", headers=admin)
    assert missing.status_code == 404
    err = _error(missing)
    assert err["code"] == "not_found" and err["details"] == {"model": "nope"}
    bad = client.post("/models", json={"name": "Bad Name"}, headers=admin)
    assert bad.status_code == 422 and _error(bad)["code"] == "invalid_input"


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "fragment"),
    [
        ("POST", "/models", {"content": b"{nope", "headers": {"content-type": "application/json"}},
         400, "not valid JSON"),
        ("POST", "/models", {"content": b"name=m",
                             "headers": {"content-type": "text/plain"}}, 415, "JSON"),
        ("POST", "/models", {"json": {"name": 3}}, 422, "name"),
        ("POST", "/models", {"json": {"name": "m", "extra": 1}}, 422, "extra"),
        ("POST", "/models", {"json": [1, 2]}, 422, "request"),
        ("GET", "/nowhere", {}, 404, "no such endpoint"),
        ("DELETE", "/models", {}, 405, "Method Not Allowed"),
        ("GET", "/versions", {"params": {"limit": 0}}, 422, "limit"),
        ("GET", "/versions", {"params": {"cursor": "abc"}}, 422, "cursor"),
    ],
)  # fmt: skip
def test_request_errors_share_the_body(
    client: TestClient,
    team: Team,
    method: str,
    path: str,
    kwargs: dict[str, object],
    status: int,
    fragment: str,
) -> None:
    kwargs = dict(kwargs)  # parametrized values are shared between backends: copy
    headers = {**team.headers("admin"), **kwargs.pop("headers", {})}  # type: ignore[dict-item]
    response = client.request(method, path, headers=headers, **kwargs)  # type: ignore[arg-type]
    assert response.status_code == status, response.text
    err = _error(response)
    assert fragment in str(err["message"]), err
    if status == 422 and "problems" in err["details"]:  # type: ignore[operator]
        assert err["details"]["problems"]  # type: ignore[index]


def test_an_oversized_body_is_413_before_anything_runs(
    client: TestClient, team: Team, settings: object
) -> None:
    big = b'{"name": "m", "description": "' + b"x" * (17 * 1024 * 1024) + b'"}'
    headers = {**team.headers("admin"), "content-type": "application/json"}
    response = client.post("/models", content=big, headers=headers)
    assert response.status_code == 413
    assert "exceeds" in str(_error(response)["message"])
