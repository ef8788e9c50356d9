"""Authorization: every endpoint x every role, and no way to act as someone else.

Every endpoint checks a role; tokens that are missing, bad, expired or revoked get
401. On a populated registry, every call below an endpoint's role is refused and
changes nothing (zero escalations); the ledger's actor is always the token's user,
whatever a header, query or body claims; nobody approves their own version;
contributors get none of the admin verbs.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import update

from _api import ROLES, Team, blob_count, snapshot
from charter.api.app import ROUTERS
from charter.domain.profile import parse_document
from charter.service import Registry
from charter.store import schema as t
from charter.web._session import COOKIE, Session, SessionCodec, server_secret

PROFILE = "evaluations: [{name: accuracy, value: 0.91}]"
POLICY = """
schema: charter.policy/v1
stages: [staging, production]
rules:
  staging:
    approvals: {min: 1}
"""
DOCUMENT = {"evaluations": [{"name": "toxicity_rate", "value": 0.01}]}
SPOOFS = {
    "X-Charter-User": "alice", "X-Forwarded-User": "alice", "X-Remote-User": "alice",
    "Remote-User": "alice", "X-Auth-Request-User": "alice", "X-Act-As": "alice",
}  # fmt: skip
HOOKED = ["stage.assigned"]
SIGN_OFF = {"stage": "staging", "comment": "looks fine"}
SPOOF_QUERY = {"user": "alice", "actor": "alice", "as": "alice", "as_user": "alice"}


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


def _routes() -> list[tuple[str, str, str]]:
    """(method, path template, role needed) of every API endpoint."""
    out = []
    for router in ROUTERS:
        for route in router.routes:
            assert isinstance(route, APIRoute)
            needed = _needed(route)
            assert len(needed) == 1, f"{route.path} must check exactly one role, checks {needed}"
            out += [(method, route.path, next(iter(needed))) for method in sorted(route.methods)]
    return out


def _api_routes(app: FastAPI) -> list[tuple[str, str, str]]:
    """(method, concrete path, role needed) of every API endpoint."""
    return [(m, re.sub(r"\{[^}]+\}", "x", path), role) for m, path, role in _routes()]


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
        ("POST", "/webhooks", "admin"),
        ("DELETE", "/webhooks/x", "admin"),
        ("POST", "/models/x/stages/x/rollback", "contributor"),  # forcing needs admin (service)
        ("PUT", "/blobs/x", "contributor"),
    ],
)
def test_roles_of_writes(app: FastAPI, method: str, path: str, role: str) -> None:
    assert (method, path, role) in _api_routes(app)


def test_the_role_matrix(app: FastAPI, client: TestClient, team: Team, registry: Registry) -> None:
    """Each endpoint x each role: below its role 403, no credentials 401, else neither."""
    before = snapshot(registry)
    order = list(ROLES)
    for method, path, needed in _api_routes(app):
        response = client.request(method, path)
        assert response.status_code == 401, (method, path, response.text)
        if method != "HEAD":
            assert response.json()["error"]["code"] == "unauthorized"
        for role in ROLES:
            response = client.request(method, path, headers=team.headers(role))
            if order.index(role) < order.index(needed):
                assert response.status_code == 403, (method, path, role, response.text)
                if method != "HEAD":
                    body = response.json()
                    assert body["error"]["code"] == "forbidden"
                    assert needed in body["error"]["message"]
            else:
                assert response.status_code not in (401, 403), (method, path, role, response.text)
    # Only the idempotent maintenance calls could have changed anything: a checkpoint.
    after = snapshot(registry)
    assert after[1] == before[1]


# -- on a populated registry -------------------------------------------------
@dataclass(frozen=True)
class World:
    """What the populated registry holds, to aim real requests at."""

    paths: dict[str, str]  # path parameter -> an existing value
    draft: str  # a draft of ``credit``, registered by carol
    file: dict[str, Any]  # a manifest row of credit@1.0.0
    alice_token_id: str  # alice's admin token, which others must not revoke


@pytest.fixture
def world(registry: Registry, team: Team, artifact: Path) -> World:
    """``credit`` (high risk): 1.0.0 published by carol and gated; 1.1.0 published by
    dave (an approver), 3.0.0 by alice (admin); 2.0.0 a draft; erin, a viewer with a
    token; a webhook; a staging policy asking one approval."""
    carol, dave = registry.as_user("carol"), registry.as_user("dave")
    carol.create_model(name="credit", risk_tier="high")
    registry.set_policy(text=POLICY)
    for reg, number in ((carol, "1.0.0"), (dave, "1.1.0"), (registry, "3.0.0")):
        reg.register(model="credit", path=artifact, version=number,
                     profile=parse_document(PROFILE), evaluate=False)  # fmt: skip
        reg.publish(model="credit", version=number)
    carol.register(model="credit", path=artifact, version="2.0.0", evaluate=False)
    carol.gate(model="credit", version="1.0.0", stage="staging")
    registry.add_user(name="erin", role="viewer")
    _, erin = registry.create_token(user="erin", label="someone else's")
    hook, _ = registry.add_webhook(url="https://hooks.example.com/x", events=["stage.assigned"])
    registry.checkpoint(sign=True)
    first = registry.files(model="credit", version="1.0.0")[0]
    digest = first.digest
    paths = {"name": "credit", "version": "1.0.0", "stage": "staging", "digest": digest,
             "path": "weights.bin", "token_id": erin.token_id, "user": "erin",
             "webhook_id": str(hook.id), "seq": "1"}  # fmt: skip
    alice = next(i for i in registry.list_tokens(user="alice") if i.label == "admin in tests")
    row = {"path": first.path, "digest": digest, "size": first.size}
    return World(paths, "2.0.0", row, alice.token_id)


NEW_BLOB = b"bytes nobody uploaded yet"
NEW_DIGEST = "sha256:" + hashlib.sha256(NEW_BLOB).hexdigest()
RUN = {"run_id": "run-00000000000000ff", "evaluator": "manual", "evaluator_version": "1"}


def _request(world: World, method: str, template: str) -> tuple[str, dict[str, Any]]:
    """A concrete path and a valid body for one endpoint, aimed at existing objects."""
    values = dict(world.paths)
    draft_only = ("/publish", "/profile", "/tags")
    if (method == "DELETE" and "{version}" in template) or template.endswith(draft_only):
        values["version"] = world.draft
    if template.endswith("/deprecate"):
        values["version"] = "3.0.0"  # alice's: the others stay promotable
    if template == "/blobs/{digest}" and method == "PUT":
        values["digest"] = NEW_DIGEST
    path = re.sub(r"\{([^}:]+)(:[^}]*)?\}", lambda m: values[m.group(1)], template)
    bodies: dict[tuple[str, str], dict[str, Any]] = {
        ("POST", "/models"): {"json": {"name": "escalated"}},
        ("POST", "/models/{name}/versions"): {
            "json": {
                "version": "9.0.0",
                "files": [world.file],
            }
        },
        ("PATCH", "/models/{name}/versions/{version}/tags"): {"json": {"tags": {"k": "v"}}},
        ("POST", "/models/{name}/versions/{version}/deprecate"): {"json": {"reason": "r"}},
        ("POST", "/models/{name}/versions/{version}/profile"): {"json": {"document": DOCUMENT}},
        ("POST", "/models/{name}/versions/{version}/amendments"): {
            "json": {"document": DOCUMENT, "reason": "r"}
        },
        ("POST", "/models/{name}/versions/{version}/observations"): {
            "json": {"document": DOCUMENT, "reason": "r"}
        },
        ("POST", "/models/{name}/versions/{version}/evaluations"): {
            "json": {"run": RUN, "document": DOCUMENT}
        },
        ("POST", "/models/{name}/versions/{version}/cards"): {"json": {"format": "md"}},
        ("PUT", "/models/{name}/target"): {
            "json": {"target": {"kind": "callable", "function": "m:f"}}
        },
        ("POST", "/models/{name}/stages/{stage}/rollback"): {"json": {"reason": "r"}},
        ("PUT", "/users/{user}"): {"json": {"role": "admin"}},
        ("POST", "/tokens"): {"json": {"user": "erin"}},
        ("PUT", "/policy"): {"json": {"text": POLICY.replace("min: 1", "min: 0")}},
        ("POST", "/policy/validate"): {"json": {"text": POLICY}},
        ("POST", "/models/{name}/versions/{version}/gate"): {"json": {"stage": "staging"}},
        ("POST", "/models/{name}/versions/{version}/approvals"): {
            "json": {"stage": "staging", "comment": "fine"}
        },
        ("POST", "/models/{name}/versions/{version}/promote"): {"json": {"stage": "staging"}},
        ("POST", "/ledger/verify"): {"json": {}},
        ("POST", "/blobs/missing"): {"json": {"digests": [world.file["digest"]]}},
        ("PUT", "/blobs/{digest}"): {
            "content": NEW_BLOB,
            "headers": {"content-type": "application/octet-stream"},
        },
        ("POST", "/webhooks"): {"json": {"url": "https://x.example.com/h", "events": HOOKED}},
    }
    return path, bodies.get((method, template), {})


def _state(registry: Registry) -> tuple[int, int, int | None]:
    """(ledger size, blob count, latest checkpoint size): what any change would move."""
    checkpoint = registry.checkpoint(sign=False)
    size, blobs = snapshot(registry)
    return size, blobs, None if checkpoint is None else checkpoint.tree_size


def _send(client: TestClient, method: str, path: str, auth: dict[str, str], **kw: Any) -> Any:
    """``method path`` with ``auth`` headers added to the request's own."""
    kw = dict(kw)
    return client.request(method, path, headers={**auth, **kw.pop("headers", {})}, **kw)


