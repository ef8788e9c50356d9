"""Webhook delivery: an outbox that tails the ledger, and payload signatures.

Every state change appends a typed ledger entry in its own transaction, so the
ledger *is* the outbox. :class:`WebhookDispatcher` runs beside the server (a
thread per process) and, on each pass:

1. **fans out** new entries: one delivery row per matching active subscription,
   moving a shared cursor with a compare-and-set, so of several processes only
   one queues a given stretch of the ledger (and a unique key on
   ``(webhook, ledger_seq)`` backs that up);
2. **claims** due deliveries, each attempt with a compare-and-set on its
   attempt count that also leases it, then POSTs the signed payload;
3. **records** each attempt in the delivery's log, and either marks it
   delivered (any 2xx), schedules a retry with exponential backoff and jitter,
   or marks it failed after ``max_attempts``.

Delivery is at-least-once: a process that dies between the POST and recording
it leaves the delivery to be retried when its lease ends. Receivers dedupe on
the ``Charter-Delivery`` id, which is the same on every attempt.

Receivers check signatures with :func:`verify_signature` (defined in
:mod:`charter.domain.webhooks`, which needs only the standard library; this
module imports ``httpx`` only when it sends).
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from charter.domain.canonical import loads
from charter.domain.entities import format_time
from charter.domain.errors import AlreadyExistsError
from charter.domain.webhooks import (
    WEBHOOK_EVENTS,
    Attempt,
    Delivery,
    DeliveryStatus,
    sign,
    verify_signature,
)
from charter.store import Store

if TYPE_CHECKING:
    import httpx

    from charter.store.webhooks import DueDelivery

__all__ = ["DispatchReport", "WebhookDispatcher", "payload", "sign", "verify_signature"]

log = logging.getLogger("charter.webhooks")

CURSOR = "dispatcher"
USER_AGENT = "Charter-Webhooks/1"
_FAN_OUT_BATCH = 1000
_MAX_FAN_OUTS = 100  # batches per pass, so sending is never starved by a long backlog
_MAX_ERROR = 500


def payload(delivery: Delivery, entry_body: bytes, leaf_hash: bytes) -> bytes:
    """The JSON body POSTed for ``delivery``: the same bytes on every attempt.

    ``entry`` is the ledger entry itself, so a receiver can check it against the
    registry's signed log: ``leaf_hash`` is ``sha256(0x00 || canonical(entry))``,
    and ``charter audit proof <ledger_seq>`` proves its inclusion.
    """
    document = {
        "delivery_id": delivery.delivery_id,
        "webhook_id": delivery.webhook_id,
        "type": delivery.event_type,
        "ledger_seq": delivery.ledger_seq,
        "leaf_hash": leaf_hash.hex(),
        "entry": loads(entry_body),
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


class _HasStore(Protocol):
    store: Store


@dataclass
class DispatchReport:
    """What one :meth:`WebhookDispatcher.run_once` pass did."""

    queued: int = 0
    attempted: int = 0
    delivered: int = 0
    retrying: int = 0
    failed: int = 0


def _default_client() -> httpx.Client:
    import httpx

    # No redirects: a 3xx is the receiver's misconfiguration, and following it
    # would send signed registry events to a URL nobody subscribed.
    return httpx.Client(timeout=10.0, follow_redirects=False, headers={"User-Agent": USER_AGENT})


class WebhookDispatcher:
    """Delivers ledger events to webhook subscriptions, off the request path.

    Example::

        dispatcher = WebhookDispatcher(registry, poll_interval_s=1.0)
        dispatcher.start()      # a daemon thread; or call run_once() yourself
        ...
        dispatcher.stop()
    """

    def __init__(
        self,
        registry: _HasStore,
        *,
        poll_interval_s: float = 1.0,
        max_attempts: int = 12,
        backoff_base_s: float = 2.0,
        backoff_max_s: float = 3600.0,
        lease_s: float = 60.0,
        batch: int = 50,
        concurrency: int = 8,
        http_client: Callable[[], httpx.Client] | None = None,
        clock: Callable[[], datetime] | None = None,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        """Configure a dispatcher (nothing runs until :meth:`start` or :meth:`run_once`).

        Args:
            registry: anything with a ``store`` (a :class:`charter.service.Registry`).
            poll_interval_s: the longest wait between passes (:meth:`notify` wakes early).
            max_attempts: attempts before a delivery is marked failed.
            backoff_base_s: the wait after the first failed attempt; doubles after each.
            backoff_max_s: the longest wait between two attempts.
            lease_s: how long a claimed attempt is left alone before another process
                may retry it (longer than the HTTP timeout).
            batch: deliveries claimed per pass.
            concurrency: parallel POSTs. A slow receiver holds up the others only
                until its timeout (10 s): the next pass starts when this one's POSTs end.
            http_client: makes the ``httpx.Client`` to send with (tests pass a stub).
            clock: the current UTC time (tests pass a fake one).
            jitter: a number in [0, 1); each wait is scaled by ``0.5 + jitter() / 2``.
        """
        if max_attempts < 1 or poll_interval_s <= 0 or backoff_base_s < 0:
            raise ValueError("max_attempts >= 1, poll_interval_s > 0, backoff_base_s >= 0")
        self.store = registry.store
        self.poll_interval_s = poll_interval_s
        self.max_attempts = max_attempts
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self.lease_s = lease_s
        self.batch = batch
        self.concurrency = concurrency
        self._make_client = http_client or _default_client
        self._clock = clock or (lambda: datetime.now(UTC))
        self._jitter = jitter
        self._since: dict[int, int] = {}  # webhook id -> seq of its webhook.added
        self._client: httpx.Client | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # one pass at a time per dispatcher
        # Set by a pass that found no active subscription and nothing due: until the
        # next poll, a write cannot have produced work, so notify() need not wake us.
        self._idle = False
        self._saw_hooks = False

    # -- lifecycle ------------------------------------------------------------
    def start(self) -> None:
        """Run passes in a daemon thread until :meth:`stop`."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="charter-webhooks", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 15.0) -> None:
        """Stop the thread (waiting up to ``timeout_s`` for a pass to end) and close."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None
            if self._client is not None:
                self._client.close()
                self._client = None

    def notify(self) -> None:
        """Wake the thread for a pass now (cheap; call after a write).

        Ignored while the last pass found no active subscription: with none, a
        write queues nothing, and waking for it would cost two reads per request.
        A subscription added meanwhile is seen at the next poll (its first events
        are queued then, none lost: the fan-out reads from the ledger).
        """
        if not self._idle:
            self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                report = self.run_once()
            except Exception:  # the thread must outlive a bad pass (database restart…)
                log.exception("webhook dispatch pass failed")
                report = DispatchReport()
            busy = report.attempted >= self.batch or report.queued > 0
            if not busy:
                self._wake.wait(self.poll_interval_s)
            self._wake.clear()

    # -- one pass -------------------------------------------------------------
    def run_once(self) -> DispatchReport:
        """Queue new events, then make every due attempt; return what was done."""
        with self._lock:
            report = DispatchReport()
            self._saw_hooks = False
            for _ in range(_MAX_FAN_OUTS):
                added = self._fan_out()
                if added is None:
                    break
                report.queued += added
            due = self._claim()
            self._idle = not self._saw_hooks and not due
            if due:
                if self._client is None:
                    # Made on first use: a dispatcher with nothing to send never imports httpx.
                    self._client = self._make_client()
                pool = self._pool or ThreadPoolExecutor(self.concurrency, "charter-webhook")
                self._pool = pool
                for outcome in pool.map(self._attempt, due):
                    report.attempted += 1
                    if outcome is DeliveryStatus.DELIVERED:
                        report.delivered += 1
                    elif outcome is DeliveryStatus.FAILED:
                        report.failed += 1
                    else:
                        report.retrying += 1
            return report

    def _now(self) -> datetime:
        return self._clock()

    def _fan_out(self) -> int | None:
        """Queue one batch of entries; the number queued, or None when caught up."""
        with self.store.read() as tx:
            size, cursor = tx.ledger_size(), tx.webhook_cursor(CURSOR)
            has_hooks = bool(tx.webhooks(active_only=True))
        self._saw_hooks = self._saw_hooks or has_hooks
        if not has_hooks or (cursor is not None and cursor >= size):
            return None  # read-only: an idle dispatcher never takes the write lock
        at = format_time(self._now())
        try:
            with self.store.write() as tx:
                # Read in this order: an entry below ``size`` committed before the
                # size was read, so every subscription added before it is visible
                # to the next statement, on either database.
                cursor, size = tx.webhook_cursor(CURSOR), tx.ledger_size()
                hooks = tx.webhooks(active_only=True)
                since = {h.id: self._added_seq(tx, h.id) for h in hooks}
                # Nothing older than the oldest subscription can match: skip it.
                floor = min((s + 1 for s in since.values() if s is not None), default=size)
                start = max(cursor or 0, floor)
                stop = min(size, start + _FAN_OUT_BATCH) if start < size else size
                if cursor is not None and cursor >= stop:
                    return None
                if not tx.advance_webhook_cursor(CURSOR, expected=cursor, to=stop):
                    raise _Lost
                rows = [
                    {"webhook_id": h.id, "ledger_seq": seq, "event_type": type_,
                     "delivery_id": str(uuid.uuid4()), "at": at}
                    for seq, type_ in tx.ledger_types(start, stop, WEBHOOK_EVENTS)
                    for h in hooks
                    if type_ in h.events and _after(since[h.id], seq)
                ]  # fmt: skip
                return tx.insert_deliveries(rows)
        except _Lost:
            return 0  # another dispatcher queued this stretch: look again
        except AlreadyExistsError:  # two first passes both inserted the cursor row
            return 0

    def _added_seq(self, tx: Any, webhook_id: int) -> int | None:
        # Immutable once written, so each process looks it up once per subscription.
        found = self._since.get(webhook_id)
        if found is None:
            found = tx.first_entry_seq(f"webhook:{webhook_id}", "webhook.added")
            if found is not None:
                self._since[webhook_id] = found
        return found

    def _claim(self) -> list[tuple[DueDelivery, bytes]]:
        now = self._now()
        with self.store.read() as tx:
            due = tx.due_deliveries(now=format_time(now), limit=self.batch)
        if not due:
            return []
        lease, stamp = format_time(now + timedelta(seconds=self.lease_s)), format_time(now)
        with self.store.write() as tx:  # one UPDATE: the write lock is held briefly
            won = {d.id for d in tx.claim_deliveries([d.delivery for d in due],
                                                     lease_until=lease, at=stamp)}  # fmt: skip
        mine = [d for d in due if d.delivery.id in won]
        out = []
        with self.store.read() as tx:  # ledger entries never change: no lock needed
            for d in mine:
                record = tx.entries(d.delivery.ledger_seq, d.delivery.ledger_seq + 1)[0]
                out.append((d, payload(d.delivery, record.body, record.leaf_hash)))
        return out

    def _attempt(self, job: tuple[DueDelivery, bytes]) -> DeliveryStatus:
        due, body = job
        delivery = due.delivery
        started, clock = self._now(), time.perf_counter()
        code, error = self._post(due, body)
        duration = round((time.perf_counter() - clock) * 1000, 3)
        attempt = Attempt(format_time(started), duration, code, error)
        number = delivery.attempts + 1
        if code is not None and 200 <= code < 300:
            status, next_at = DeliveryStatus.DELIVERED, attempt.at
        elif number >= self.max_attempts:
            status, next_at = DeliveryStatus.FAILED, attempt.at
        else:
            status = DeliveryStatus.PENDING
            next_at = format_time(self._now() + timedelta(seconds=self.backoff(number)))
        with self.store.write() as tx:
            if not tx.finish_attempt(delivery, attempt, status=status, next_attempt_at=next_at):
                # Its lease ran out and another process took the next attempt, or
                # the subscription was removed meanwhile: their record stands.
                log.warning("delivery %s: outcome of attempt %d not recorded",
                            delivery.delivery_id, number)  # fmt: skip
        return status

    def backoff(self, attempts: int) -> float:
        """Seconds to wait after ``attempts`` failed attempts: doubling, capped, jittered.

        The jitter (half to all of the wait) spreads the retries of many
        deliveries that failed together, so a receiver coming back up is not hit
        by all of them in the same second.
        """
        wait = min(self.backoff_max_s, self.backoff_base_s * 2.0 ** (attempts - 1))
        return wait * (0.5 + self._jitter() / 2)

    def _post(self, due: DueDelivery, body: bytes) -> tuple[int | None, str | None]:
        delivery = due.delivery
        timestamp = int(self._now().timestamp())
        headers = {
            "Content-Type": "application/json",
            "Charter-Webhook-Id": str(delivery.webhook_id),
            "Charter-Delivery": delivery.delivery_id,
            "Charter-Event": delivery.event_type,
            "Charter-Timestamp": str(timestamp),
            "Charter-Signature": sign(due.secret, timestamp, body),
        }
        client = self._client
        if client is None:  # pragma: no cover - run_once makes it before any attempt
            raise RuntimeError("no HTTP client: attempts run inside run_once")
        try:
            response = client.post(due.url, content=body, headers=headers)
        except Exception as exc:  # connection refused, timeout, TLS, bad URL: all retried
            return None, f"{type(exc).__name__}: {exc}"[:_MAX_ERROR]
        if 200 <= response.status_code < 300:
            return response.status_code, None
        return response.status_code, f"HTTP {response.status_code}"


def _after(added_seq: int | None, seq: int) -> bool:
    """Whether entry ``seq`` came after the subscription's ``webhook.added`` entry."""
    return added_seq is not None and seq > added_seq


class _Lost(Exception):
    """Another dispatcher moved the cursor first (rolls the fan-out back)."""
