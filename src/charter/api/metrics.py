"""``GET /metrics`` (Prometheus text format), request timing, and the webhook dispatcher's
place in the server's lifespan.

Registry state is read from the database at scrape time by a custom collector,
never counted in process memory: any number of server processes then report
the same values, and nothing drifts after a restart. Only request latency is
per process (each process times its own requests), as is usual for a
Prometheus histogram.

Each app gets its own :class:`~prometheus_client.CollectorRegistry`, so tests
(and a process serving several apps) never share or clash over metrics.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from fastapi import FastAPI
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from charter.domain.errors import CharterError
from charter.domain.webhooks import DeliveryStatus
from charter.service import Registry
from charter.webhooks import WebhookDispatcher

__all__ = ["RegistryCollector", "install_metrics", "start_dispatcher", "stop_dispatcher"]

log = logging.getLogger("charter.api.metrics")

# Local requests take around a millisecond: the default buckets (from 5 ms) would
# put nearly all of them in the first one.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class RegistryCollector(Collector):
    """Registry gauges and counters, read from the database at each scrape.

    One read transaction of a few aggregate queries, plus the pending-approvals
    use case (which reads the gate decisions).
    """

    def __init__(self, source: Callable[[], Registry | None]) -> None:
        self._source = source

    def describe(self) -> Iterable[Metric]:
        """The families this collector yields (so registering it reads no database)."""
        return [family for family, _ in self._families()]

    def _families(self) -> list[tuple[GaugeMetricFamily | CounterMetricFamily, str]]:
        return [
            (GaugeMetricFamily("charter_version_info", "Version holding each stage (always 1).",
                               labels=["model", "stage", "version"]), "info"),
            (CounterMetricFamily("charter_gate_decisions", "Gate decisions recorded.",
                                 labels=["stage", "outcome"]), "gates"),
            (GaugeMetricFamily("charter_pending_approvals",
                               "Gate decisions waiting only for sign-off."), "pending"),
            (GaugeMetricFamily("charter_versions_at_risk",
                               "Versions flagged at risk by production monitoring."), "risk"),
            (GaugeMetricFamily("charter_webhook_deliveries", "Webhook deliveries by status.",
                               labels=["status"]), "deliveries"),
            (GaugeMetricFamily("charter_ledger_entries", "Entries in the audit ledger."),
             "ledger"),
            (GaugeMetricFamily("charter_database_up",
                               "1 when the last scrape could read the database."), "up"),
        ]  # fmt: skip

    def collect(self) -> Iterator[Metric]:
        """Read the registry and yield every family."""
        families = self._families()
        registry = self._source()
        try:
            values = _read(registry) if registry is not None else None
        except CharterError as exc:  # the database is down: still serve the rest
            log.warning("metrics scrape could not read the registry: %s", exc.message)
            values = None
        for family, key in families:
            if key == "up":
                family.add_metric([], 1.0 if values is not None else 0.0)
            elif values is not None:
                for labels, value in values[key]:
                    family.add_metric(labels, value)
            if family.samples or key == "up":
                yield family


def _read(registry: Registry) -> dict[str, list[tuple[list[str], float]]]:
    with registry.store.read() as tx:
        pointers = tx.stage_pointers()
        decisions = tx.gate_decision_counts()
        deliveries = tx.delivery_counts()
        at_risk = tx.versions_at_risk_count()
        ledger = tx.ledger_size()
    pending = len(registry.pending_approvals())
    return {
        "info": [([p["model"], p["stage"], p["version"]], 1.0)
                 for p in sorted(pointers, key=lambda p: (p["model"], p["stage"]))],
        "gates": [([stage, "pass" if passed else "fail"], float(n))
                  for stage, passed, n in sorted(decisions)],
        "pending": [([], float(pending))],
        "risk": [([], float(at_risk))],
        # Every status, zeros included: a series that vanishes breaks rate() and alerts.
        "deliveries": [([s.value], float(deliveries.get(s.value, 0))) for s in DeliveryStatus],
        "ledger": [([], float(ledger))],
    }  # fmt: skip


class _Timing:
    """Pure ASGI middleware timing each HTTP request by method, route template and status.

    The route template (``/api/v1/models/{name}``), never the raw path, keeps the
    number of series bounded whatever URLs clients send; unmatched paths share
    one label.
    """

    def __init__(self, app: ASGIApp, *, histogram: Histogram, on_write: Callable[[], None]) -> None:
        self.app = app
        self.histogram = histogram
        self.on_write = on_write

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        root = scope.get("root_path", "")
        status = 500  # what the client gets when the app raises before answering

        async def timed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, timed_send)
        finally:
            route = _route_template(scope, root)
            self.histogram.labels(scope["method"], route, str(status)).observe(
                time.perf_counter() - started
            )
            if scope["method"] in _WRITES and status < 400:
                self.on_write()


def _route_template(scope: Scope, root: str) -> str:
    """The matched route's path template, with the prefixes of any mounts it sits under."""
    route = scope.get("route")
    template = getattr(route, "path", None)
    if route is None or not isinstance(template, str):
        return "<unmatched>"
    # Routers inside a mount see the mount's matched prefix in root_path.
    prefix = str(scope.get("root_path", ""))[len(root) :]
    if isinstance(route, Mount):  # a mounted app without routes (static files): one label
        return f"{route.path}/*"
    # FastAPI keeps an included router whole: its routes' own paths lack the
    # include prefix (/api/v1), which it records in the request's route context.
    context = (scope.get("fastapi") or {}).get("effective_route_context")
    full = getattr(context, "path_format", None)
    if getattr(context, "original_route", None) is route and isinstance(full, str) and full:
        template = full
    return prefix + template