def test_no_role_escalates_on_real_objects(
    client: TestClient, team: Team, registry: Registry, world: World
) -> None:
    """Every endpoint x every lesser role (and no token), aimed at existing objects with
    a valid body: refused, and nothing changes. Zero escalations."""
    order, escalations, calls = list(ROLES), [], 0
    for method, template, needed in _routes():
        path, kw = _request(world, method, template)
        below = [r for r in ROLES if order.index(r) < order.index(needed)]
        for role in [*below, None]:
            before = _state(registry)
            response = _send(client, method, path, team.headers(role) if role else {}, **kw)
            calls += 1
            status = 403 if role else 401
            if response.status_code != status or _state(registry) != before:
                escalations.append((method, path, role, response.status_code, response.text))
            elif method != "HEAD":
                assert response.json()["error"]["code"] == ("forbidden" if role else "unauthorized")
    assert calls > 80
    assert escalations == []


def _draft_last(route: tuple[str, str, str]) -> int:
    method, template, _ = route
    return 2 if method == "DELETE" else 1 if template.endswith("/publish") else 0


def test_every_write_is_recorded_as_the_token_user(
    client: TestClient, team: Team, registry: Registry, world: World
) -> None:
    """Each write endpoint, called by a user of exactly its role with a valid body and
    every header and query a proxy might use to name a user: what it records is the
    token's user's, never alice's."""
    users = {"viewer": "bob", "contributor": "carol", "approver": "dave", "admin": "alice"}
    done = []
    # Publishing the draft, then deleting what is left of it, after the writes to it.
    for method, template, needed in sorted(_routes(), key=_draft_last):
        if method in ("GET", "HEAD") or needed == "admin":  # admin is alice: nothing to tell
            continue
        path, kw = _request(world, method, template)
        start = len(registry.audit_log())
        response = _send(client, method, path, {**team.headers(needed), **SPOOFS},
                         params=SPOOF_QUERY, **kw)  # fmt: skip
        assert response.status_code < 500, (method, path, response.text)
        new = registry.audit_log()[start:]
        assert {e.actor for e in new} <= {users[needed]}, (method, path, new)
        done += [(method, template)] if new else []
    assert len(done) >= 14, done  # most writes succeeded, so the actor check meant something


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/models", {"name": "n", "created_by": "alice"}),
        ("POST", "/models", {"name": "n", "actor": "alice"}),
        ("POST", "/models/credit/versions/1.0.0/approvals", {**SIGN_OFF, "user": "alice"}),
        ("POST", "/models/credit/versions/1.0.0/approvals", {**SIGN_OFF, "role": "admin"}),
        ("PATCH", "/models/credit/versions/2.0.0/tags", {"tags": {}, "by": "alice"}),
        ("POST", "/models/credit/versions/1.0.0/promote", {"stage": "staging", "by": "alice"}),
        ("POST", "/tokens", {"user": "dave", "created_by": "alice"}),
        ("PUT", "/users/dave", {"role": "admin", "updated_by": "alice"}),
    ],
)
def test_a_body_naming_another_actor_is_refused(
    client: TestClient,
    team: Team,
    registry: Registry,
    world: World,
    method: str,
    path: str,
    body: dict[str, Any],
) -> None:
    """No request body has a field naming a user, role or recorder: 422, nothing recorded."""
    before = _state(registry)
    response = client.request(method, path, json=body, headers=team.headers("approver"))
    if path.startswith("/users"):  # dave is no admin: refused before the body is read
        assert response.status_code == 403, response.text
    else:
        assert response.status_code == 422, response.text
        assert response.json()["error"]["code"] == "invalid_input"
    assert _state(registry) == before


