"""Subscriptions as use cases: validation, admin only, ledger events without secrets."""

from __future__ import annotations

from pathlib import Path

import pytest

from charter.domain.errors import ForbiddenError, InvalidInputError, NotFoundError
from charter.domain.webhooks import url_digest
from charter.service import Registry
from charter.webhooks import WebhookDispatcher
from webhooks._support import Receiver, deploy

SECRET_URL = "https://chat.example.com/hooks/T0001/B0002/sUpErSeCrEtPaTh?x=1"


@pytest.mark.parametrize(
    ("url", "events", "secret", "field"),
    [
        ("ftp://example.com/x", ["gate.decided"], None, "url"),
        ("https:///nohost", ["gate.decided"], None, "url"),
        ("example.com/x", ["gate.decided"], None, "url"),
        ("https://user:pw@example.com/x", ["gate.decided"], None, "url"),
        ("https://example.com/x", [], None, "events"),
        ("https://example.com/x", ["gate.decided", "model.created"], None, "events"),
        ("https://example.com/x", ["gate.decided"], "short", "secret"),
        ("https://example.com/x", ["gate.decided"], "has a space in it!!", "secret"),
    ],
)
def test_bad_subscriptions_are_refused_and_change_nothing(
    registry: Registry, url: str, events: list[str], secret: str | None, field: str
) -> None:
    size = len(registry.audit_log())
    with pytest.raises(InvalidInputError) as caught:
        registry.add_webhook(url=url, events=events, secret=secret)
    assert caught.value.details["field"] == field
    assert len(registry.audit_log()) == size and registry.list_webhooks() == []


def test_only_an_admin_manages_or_reads_webhooks(registry: Registry) -> None:
    registry.add_user(name="bob", role="approver")
    hook, _ = registry.add_webhook(url="https://example.com/x", events=["gate.decided"])
    bob = registry.as_user("bob")
    with pytest.raises(ForbiddenError, match="admin"):
        bob.add_webhook(url="https://example.com/y", events=["gate.decided"])
    with pytest.raises(ForbiddenError):
        bob.list_webhooks()
    with pytest.raises(ForbiddenError):
        bob.remove_webhook(webhook_id=hook.id)
    with pytest.raises(ForbiddenError):
        bob.webhook_deliveries()


def test_the_ledger_records_a_subscription_without_its_secret_or_url(
    registry: Registry,
) -> None:
    hook, secret = registry.add_webhook(url=SECRET_URL, events=["version.at_risk", "gate.decided"])
    assert secret.startswith("whsec_") and len(secret) > 40
    assert hook.events == ("gate.decided", "version.at_risk") and hook.active
    added = registry.audit_log()[-1]
    assert added.type == "webhook.added" and added.subject == f"webhook:{hook.id}"
    assert secret.encode() not in added.body and b"sUpErSeCrEtPaTh" not in added.body
    assert url_digest(SECRET_URL).encode() in added.body
    assert b'"origin":"https://chat.example.com"' in added.body
    chosen, key = registry.add_webhook(
        url="https://example.com/x", events=["gate.decided"], secret="my-own-secret-0123456"
    )
    assert key == "my-own-secret-0123456" and chosen.id != hook.id
    assert [h.id for h in registry.list_webhooks()] == [hook.id, chosen.id]
    assert registry.verify().ok


def test_removing_a_subscription_gives_up_its_pending_deliveries(
    registry: Registry, receiver: Receiver, artifact: Path
) -> None:
    hook, _ = registry.add_webhook(url=receiver.url, events=["version.published"])
    deploy(registry, artifact)
    WebhookDispatcher(registry)._fan_out()
    removed = registry.remove_webhook(webhook_id=hook.id)
    assert not removed.active and registry.audit_log()[-1].type == "webhook.removed"
    assert b'"abandoned_deliveries":1' in registry.audit_log()[-1].body
    (listed,) = registry.list_webhooks()
    assert not listed.active  # kept, with its log
    with pytest.raises(NotFoundError):
        registry.remove_webhook(webhook_id=hook.id)
    with pytest.raises(NotFoundError):
        registry.remove_webhook(webhook_id=999)
    assert registry.verify().ok


def test_the_delivery_log_filters_and_checks_its_arguments(
    registry: Registry, receiver: Receiver, artifact: Path
) -> None:
    first, _ = registry.add_webhook(url=receiver.url, events=["version.published"])
    second, _ = registry.add_webhook(url=receiver.url, events=["version.published"])
    deploy(registry, artifact, version="1.0.0")
    deploy(registry, artifact, version="1.1.0")
    WebhookDispatcher(registry)._fan_out()
    assert len(registry.webhook_deliveries()) == 4
    mine = registry.webhook_deliveries(webhook_id=first.id, status="pending")
    assert [d.webhook_id for d in mine] == [first.id, first.id]
    assert mine[0].ledger_seq > mine[1].ledger_seq  # newest first
    assert len(registry.webhook_deliveries(limit=1)) == 1
    assert registry.webhook_deliveries(status="delivered") == []
    with pytest.raises(InvalidInputError, match="status"):
        registry.webhook_deliveries(status="lost")
    with pytest.raises(InvalidInputError, match="limit"):
        registry.webhook_deliveries(limit=0)
    assert second.id != first.id
