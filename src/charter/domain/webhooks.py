"""Webhook subscriptions and their deliveries: shapes and validation (no I/O).

A subscription names a URL and the ledger event types it wants. Each matching
ledger entry becomes one :class:`Delivery` per subscription, retried until the
receiver answers 2xx or the attempts run out. The secret that signs payloads is
shown once, when the subscription is created, and never written to the ledger.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from charter.domain.errors import InvalidInputError

__all__ = [
    "WEBHOOK_EVENTS",
    "Attempt",
    "Delivery",
    "DeliveryStatus",
    "Webhook",
    "new_secret",
    "sign",
    "url_digest",
    "url_origin",
    "validate_events",
    "validate_secret",
    "validate_url",
    "verify_signature",
]

# The ledger event types a subscription may ask for. Each pair is one fact and
# its undoing: a deployer following stage.assigned must hear of rollbacks, and
# an on-call rota paged by version.at_risk must hear when the risk cleared.
WEBHOOK_EVENTS = (
    "version.published",
    "gate.decided",
    "stage.assigned",
    "stage.rolled_back",
    "approval.recorded",
    "profile.amended",
    "version.at_risk",
    "version.risk_cleared",
)

_MAX_URL = 2000
_MIN_SECRET, _MAX_SECRET = 16, 200


class DeliveryStatus(StrEnum):
    """Where a delivery stands: still trying, done, or given up."""

    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"

    @classmethod
    def parse(cls, value: str) -> DeliveryStatus:
        """Parse a status.

        Raises:
            InvalidInputError: for anything but pending, delivered or failed.
        """
        try:
            return cls(value)
        except ValueError:
            raise InvalidInputError(
                f"invalid delivery status {value!r}: use pending, delivered or failed",
                field="status",
                valid=[s.value for s in cls],
            ) from None


def validate_url(url: str) -> str:
    """Check a receiver URL: absolute http(s) with a host, no credentials, no fragment.

    Raises:
        InvalidInputError: naming what is wrong.
    """
    url = url.strip()
    parts = urlsplit(url)
    if len(url) > _MAX_URL or parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInputError(
            f"invalid webhook URL {url[:200]!r}: use an absolute http:// or https:// URL",
            field="url",
        )
    if parts.username or parts.password or parts.fragment:
        # Credentials in the URL would be shown in every listing; the signature
        # is how a receiver authenticates Charter.
        raise InvalidInputError(
            "a webhook URL may not carry user:password@ or a #fragment", field="url"
        )
    return url


def validate_events(events: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Check event names against :data:`WEBHOOK_EVENTS`; return them deduplicated, sorted.

    Raises:
        InvalidInputError: when none is given or one is unknown.
    """
    if not events:
        raise InvalidInputError("a webhook needs at least one event", field="events",
                                valid=list(WEBHOOK_EVENTS))  # fmt: skip
    unknown = sorted(set(events) - set(WEBHOOK_EVENTS))
    if unknown:
        raise InvalidInputError(
            f"unknown webhook event {unknown[0]!r}: use {', '.join(WEBHOOK_EVENTS)}",
            field="events",
            valid=list(WEBHOOK_EVENTS),
        )
    return tuple(sorted(set(events)))


def new_secret() -> str:
    """A fresh signing secret: 256 random bits, URL-safe text."""
    return "whsec_" + secrets.token_urlsafe(32)


def validate_secret(secret: str) -> str:
    """Check a caller-chosen secret: 16-200 printable characters, no spaces.

    Raises:
        InvalidInputError: when it is too short, too long or holds odd characters.
    """
    if (
        not (_MIN_SECRET <= len(secret) <= _MAX_SECRET)
        or not secret.isprintable()
        or (any(c.isspace() for c in secret))
    ):
        raise InvalidInputError(
            f"a webhook secret is {_MIN_SECRET}-{_MAX_SECRET} printable characters without "
            "spaces (omit it to have one generated)",
            field="secret",
        )
    return secret