def test_a_recorder_named_in_a_profile_entry_is_re_stamped(
    client: TestClient, team: Team, registry: Registry, world: World
) -> None:
    """``provenance.recorded_by`` is the registry's to set: the token's user, whatever was sent."""
    entry = {**DOCUMENT["evaluations"][0], "provenance": {"recorded_by": "alice"}}
    start = len(registry.audit_log())
    response = client.post(
        "/models/credit/versions/2.0.0/profile",
        json={"document": {"evaluations": [entry]}},
        headers={**team.headers("contributor"), **SPOOFS},
    )
    assert response.status_code == 201, response.text
    assert response.json()[0]["provenance"]["recorded_by"] == "carol"
    assert [e.actor for e in registry.audit_log()[start:]] == ["carol"]
    records = registry.profile_records(model="credit", version="2.0.0")
    assert [r.body["provenance"]["recorded_by"] for r in records] == ["carol"]


def test_nobody_approves_their_own_version(
    client: TestClient, team: Team, registry: Registry, world: World
) -> None:
    """dave (approver) registered 1.1.0, alice (admin) 3.0.0: their approvals are refused;
    neither a body naming another approver nor the admin role gets around it."""
    registry.as_user("dave").gate(model="credit", version="1.1.0", stage="staging")
    before = _state(registry)
    for role, number in (("approver", "1.1.0"), ("admin", "3.0.0")):
        path = f"/models/credit/versions/{number}/approvals"
        response = client.post(path, json={"stage": "staging", "comment": "mine"},
                               headers=team.headers(role))  # fmt: skip
        assert response.status_code == 403, response.text
        assert "cannot approve" in response.json()["error"]["message"]
        spoofed = client.post(path, json={"stage": "staging", "comment": "x", "user": "bob"},
                              headers={**team.headers(role), **SPOOFS})  # fmt: skip
        assert spoofed.status_code == 422
    assert _state(registry) == before and registry.approvals(model="credit") == []
    promote = client.post("/models/credit/versions/1.1.0/promote", json={"stage": "staging"},
                          headers=team.headers("approver"))  # fmt: skip
    assert promote.status_code == 409  # still unapproved: the gate refuses
    # Someone else's approval counts: alice approves carol's 1.0.0.
    body = {"stage": "staging", "comment": "reviewed"}
    ok = client.post(
        "/models/credit/versions/1.0.0/approvals", json=body, headers=team.headers("admin")
    )
    assert ok.status_code == 201 and ok.json()["user"] == "alice"


