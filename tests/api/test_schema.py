"""Property-based run of the OpenAPI schema: no 5xx, and responses match the schema.

Schemathesis generates requests from ``/api/v1/openapi.json`` for every operation,
schema-valid ones and (fewer) schema-violating ones, against a registry seeded
with models, versions in every state, profiles, gates, sign-offs, stages, cards,
runs, a webhook and a policy. Generated path, query and body values are swapped,
some of the time, for names that exist there, so requests reach the service and
not only the 404 of an unknown name. Most requests carry an admin's token, the
rest another role's or none. Each response is checked: never a server error, the
status code documented, the body of the documented content type and shape, every
error in Charter's ``{"error": {"code", "message", "details"}}`` form, and every
negative case refused. (Driven with Hypothesis directly: schemathesis' pytest
plugin does not support pytest 9 yet.)
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import CheckContext, not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from _api import Team
from _builders import STAGING_ACCURACY_POLICY
from charter.api import create_app
from charter.domain.profile import parse_document
from charter.service import Registry
from charter.settings import Settings

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]

# Cases per operation (max_examples): POSITIVE schema-valid, NEGATIVE schema-violating.
# Hypothesis stops early once it has sent every distinct request of a small operation
# (no parameters: about 10, one per kind of credentials).
POSITIVE, NEGATIVE = 50, 10
FLOOR = 40  # cases at least, for every operation that takes a parameter or a body
TOTAL = 3000  # cases at least, over all operations
REACHED = 0.9  # the share of operations that must have answered 2xx at least once

PROFILE = """
evaluations:
  - {name: accuracy, value: 0.91, samples: 300}
  - {name: accuracy, value: 0.84, slice: "age=18-25", samples: 41}
bias_audits:
  - sensitive_feature: sex
    metric: selection_rate
    groups: [{group: f, value: 0.40, size: 310}, {group: m, value: 0.44, size: 690}]
adversarial:
  - {pack: {name: charter-default, version: "1"}, target: api, attempts: 400, hits: 6}
constraints:
  - {max_input_chars: 4000}
