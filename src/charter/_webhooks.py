"""Webhook use cases: subscribe a URL to ledger events, list, remove, read the log.

Subscriptions are admin business: a receiver URL often carries a secret of its
own, and every subscription is a new place registry events flow to. Adding and
removing one are ledger events (``webhook.added``, ``webhook.removed``) that
record the URL's origin and digest, never the URL itself or the signing secret.
Sending is not done here: :class:`charter.webhooks.WebhookDispatcher` tails the
ledger, so the request that caused an event never waits for a receiver.
Mixed into :class:`charter.service.Registry`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from charter._gates import _require
from charter.domain.entities import LedgerRecord
from charter.domain.errors import InvalidInputError, NotFoundError
from charter.domain.stages import Role
from charter.domain.webhooks import (
    Delivery,
    DeliveryStatus,
    Webhook,
    new_secret,
    validate_events,
    validate_secret,
    validate_url,
)
from charter.journal import now
from charter.store import Store, WriteTx

__all__ = ["WebhookUseCases"]

_MAX_LIMIT = 1000


class _Host(Protocol):
    store: Store

    @property
    def user(self) -> str: ...

    def _record(
        self, tx: WriteTx, type_: str, subject: str, data: dict[str, Any]
    ) -> LedgerRecord: ...


class WebhookUseCases:
    """Webhook subscriptions and their delivery log."""

    def add_webhook(
        self: _Host, *, url: str, events: Sequence[str], secret: str | None = None
    ) -> tuple[Webhook, str]:
        """Subscribe ``url`` to ledger ``events`` (admin only).

        Args:
            url: absolute http(s) URL the dispatcher POSTs to.
            events: event types from :data:`charter.domain.webhooks.WEBHOOK_EVENTS`.
            secret: the HMAC signing secret; generated when omitted.

        Returns:
            (the subscription, its secret). The secret is shown only here.

        Raises:
            InvalidInputError: bad URL, unknown event, weak secret.
            ForbiddenError: the acting user is not an admin.
        """
        checked_url = validate_url(url)
        checked_events = validate_events(tuple(events))
        key = validate_secret(secret) if secret is not None else new_secret()
        at = now()
        with self.store.write() as tx:
            _require(tx, self.user, Role.ADMIN, "manage webhooks")
            webhook_id = tx.insert_webhook(
                url=checked_url, events=checked_events, secret=key, by=self.user, at=at
            )
            hook = Webhook(webhook_id, checked_url, checked_events, self.user, at, True)
            self._record(tx, "webhook.added", f"webhook:{webhook_id}",
                         {"webhook": hook.ledger_state()})  # fmt: skip
        return hook, key

    def list_webhooks(self: _Host) -> list[Webhook]:
        """Every subscription, removed ones included (admin only: URLs may hold secrets).

        Raises:
            ForbiddenError: the acting user is not an admin.
        """
        with self.store.read() as tx:
            _require(tx, self.user, Role.ADMIN, "list webhooks")
            return tx.webhooks()

    def remove_webhook(self: _Host, *, webhook_id: int) -> Webhook:
        """Deactivate a subscription; its pending deliveries are given up (admin only).

        The row and its delivery log stay, for the record.

        Raises:
            NotFoundError: no such subscription, or it was removed already.
            ForbiddenError: the acting user is not an admin.
        """
        at = now()
        with self.store.write() as tx:
            _require(tx, self.user, Role.ADMIN, "manage webhooks")
            hook = tx.get_webhook(webhook_id)
            if hook is None or not hook.active:
                raise NotFoundError(
                    f"no active webhook {webhook_id}: see `charter webhook list`",
                    webhook_id=webhook_id,
                )
            abandoned = tx.deactivate_webhook(webhook_id, at=at)
            self._record(tx, "webhook.removed", f"webhook:{webhook_id}",
                         {"id": webhook_id, "abandoned_deliveries": abandoned})  # fmt: skip
        return Webhook(hook.id, hook.url, hook.events, hook.created_by, hook.created_at, False)

    def webhook_deliveries(
        self: _Host,
        *,
        webhook_id: int | None = None,
        status: str | None = None,
        limit: int = 100,
    ) -> list[Delivery]:
        """The delivery log, newest event first, each delivery with its attempts (admin only).

        Raises:
            InvalidInputError: an unknown status or a limit outside 1-1000.
            ForbiddenError: the acting user is not an admin.
        """
        wanted = DeliveryStatus.parse(status).value if status is not None else None
        if not 1 <= limit <= _MAX_LIMIT:
            raise InvalidInputError(f"limit must be 1-{_MAX_LIMIT}", field="limit", value=limit)
        with self.store.read() as tx:
            _require(tx, self.user, Role.ADMIN, "read webhook deliveries")
            return tx.deliveries(webhook_id=webhook_id, status=wanted, limit=limit)