def test_a_contributor_gets_no_admin_verb(
    client: TestClient, team: Team, registry: Registry, world: World
) -> None:
    """carol (contributor): tokens for others, their listing and revocation, users,
    policy, webhooks, forced promotion and rollback are all refused; nothing changes."""
    carol = team.headers("contributor")
    attempts: list[tuple[str, str, dict[str, Any]]] = [
        ("POST", "/tokens", {"json": {"user": "alice", "label": "mine now"}}),
        ("POST", "/tokens", {"json": {"user": "dave"}}),
        ("GET", "/tokens", {"params": {"user": "alice"}}),
        ("DELETE", f"/tokens/{world.alice_token_id}", {}),
        ("DELETE", f"/tokens/{world.paths['token_id']}", {}),
        ("PUT", "/users/carol", {"json": {"role": "admin"}}),
        ("PUT", "/users/mallory", {"json": {"role": "admin"}}),
        ("PUT", "/policy", {"json": {"text": "schema: charter.policy/v1\nstages: [staging]\n"}}),
        ("GET", "/webhooks", {}),
        ("POST", "/webhooks", {"json": {"url": "https://evil.example.com", "events": HOOKED}}),
        ("DELETE", f"/webhooks/{world.paths['webhook_id']}", {}),
        ("GET", "/webhooks/deliveries", {}),
        ("POST", "/models/credit/versions/1.0.0/promote",
         {"json": {"stage": "staging", "force": True, "reason": "trust me"}}),
        ("POST", "/models/credit/versions/1.0.0/approvals", {"json": SIGN_OFF}),
        ("POST", "/models/credit/versions/1.0.0/deprecate", {"json": {"reason": "r"}}),
    ]  # fmt: skip
    before = _state(registry)
    for method, path, kw in attempts:
        response = client.request(method, path, headers=carol, **kw)
        assert response.status_code == 403, (method, path, response.text)
        assert response.json()["error"]["code"] == "forbidden"
    assert _state(registry) == before
    assert {u.name: u.role.value for u in registry.list_users()}["carol"] == "contributor"
    assert client.get("/me", headers=team.headers("admin")).json()["user"] == "alice"
    # A forced rollback too: staging has a holder only after alice's override.
    registry.promote(model="credit", version="3.0.0", stage="staging", force=True, reason="r")
    forced = {"reason": "r", "to": "1.1.0", "force": True}
    rollback = client.post("/models/credit/stages/staging/rollback", json=forced, headers=carol)
    assert rollback.status_code == 403, rollback.text