"""
AMENDMENT = "evaluations: [{name: toxicity_rate, value: 0.004}]"
OBSERVATION = "adversarial: [{pack: {name: live, version: '3'}, target: t, attempts: 99, hits: 31}]"
POLICY = STAGING_ACCURACY_POLICY
TARGET = {"kind": "callable", "function": "charter_fuzz.model:predict"}


@dataclass
class Seeded:
    """Values that exist in the seeded registry (or fit it), by the field that takes them."""

    params: dict[str, list[Any]]  # path and query parameters
    body: dict[str, list[Any]]  # fields of JSON bodies
    refs: list[tuple[str, str]]  # (name, version) of every version


def _folder(root: Path, name: str, weights: bytes) -> Path:
    folder = root / name
    (folder / "sub").mkdir(parents=True)
    (folder / "model.bin").write_bytes(weights)
    (folder / "config.json").write_text('{"layers": 3}')
    (folder / "sub" / "vocab.txt").write_text("a\nb\n")
    return folder


def seed(registry: Registry, root: Path) -> Seeded:
    """Fill ``registry``: carol (contributor) registers, dave (approver) signs off.

    - ``credit`` (high): 1.0.0 published, amended, carded, gated, approved, run
      recorded; 1.1.0 published; 2.0.0 a draft with a profile.
    - ``bot`` (medium): 1.0.0 in staging, flagged at risk; a red-team target.
    - ``forecast`` (low): 0.1.0 and 0.2.0 through staging, 0.2.0 rolled back.
    """
    carol, dave, alice = registry.as_user("carol"), registry.as_user("dave"), registry
    data = root / "train.csv"
    data.write_text("x,y\n1,0\n2,1\n")
    carol.create_model(name="credit", risk_tier="high", owner="risk", description="loans")
    alice.set_policy(text=POLICY, model="credit")
    carol.register(model="credit", path=_folder(root, "c1", b"c1" * 300), version="1.0.0",
                   datasets=[("train", str(data))], params={"C": "0.5"}, tags={"team": "risk"},
                   profile=parse_document(PROFILE), evaluate=False)  # fmt: skip
    carol.publish(model="credit", version="1.0.0")
    carol.amend_profile(model="credit", version="1.0.0", document=parse_document(AMENDMENT),
                        reason="monitoring")  # fmt: skip
    carol.render_card(model="credit", version="1.0.0", fmt="md")
    carol.gate(model="credit", version="1.0.0", stage="staging")
    dave.approve(model="credit", version="1.0.0", stage="staging", comment="ok")
    run = {"run_id": "run-00000000000000aa", "evaluator": "manual", "evaluator_version": "1"}
    carol.record_evaluation(model="credit", version="1.0.0", run=run,
                            document=parse_document(AMENDMENT))  # fmt: skip
    carol.register(model="credit", path=_folder(root, "c2", b"c2" * 300), version="1.1.0",
                   parent="1.0.0", change="minor", datasets=[("train", str(data))],
                   profile=parse_document(PROFILE), evaluate=False)  # fmt: skip
    carol.publish(model="credit", version="1.1.0")
    carol.register(model="credit", path=_folder(root, "c3", b"c3" * 300), version="2.0.0",
                   parent="1.1.0", change="major", architecture="gbm-v2",
                   profile=parse_document(PROFILE), evaluate=False)  # fmt: skip
    carol.create_model(name="bot", risk_tier="medium", owner="cx")
    carol.set_model_target(model="bot", target=TARGET, auto=False)
    carol.register(model="bot", path=_folder(root, "b1", b"b1" * 300), version="1.0.0",
                   profile=parse_document(PROFILE), evaluate=False)  # fmt: skip
    carol.publish(model="bot", version="1.0.0")
    carol.promote(model="bot", version="1.0.0", stage="staging")
    carol.observe(model="bot", version="1.0.0", document=parse_document(OBSERVATION),
                  reason="week 12")  # fmt: skip
    carol.create_model(name="forecast", risk_tier="low")
    for number in ("0.1.0", "0.2.0"):
        carol.register(model="forecast", path=_folder(root, f"f{number}", number.encode() * 99),
                       version=number, profile=parse_document(PROFILE), evaluate=False)  # fmt: skip
        carol.publish(model="forecast", version=number)
        carol.promote(model="forecast", version=number, stage="staging")
    carol.rollback(model="forecast", stage="staging", reason="worse")
    carol.register(model="forecast", path=_folder(root, "f0.3.0", b"f3" * 99), version="0.3.0",
                   parent="0.2.0", evaluate=False)  # fmt: skip
    alice.add_user(name="erin", role="viewer")
    _, spare = alice.create_token(user="erin", label="spare")
    hook, _ = alice.add_webhook(url="https://hooks.example.com/charter", events=["stage.assigned"])
    alice.checkpoint(sign=True)
    refs = [("credit", "1.0.0"), ("credit", "1.1.0"), ("credit", "2.0.0"), ("bot", "1.0.0"),
            ("forecast", "0.1.0"), ("forecast", "0.2.0"), ("forecast", "0.3.0")]  # fmt: skip
    files = registry.files(model="credit", version="1.0.0")
    digests = [f.digest for f in files]
    dataset = registry.get_version(model="credit", version="1.0.0").datasets[0].digest
    log = registry.audit_log()
    document = parse_document(AMENDMENT).model_dump(mode="json", by_alias=True)
    params: dict[str, list[Any]] = {
        "name": ["credit", "bot", "forecast"],
        "model": ["credit", "bot", "forecast"],
        "against_model": ["credit", "forecast"],
        "version": ["1.0.0", "1.1.0", "2.0.0", "0.1.0", "0.3.0"],
        "against": ["1.0.0", "1.1.0", "0.1.0"],
        "stage": ["staging", "production"],
        "digest": [*digests, dataset],
        "path": [f.path for f in files],
        "token_id": [spare.token_id],
        "user": ["erin", "frank"],
        "webhook_id": [hook.id],
        "seq": [e.seq for e in log],
        "metric": ["accuracy", "toxicity_rate"],
        "slice": ["age=18-25"],
        "tag": ["team", "team=risk"],
        "time": [log[-1].time],
        "as_of": [log[-1].time],
    }
    body: dict[str, list[Any]] = {
        "stage": ["staging", "production"],
        "model": ["credit", "bot"],
        "version": ["3.0.0", "3.1.0", "4.0.0"],
        "parent": ["1.0.0", "1.1.0"],
        "to": ["0.1.0", "0.2.0"],
        "files": [[{"path": f.path, "digest": f.digest, "size": f.size} for f in files]],
        "digests": [digests],
        "user": ["erin", "frank"],
        "text": [POLICY, "schema: charter.policy/v1\nstages: [staging]\n"],
        "target": [TARGET],
        "run": [{**run, "run_id": f"run-{n:016x}"} for n in range(1, 6)],
        "document": [document],
        "profile": [document],
        "url": ["https://hooks.example.com/fuzz"],
        "events": [["stage.assigned", "version.published"]],
    }
    return Seeded(params, body, refs)


WHO = ("admin",) * 6 + ("approver", "contributor", "viewer", None)
"""Whose token a case carries (None: no Authorization header), shrinking to admin."""


SWAP = st.sampled_from((False, True, True, True))
"""Whether to swap a generated value for a seeded one (3 in 4), shrinking to not."""


def _swap(data: st.DataObject, known: Seeded, case: schemathesis.Case) -> None:
    """Replace some generated values with names that exist in the seeded registry."""
    path = case.path_parameters or {}
    keep: set[str] = set()
    if {"name", "version"} <= set(path) and data.draw(SWAP):
        path["name"], path["version"] = data.draw(st.sampled_from(known.refs))
        keep = {"name", "version"}
    body = case.body if isinstance(case.body, dict) else {}
    for where, values in (
        (path, known.params),
        (case.query or {}, known.params),
        (body, known.body),
    ):
        for key in [k for k in where if k in values and k not in keep]:
            if data.draw(SWAP):
                where[key] = data.draw(st.sampled_from(values[key]))


def error_body(ctx: CheckContext, response: schemathesis.Response, case: schemathesis.Case) -> bool:
    """Every 4xx (and 5xx) is ``{"error": {"code", "message", "details"}}``, nothing else."""
    if response.status_code < 400:
        return True
    body = json.loads(response.content)
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"code", "message", "details"}, error
    assert isinstance(error["code"], str) and error["code"], error
    assert isinstance(error["message"], str) and error["message"], error
    assert isinstance(error["details"], dict), error
    if response.status_code == 401:
        assert response.headers.get("www-authenticate") == ["Bearer"], response.headers
    return True


def _without_lifespan(app: FastAPI) -> Callable[..., Any]:
    """``app`` refusing the lifespan scope: no webhook dispatcher posts to fuzzed URLs."""

    async def served(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            raise RuntimeError("no lifespan in the schema run")
        await app(scope, receive, send)

    return served


def _order(operation: schemathesis.APIOperation) -> int:
    """Reads first, then writes, then what deletes or freezes the seeded versions."""
    if operation.method.upper() == "GET":
        return 0
    if operation.method.upper() == "DELETE" or operation.path.endswith(("/publish", "/deprecate")):
        return 2
    return 1


def _fuzz(
    operation: schemathesis.APIOperation,
    mode: GenerationMode,
    examples: int,
    call: Callable[[schemathesis.Case, str | None, list[Any]], None],
    known: Seeded,
) -> None:
    checks = [*CHECKS, error_body]
    if mode is GenerationMode.NEGATIVE:
        checks.append(negative_data_rejection)

    @given(case=operation.as_strategy(generation_mode=mode), data=st.data())
    @settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def run(case: schemathesis.Case, data: st.DataObject) -> None:
        if mode is GenerationMode.POSITIVE:
            _swap(data, known, case)
        call(case, data.draw(st.sampled_from(WHO)), checks)

    try:
        run()
    except Unsatisfiable:
        # Nothing of this operation can violate its schema (no parameters, free text).
        assert mode is GenerationMode.NEGATIVE, operation.label


def _table(counts: Counter[str], statuses: dict[str, Counter[int]]) -> str:
    return "\n".join(
        f"{label:62} {counts[label]:3} {dict(sorted(statuses[label].items()))}"
        for label in sorted(counts)
    )


@pytest.mark.slow
# schemathesis' negative strategies use `random` inside Hypothesis: its warning, not ours
@pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning")
def test_the_api_keeps_its_schema(
    settings: Settings, registry: Registry, team: Team, tmp_path: Path
) -> None:
    known = seed(registry, tmp_path)
    app = create_app(settings, registry=registry)
    served = _without_lifespan(app)
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", served)
    operations = sorted((result.ok() for result in schema.get_all_operations()), key=_order)
    assert len(operations) > 60
    counts: Counter[str] = Counter()
    statuses: dict[str, Counter[int]] = defaultdict(Counter)

    def call(case: schemathesis.Case, who: str | None, checks: list[Any]) -> None:
        counts[case.operation.label] += 1
        headers = team.headers(who) if who else {}
        response = case.call_and_validate(headers=headers, checks=checks)
        statuses[case.operation.label][response.status_code] += 1

    failures: dict[str, str] = {}
    modes = ((GenerationMode.POSITIVE, POSITIVE), (GenerationMode.NEGATIVE, NEGATIVE))
    for operation in operations:
        for mode, examples in modes:
            try:
                _fuzz(operation, mode, examples, call, known)
            except (Exception, FailureGroup) as exc:  # every operation's failures, not the first
                failures[f"{operation.label} ({mode.value})"] = str(exc)
    assert not failures, "\n\n".join(f"{k}:\n{v}" for k, v in failures.items())
    table = _table(counts, statuses)
    sized = [op for op in operations if op.path_parameters or op.query or op.body]
    starved = {op.label: counts[op.label] for op in sized if counts[op.label] < FLOOR}
    assert not starved, f"generation collapsed for {starved}\n{table}"
    assert sum(counts.values()) >= TOTAL, table
    reached = [op for op in operations if any(200 <= s < 300 for s in statuses[op.label])]
    assert len(reached) >= REACHED * len(operations), table


# Success bodies that stay free objects: exports are CycloneDX or in-toto documents.
FREE_FORM = {("get", "/api/v1/models/{name}/versions/{version}/export")}


def _described(schema: dict[str, Any]) -> bool:
    """A response schema that names its fields: a model, a list of models, or null."""
    options = schema.get("anyOf", [schema])
    for option in options:
        if option.get("type") == "array":
            option = option["items"]
        if "$ref" not in option and option.get("type") not in ("null", "string"):
            return False
    return True


def test_every_json_response_is_described(app: FastAPI) -> None:
    """No success body is documented as a bare object: "matches the schema" means fields."""
    loose = []
    for path, operations in app.openapi()["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                found = response.get("content", {}).get("application/json", {}).get("schema")
                if status.startswith("2") and found and (method, path) not in FREE_FORM:
                    loose += [] if _described(found) else [(method, path, status)]
            for status in ("401", "403", "422"):
                ref = operation["responses"][status]["content"]["application/json"]["schema"]
                assert ref == {"$ref": "#/components/schemas/Error"}, (method, path)
    assert loose == []
    error = app.openapi()["components"]["schemas"]["Error"]
    assert error["additionalProperties"] is False and error["required"] == ["error"]


# What the fuzz run found: each was a 5xx (500, or 503 from PostgreSQL) before the API
# refused it as bad input.
UNSTORABLE = [
    ("GET", "/policy?model=credit%00x", None),
    ("GET", "/models/credit%00", None),
    ("GET", "/models/credit/versions/1.0.0/profile?as_of=%00", None),
    ("POST", "/models/forecast/stages/staging/rollback", '{"reason": "a\\u0000b"}'),
    ("POST", "/models", '{"name": "m", "description": "\\u0000"}'),
    ("PATCH", "/models/credit/versions/2.0.0/tags", '{"tags": {"k\\ud800": "v"}}'),
    ("POST", "/models/credit/versions/1.0.0/amendments",
     '{"reason": "r", "document": {"adversarial": [{"pack": {"name": "p", "version": "1"},'
     ' "target": "t", "attempts": 9007199254740993, "hits": 1}]}}'),
    ("POST", "/models/credit/versions/1.0.0/evaluations",
     '{"run": {"run_id": "run-00000000000000bb", "evaluator": "e", "evaluator_version": "1",'
     ' "config": NaN}, "document": {"evaluations": [{"name": "accuracy", "value": 0.5}]}}'),
    ("PUT", "/models/credit/target", '{"target": {"kind": "callable", "x": Infinity}}'),
]  # fmt: skip


def test_unstorable_input_is_refused_on_every_backend(
    registry: Registry, team: Team, tmp_path: Path, app: FastAPI
) -> None:
    """NUL, unpaired surrogates, integers past 2**53 and NaN/Infinity: 422, nothing stored."""
    seed(registry, tmp_path)
    before = len(registry.audit_log())
    with TestClient(app, base_url="http://testserver/api/v1") as client:
        for method, path, body in UNSTORABLE:
            headers = {**team.headers("admin"), "content-type": "application/json"}
            response = client.request(method, path, content=body, headers=headers)
            assert response.status_code == 422, (method, path, response.text)
            assert response.json()["error"]["code"] == "invalid_input"
    assert len(registry.audit_log()) == before