def install_metrics(app: FastAPI) -> None:
    """Add ``GET /metrics`` and request timing to ``app``.

    Reads ``app.state.registry`` (a :class:`~charter.service.Registry`) at each
    scrape. Call before the app starts (middleware cannot be added later).
    """
    metrics = CollectorRegistry(auto_describe=True)
    histogram = Histogram(
        "charter_http_request_duration_seconds",
        "HTTP request latency by method, route template and status.",
        ["method", "route", "status"],
        buckets=LATENCY_BUCKETS,
        registry=metrics,
    )
    metrics.register(RegistryCollector(lambda: getattr(app.state, "registry", None)))
    ProcessCollector(registry=metrics)
    app.state.metrics_registry = metrics

    def wake_dispatcher() -> None:
        dispatcher = getattr(app.state, "webhook_dispatcher", None)
        if dispatcher is not None:
            dispatcher.notify()

    app.add_middleware(_Timing, histogram=histogram, on_write=wake_dispatcher)

    @app.get("/metrics", include_in_schema=False)
    def metrics_endpoint(request: Request) -> Response:
        return Response(generate_latest(metrics), media_type=CONTENT_TYPE_LATEST)


def _setting(settings: Any, name: str, default: Any) -> Any:
    # The webhook settings are optional: a Settings without them runs the defaults.
    value = getattr(settings, name, None)
    return default if value is None else value


def start_dispatcher(app: FastAPI) -> WebhookDispatcher | None:
    """Start delivering webhooks from this process (call from the app's lifespan startup).

    Reads ``app.state.registry`` and ``app.state.settings``; the dispatcher is
    kept in ``app.state.webhook_dispatcher``. Every server process may run one:
    they share the work through the database without delivering anything twice.

    Returns:
        The running dispatcher, or None when ``webhooks_enabled`` is false.
    """
    settings = getattr(app.state, "settings", None)
    if not _setting(settings, "webhooks_enabled", True):
        return None
    dispatcher = WebhookDispatcher(
        app.state.registry,
        poll_interval_s=float(_setting(settings, "webhook_poll_interval_s", 1.0)),
        max_attempts=int(_setting(settings, "webhook_max_attempts", 12)),
        backoff_base_s=float(_setting(settings, "webhook_backoff_base_s", 2.0)),
    )
    dispatcher.start()
    app.state.webhook_dispatcher = dispatcher
    return dispatcher


def stop_dispatcher(app: FastAPI) -> None:
    """Stop this process's dispatcher (call from the lifespan shutdown); idempotent."""
    dispatcher = getattr(app.state, "webhook_dispatcher", None)
    if dispatcher is not None:
        dispatcher.stop()
        app.state.webhook_dispatcher = None
