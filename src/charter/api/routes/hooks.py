"""Webhook subscriptions and their delivery log (admin only)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response

from charter.api.deps import Admin, reply
from charter.api.responses import DeliveryOut, WebhookCreatedOut, WebhookOut
from charter.api.routes import ERRORS, ROW_ID_MAX
from charter.api.schemas import WebhookIn

__all__ = ["router"]

router = APIRouter(responses=ERRORS, tags=["webhooks"])
Obj = dict[str, Any]


@router.post("/webhooks", status_code=201, response_model=WebhookCreatedOut)
def add_webhook(reg: Admin, body: WebhookIn) -> Response:
    """Subscribe a URL: ``{"webhook", "secret"}`` (the secret is shown only here)."""
    hook, secret = reg.add_webhook(url=body.url, events=body.events, secret=body.secret)
    return reply({"webhook": hook, "secret": secret}, 201)


@router.get("/webhooks", response_model=list[WebhookOut])
def list_webhooks(reg: Admin) -> Response:
    """Every subscription, removed ones included."""
    return reply(reg.list_webhooks())


@router.delete("/webhooks/{webhook_id}", response_model=WebhookOut)
def remove_webhook(reg: Admin, webhook_id: Annotated[int, Path(ge=1, le=ROW_ID_MAX)]) -> Response:
    """Deactivate a subscription."""
    return reply(reg.remove_webhook(webhook_id=webhook_id))


@router.get("/webhooks/deliveries", response_model=list[DeliveryOut])
def deliveries(
    reg: Admin,
    webhook_id: Annotated[int | None, Query(ge=1, le=ROW_ID_MAX)] = None,
    status: Annotated[str | None, Query(pattern="^(pending|delivered|failed)$")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Response:
    """The delivery log, newest event first."""
    return reply(reg.webhook_deliveries(webhook_id=webhook_id, status=status, limit=limit))
