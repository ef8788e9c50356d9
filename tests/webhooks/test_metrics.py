"""``GET /metrics``: registry state read at scrape time, request latency by route template,
and the dispatcher in the app's lifespan (woken by writes)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from types import SimpleNamespace

from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from charter.api.metrics import install_metrics, start_dispatcher, stop_dispatcher
from charter.domain.errors import NotFoundError
from charter.domain.profile import parse_document
from charter.service import Registry
from charter.webhooks import WebhookDispatcher
from webhooks._support import Receiver

POLICY = """
schema: charter.policy/v1
stages: [staging, production]
rules:
  production:
    metrics:
      - {metric: accuracy, min: 0.85}
      - {metric: accuracy, slice: "thal=fixed", min: 0.75}
"""
SIGN_OFF = POLICY + "    approvals: {min: 1}\n"
GOOD = """
evaluations:
  - {name: accuracy, value: 0.91}
  - {name: accuracy, value: 0.82, slice: "thal=fixed"}
"""
WEAK = """
evaluations:
  - {name: accuracy, value: 0.80}
  - {name: accuracy, value: 0.82, slice: "thal=fixed"}
"""
BAD_SLICE = """
evaluations:
  - {name: accuracy, value: 0.61, slice: "thal=fixed", samples: 40}
"""

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def _scrape(client: TestClient) -> Samples:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def _get(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def _app(registry: Registry) -> FastAPI:
    app = FastAPI()
    app.state.registry = registry
    install_metrics(app)

    api = APIRouter()  # included with a prefix, as the real API's routers are

    @api.get("/models/{name}")
    def get_model(name: str) -> JSONResponse:
        try:
            return JSONResponse({"name": registry.get_model(name=name).name})
        except NotFoundError as exc:
            return JSONResponse({"error": exc.message}, status_code=404)

    app.include_router(api, prefix="/api/v1")

    sub = FastAPI()

    @sub.get("/items/{item}")
    def item(item: str) -> dict[str, str]:
        return {"item": item}

    app.mount("/sub", sub)
    return app


def _publish(reg: Registry, artifact: Path, model: str, version: str, profile: str) -> None:
    reg.register(model=model, path=artifact, version=version, profile=parse_document(profile))
    reg.publish(model=model, version=version)


def test_metrics_read_the_registry_at_scrape_time(registry: Registry, artifact: Path) -> None:
    registry.set_policy(text=POLICY)
    registry.create_model(name="dx")
    _publish(registry, artifact, "dx", "1.0.0", GOOD)
    _publish(registry, artifact, "dx", "1.1.0", WEAK)
    registry.create_model(name="hx")
    registry.set_policy(text=SIGN_OFF, model="hx")
    _publish(registry, artifact, "hx", "1.0.0", GOOD)
    client = TestClient(_app(registry))
    empty = _scrape(client)
    assert _get(empty, "charter_pending_approvals") == 0
    assert _get(empty, "charter_database_up") == 1
    assert not [k for k in empty if k[0] == "charter_version_info"]

    registry.gate(model="dx", version="1.1.0", stage="production")  # fails: accuracy 0.80
    registry.promote(model="dx", version="1.0.0", stage="staging")
    registry.promote(model="dx", version="1.0.0", stage="production")
    registry.gate(model="hx", version="1.0.0", stage="production")  # waits for sign-off
    samples = _scrape(client)
    assert _get(samples, "charter_version_info", model="dx", stage="staging", version="1.0.0") == 1
    assert _get(samples, "charter_version_info", model="dx", stage="production",
                version="1.0.0") == 1  # fmt: skip
    assert _get(samples, "charter_gate_decisions_total", stage="staging", outcome="pass") == 1
    assert _get(samples, "charter_gate_decisions_total", stage="production", outcome="pass") == 1
    assert _get(samples, "charter_gate_decisions_total", stage="production", outcome="fail") == 2
    assert _get(samples, "charter_pending_approvals") == 1 == len(registry.pending_approvals())
    assert _get(samples, "charter_versions_at_risk") == 0
    assert _get(samples, "charter_ledger_entries") == len(registry.audit_log())

    registry.observe(model="dx", version="1.0.0", document=parse_document(BAD_SLICE),
                     reason="prod monitor, week 12")  # fmt: skip
    assert _get(_scrape(client), "charter_versions_at_risk") == 1


def test_webhook_deliveries_are_counted_by_status(
    registry: Registry, receiver: Receiver, artifact: Path
) -> None:
    client = TestClient(_app(registry))
    zero = _scrape(client)
    for status in ("pending", "delivered", "failed"):
        assert _get(zero, "charter_webhook_deliveries", status=status) == 0
    registry.add_webhook(url=receiver.url, events=["version.published"])
    registry.create_model(name="dx")
    _publish(registry, artifact, "dx", "1.0.0", GOOD)
    dispatcher = WebhookDispatcher(registry)
    dispatcher._fan_out()
    assert _get(_scrape(client), "charter_webhook_deliveries", status="pending") == 1
    dispatcher.run_once()
    dispatcher.stop()
    samples = _scrape(client)
    assert _get(samples, "charter_webhook_deliveries", status="pending") == 0
    assert _get(samples, "charter_webhook_deliveries", status="delivered") == 1


def test_request_latency_is_labelled_by_route_template(registry: Registry) -> None:
    registry.create_model(name="dx")
    registry.create_model(name="ex")
    client = TestClient(_app(registry))
    for path in ("/api/v1/models/dx", "/api/v1/models/ex", "/api/v1/models/zz", "/nope",
                 "/nope/either", "/sub/items/1", "/sub/items/2"):  # fmt: skip
        client.get(path)
    samples = _scrape(client)
    count = "charter_http_request_duration_seconds_count"
    assert _get(samples, count, method="GET", route="/api/v1/models/{name}", status="200") == 2
    assert _get(samples, count, method="GET", route="/api/v1/models/{name}", status="404") == 1
    assert _get(samples, count, method="GET", route="<unmatched>", status="404") == 2
    assert _get(samples, count, method="GET", route="/sub/items/{item}", status="200") == 2
    routes = {dict(labels)["route"] for name, labels in samples if name == count}
    assert routes == {"/api/v1/models/{name}", "<unmatched>", "/sub/items/{item}"}
    bucket = _get(samples, "charter_http_request_duration_seconds_bucket", method="GET",
                  route="/api/v1/models/{name}", status="200", le="+Inf")  # fmt: skip
    assert bucket == 2
    # The scrape itself was timed, for the next scrape to report.
    assert _get(_scrape(client), count, method="GET", route="/metrics", status="200") == 1


def test_every_app_has_its_own_metrics(registry: Registry) -> None:
    first, second = TestClient(_app(registry)), TestClient(_app(registry))
    first.get("/api/v1/models/zz")
    count = "charter_http_request_duration_seconds_count"
    labels = {"method": "GET", "route": "/api/v1/models/{name}", "status": "404"}
    assert _get(_scrape(first), count, **labels) == 1
    assert _get(_scrape(second), count, **labels) is None


def test_the_lifespan_runs_a_dispatcher_that_writes_wake(
    registry: Registry, receiver: Receiver, artifact: Path
) -> None:
    registry.add_webhook(url=receiver.url, events=["gate.decided"])
    registry.create_model(name="dx")
    _publish(registry, artifact, "dx", "1.0.0", GOOD)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        start_dispatcher(app)
        yield
        stop_dispatcher(app)

    app = FastAPI(lifespan=lifespan)
    app.state.registry = registry
    # A minute between polls: only the wake-up after the write can deliver in time.
    app.state.settings = SimpleNamespace(webhook_poll_interval_s=60.0)
    install_metrics(app)

    @app.post("/api/v1/gate")
    def gate() -> dict[str, int]:
        decision_id, _ = registry.gate(model="dx", version="1.0.0", stage="staging")
        return {"id": decision_id}

    with TestClient(app) as client:
        dispatcher = app.state.webhook_dispatcher
        assert isinstance(dispatcher, WebhookDispatcher) and dispatcher.poll_interval_s == 60
        assert client.post("/api/v1/gate").status_code == 200
        assert receiver.arrived.wait(10)
    assert app.state.webhook_dispatcher is None
    (delivery,) = registry.webhook_deliveries()
    assert delivery.status.value == "delivered"


def test_webhooks_can_be_left_to_another_process(registry: Registry) -> None:
    app = FastAPI()
    app.state.registry = registry
    app.state.settings = SimpleNamespace(webhooks_enabled=False)
    assert start_dispatcher(app) is None
    stop_dispatcher(app)  # nothing to stop: fine
