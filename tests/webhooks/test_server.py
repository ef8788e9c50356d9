"""The whole path through ``charter.api.create_app`` on a real uvicorn server: subscribe
over the API, cause events over the API, the server's own dispatcher delivers them
signed, and ``/metrics`` reports both the registry and the requests."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from _api import make_team, serving
from charter.service import Registry
from charter.settings import Settings
from charter.webhooks import verify_signature
from webhooks._support import Receiver, deploy


def test_events_caused_over_the_api_reach_the_receiver(
    settings: Settings, registry: Registry, receiver: Receiver, artifact: Path
) -> None:
    team = make_team(registry)
    deploy(registry, artifact)
    admin, contributor = team.headers("admin"), team.headers("contributor")
    with serving(settings, registry) as base, httpx.Client(base_url=base) as http:
        added = http.post("/api/v1/webhooks", headers=admin,
                          json={"url": receiver.url, "events": ["gate.decided",
                                                                 "stage.assigned"]})  # fmt: skip
        assert added.status_code == 201
        secret = added.json()["secret"]
        version = "/api/v1/models/m/versions/1.0.0"
        assert http.post(f"{version}/gate", headers=contributor,
                         json={"stage": "staging"}).status_code == 200  # fmt: skip
        assert http.post(f"{version}/promote", headers=contributor,
                         json={"stage": "staging"}).status_code == 200  # fmt: skip
        deadline = time.monotonic() + 20
        while len(receiver.requests) < 3:  # gate, promotion's gate, stage move
            assert time.monotonic() < deadline, "the server's dispatcher delivered nothing"
            time.sleep(0.02)
        metrics = http.get("/metrics").text
        log = http.get("/api/v1/webhooks/deliveries", headers=admin)
    types = sorted(json.loads(r.body)["type"] for r in receiver.requests)
    assert types == ["gate.decided", "gate.decided", "stage.assigned"]
    for r in receiver.requests:
        assert verify_signature(secret, body=r.body, timestamp=r.headers["Charter-Timestamp"],
                                signature=r.headers["Charter-Signature"])  # fmt: skip
    assert log.status_code == 200 and len(log.json()) == 3
    samples = {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(metrics)
        for s in family.samples
    }
    info = ("charter_version_info", frozenset({"model": "m", "stage": "staging",
                                               "version": "1.0.0"}.items()))  # fmt: skip
    assert samples[info] == 1
    timed = {
        dict(labels)["route"]
        for name, labels in samples
        if name == "charter_http_request_duration_seconds_count"
    }
    assert {"/api/v1/webhooks", "/api/v1/models/{name}/versions/{version}/gate"} <= timed