def url_digest(url: str) -> str:
    """``sha256:<hex>`` of a URL: what the ledger keeps instead of the URL itself.

    Receiver URLs often carry secrets in their path (chat incoming-webhook URLs
    do), and the ledger can never be edited: an auditor holding a candidate URL
    can still confirm it.
    """
    return "sha256:" + hashlib.sha256(url.encode()).hexdigest()


def url_origin(url: str) -> str:
    """``scheme://host[:port]`` of a URL (safe to record)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def sign(secret: str, timestamp: int | str, body: bytes) -> str:
    """The ``Charter-Signature`` header value: ``sha256=<hex HMAC of "<timestamp>.<body>">``.

    Signing the timestamp with the body lets a receiver refuse old, replayed
    requests: an attacker cannot move the timestamp without the secret.
    """
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify_signature(
    secret: str,
    *,
    body: bytes,
    timestamp: str,
    signature: str,
    tolerance_s: float = 300.0,
    now: float | None = None,
) -> bool:
    """Check a webhook request as a receiver: signature over the raw body, fresh timestamp.

    Args:
        secret: the subscription's secret (shown once by ``charter webhook add``).
        body: the raw request body, exactly as received (before any JSON parsing).
        timestamp: the ``Charter-Timestamp`` header (Unix seconds).
        signature: the ``Charter-Signature`` header; several ``sha256=…`` values
            separated by commas are accepted (any one may match).
        tolerance_s: how far the timestamp may be from ``now``, either way.
        now: the current Unix time (default: the clock).

    Returns:
        True only when a signature matches and the timestamp is within tolerance.
    """
    try:
        sent = int(timestamp)
    except ValueError:
        return False
    if abs((time.time() if now is None else now) - sent) > tolerance_s:
        return False
    expected = sign(secret, sent, body)
    return any(hmac.compare_digest(expected, s.strip()) for s in signature.split(","))


@dataclass(frozen=True)
class Webhook:
    """A subscription: where to POST which event types. The secret is never held here."""

    id: int
    url: str
    events: tuple[str, ...]
    created_by: str
    created_at: str
    active: bool

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (no secret)."""
        return {"id": self.id, "url": self.url, "events": list(self.events),
                "created_by": self.created_by, "created_at": self.created_at,
                "active": self.active}  # fmt: skip

    def ledger_state(self) -> dict[str, Any]:
        """What the ledger records: the URL's origin and digest, never the URL or secret."""
        return {"id": self.id, "origin": url_origin(self.url), "url_digest": url_digest(self.url),
                "events": list(self.events), "created_by": self.created_by,
                "created_at": self.created_at}  # fmt: skip


@dataclass(frozen=True)
class Attempt:
    """One POST of a delivery: when, how long, and what came back."""

    at: str
    duration_ms: float
    status_code: int | None
    error: str | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (as kept in the delivery log)."""
        return {"at": self.at, "duration_ms": self.duration_ms,
                "status_code": self.status_code, "error": self.error}  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Attempt:
        """Rebuild from :meth:`to_dict`."""
        return cls(str(data["at"]), float(data["duration_ms"]), data.get("status_code"),
                   data.get("error"))  # fmt: skip


@dataclass(frozen=True)
class Delivery:
    """One ledger entry on its way to one subscription, with every attempt so far."""

    id: int
    webhook_id: int
    ledger_seq: int
    event_type: str
    delivery_id: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: str
    last_status_code: int | None
    last_error: str | None
    updated_at: str
    log: tuple[Attempt, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, attempts included."""
        return {"id": self.id, "webhook_id": self.webhook_id, "ledger_seq": self.ledger_seq,
                "event_type": self.event_type, "delivery_id": self.delivery_id,
                "status": self.status.value, "attempts": self.attempts,
                "next_attempt_at": self.next_attempt_at,
                "last_status_code": self.last_status_code, "last_error": self.last_error,
                "updated_at": self.updated_at, "log": [a.to_dict() for a in self.log]}  # fmt: skip