@pytest.mark.parametrize(
    "header",
    ["", "Bearer", "Bearer ", "Basic YWxpY2U6cHc=", "Bearer chr_nothex_" + "a" * 43, "Bearer x y"],
)
def test_bad_credentials_are_401(client: TestClient, header: str) -> None:
    response = client.get("/models", headers={"Authorization": header})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.json()["error"]["code"] == "unauthorized"


def test_two_authorization_headers_are_401_whichever_comes_first(
    client: TestClient, team: Team
) -> None:
    # One valid token and one bad, in both orders: no guessing which one counts.
    valid, bad = team.headers("admin")["Authorization"], "Bearer chr_0000000000000000_x"
    for pair in ([valid, bad], [bad, valid], [valid, valid]):
        response = client.get("/me", headers=[("Authorization", value) for value in pair])
        assert response.status_code == 401
        assert "send exactly one" in response.json()["error"]["message"]


def test_a_forged_token_of_a_real_id_is_401(client: TestClient, registry: Registry) -> None:
    token, _ = registry.create_token(user="alice")
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    response = client.get("/me", headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401 and "unknown token" in response.json()["error"]["message"]


def test_revoked_and_expired_tokens_are_401_and_change_nothing(
    client: TestClient, registry: Registry, team: Team, world: World
) -> None:
    token, info = registry.create_token(user="alice", expires="1h")
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/me", headers=headers).json()["user"] == "alice"
    registry.revoke_token(token_id=info.token_id)
    token2, info2 = registry.create_token(user="alice", expires="1h")
    with registry.store.write() as tx:  # expire it: rewind its expiry
        tx.conn.execute(
            update(t.api_tokens)
            .where(t.api_tokens.c.token_id == info2.token_id)
            .values(expires_at="2000-01-01T00:00:00.000000Z")
        )
    before = _state(registry)
    for dead, why in ((token, "revoked"), (token2, "expired")):
        auth = {"Authorization": f"Bearer {dead}"}
        for method, template, _ in _routes():
            path, kw = _request(world, method, template)
            response = _send(client, method, path, auth, **kw)
            assert response.status_code == 401, (why, method, path, response.text)
            if method != "HEAD":
                assert why in response.json()["error"]["message"]
        # Nor can a dead token revive itself or mint a new one.
        assert client.post("/tokens", json={"user": "alice"}, headers=auth).status_code == 401
    assert _state(registry) == before
    assert registry.list_tokens(user="alice")[-1].token_id == info2.token_id


def test_a_token_acts_with_its_user_s_current_role(
    client: TestClient, registry: Registry, team: Team, world: World
) -> None:
    """Demoting dave takes effect on his existing token at once."""
    path = "/models/credit/versions/1.0.0/approvals"
    body = {"stage": "staging", "comment": "ok"}
    registry.add_user(name="dave", role="viewer")
    before = _state(registry)
    response = client.post(path, json=body, headers=team.headers("approver"))
    assert response.status_code == 403 and "dave has viewer" in response.json()["error"]["message"]
    assert _state(registry) == before
    registry.add_user(name="dave", role="approver")
    assert client.post(path, json=body, headers=team.headers("approver")).status_code == 201


def test_a_web_session_cookie_does_not_authenticate_the_api(
    client: TestClient, registry: Registry, team: Team
) -> None:
    """The API takes bearer tokens only: a logged-in browser's cookie (which a cross-site
    page can make it send) authenticates nothing here."""
    codec = SessionCodec(server_secret(registry))
    cookie = codec.dumps(Session.fresh(token=team.tokens["admin"]))
    client.cookies.set(COOKIE, cookie)
    before = _state(registry)
    response = client.post("/models", json={"name": "csrf"})
    assert response.status_code == 401
    assert client.put("/users/bob", json={"role": "admin"}).status_code == 401
    assert _state(registry) == before and blob_count(registry) == before[1]
