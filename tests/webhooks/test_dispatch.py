"""The dispatcher against a real receiver: signatures, retries, give-up, exactly-once
queueing across processes, and never blocking the write that caused an event."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any, ClassVar

import pytest

from charter.domain.canonical import canonical_bytes
from charter.ledger import leaf_hash
from charter.service import Registry
from charter.settings import Settings
from charter.webhooks import WebhookDispatcher, sign, verify_signature
from webhooks._support import Clock, Receiver, deploy


def _dispatcher(reg: Registry, **options: Any) -> WebhookDispatcher:
    options = {"poll_interval_s": 0.02, "backoff_base_s": 0.0, **options}
    return WebhookDispatcher(reg, **options)


def _wait_for(predicate: Any, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_a_subscribed_event_arrives_once_signed_with_its_ledger_entry(
    registry: Registry, receiver: Receiver, artifact: Path
) -> None:
    deploy(registry, artifact, version="1.0.0")  # before the subscription: never sent
    hook, secret = registry.add_webhook(url=receiver.url, events=["version.published"])
    deploy(registry, artifact, version="1.1.0")
    dispatcher = _dispatcher(registry)
    report = dispatcher.run_once()
    assert (report.queued, report.attempted, report.delivered) == (1, 1, 1)
    (got,) = receiver.requests
    h = got.headers
    assert verify_signature(secret, body=got.body, timestamp=h["Charter-Timestamp"],
                            signature=h["Charter-Signature"])  # fmt: skip
    assert h["Charter-Signature"] == sign(secret, h["Charter-Timestamp"], got.body)
    assert not verify_signature("another-secret-0123", body=got.body,
                                timestamp=h["Charter-Timestamp"],
                                signature=h["Charter-Signature"])  # fmt: skip
    assert not verify_signature(secret, body=got.body + b" ", timestamp=h["Charter-Timestamp"],
                                signature=h["Charter-Signature"])  # fmt: skip
    stale = str(int(h["Charter-Timestamp"]) - 3600)
    assert not verify_signature(secret, body=got.body, timestamp=stale,
                                signature=sign(secret, stale, got.body))  # fmt: skip
    doc = json.loads(got.body)
    assert h["Charter-Webhook-Id"] == str(hook.id) == str(doc["webhook_id"])
    assert h["Charter-Delivery"] == doc["delivery_id"] and h["Charter-Event"] == doc["type"]
    assert doc["type"] == "version.published" and doc["entry"]["subject"] == "version:m@1.1.0"
    # The entry is the ledger's own: its leaf hash matches, so `audit proof` covers it.
    assert doc["leaf_hash"] == leaf_hash(canonical_bytes(doc["entry"])).hex()
    assert registry.proof(seq=doc["ledger_seq"]).leaf_hash == doc["leaf_hash"]
    (delivery,) = registry.webhook_deliveries()
    assert delivery.status.value == "delivered" and delivery.attempts == 1
    assert delivery.log[0].status_code == 200 and delivery.log[0].duration_ms > 0
    assert dispatcher.run_once().attempted == 0
    assert len(receiver.requests) == 1
    dispatcher.stop()


def test_events_nobody_subscribed_to_are_not_sent(
    registry: Registry, receiver: Receiver, artifact: Path
) -> None:
    registry.add_webhook(url=receiver.url, events=["stage.assigned"])
    deploy(registry, artifact)
    registry.gate(model="m", version="1.0.0", stage="staging")
    dispatcher = _dispatcher(registry)
    assert dispatcher.run_once().attempted == 0
    registry.promote(model="m", version="1.0.0", stage="staging")  # gates again, then moves
    dispatcher.run_once()
    assert [json.loads(r.body)["type"] for r in receiver.requests] == ["stage.assigned"]
    dispatcher.stop()


def test_a_failing_receiver_is_retried_with_backoff_until_it_answers(
    registry: Registry, receiver: Receiver, artifact: Path, clock: Clock
) -> None:
    registry.add_webhook(url=receiver.url, events=["version.published"])
    deploy(registry, artifact)
    receiver.script = [500, 503]
    dispatcher = _dispatcher(registry, backoff_base_s=10.0, clock=clock, jitter=lambda: 0.5)
    assert dispatcher.backoff(1) == pytest.approx(7.5)  # 10 s, times 0.5 + 0.5 / 2
    assert dispatcher.run_once().retrying == 1
    clock.advance(7.0)
    assert dispatcher.run_once().attempted == 0  # not due yet: backing off
    clock.advance(1.0)
    assert dispatcher.run_once().retrying == 1  # second failure: now 15 s
    clock.advance(14.0)
    assert dispatcher.run_once().attempted == 0
    clock.advance(1.5)
    assert dispatcher.run_once().delivered == 1
    (delivery,) = registry.webhook_deliveries()
    assert delivery.status.value == "delivered" and delivery.attempts == 3
    assert [a.status_code for a in delivery.log] == [500, 503, 200]
    assert [a.error for a in delivery.log] == ["HTTP 500", "HTTP 503", None]
    # Every attempt is the same delivery, the same bytes, freshly signed.
    assert len({r.headers["Charter-Delivery"] for r in receiver.requests}) == 1
    assert len({r.body for r in receiver.requests}) == 1
    assert len({r.headers["Charter-Timestamp"] for r in receiver.requests}) == 3
    dispatcher.stop()


def test_a_receiver_that_never_answers_well_is_given_up_with_its_log(
    registry: Registry, receiver: Receiver, artifact: Path
) -> None:
    receiver.default_status = 500
    registry.add_webhook(url=receiver.url, events=["version.published"])
    registry.add_webhook(url="http://127.0.0.1:9/closed", events=["version.published"])
    deploy(registry, artifact)
    dispatcher = _dispatcher(registry, max_attempts=3)
    reports = [dispatcher.run_once() for _ in range(4)]
    assert [r.attempted for r in reports] == [2, 2, 2, 0]
    assert reports[2].failed == 2
    refused, errored = registry.webhook_deliveries()  # same entry: ordered by webhook id
    for delivery in (refused, errored):
        assert delivery.status.value == "failed" and delivery.attempts == 3
        assert len(delivery.log) == 3
    assert errored.last_status_code is None and "Connect" in (errored.last_error or "")
    assert refused.last_status_code == 500 and refused.last_error == "HTTP 500"
    assert len(receiver.requests) == 3
    assert len(registry.webhook_deliveries(status="failed")) == 2
    dispatcher.stop()


class _Counting(WebhookDispatcher):
    """A dispatcher that counts the attempts it makes, by name."""

    attempts: ClassVar[Counter[str]] = Counter()

    def __init__(self, reg: Registry, name: str) -> None:
        super().__init__(reg, poll_interval_s=0.02, backoff_base_s=0.0, batch=5)
        self.name = name
        self.attempts.pop(name, None)

    def _attempt(self, job: Any) -> Any:
        self.attempts.update([self.name])
        return super()._attempt(job)


def test_two_dispatchers_on_one_database_deliver_each_event_once(
    registry: Registry, settings: Settings, receiver: Receiver, artifact: Path
) -> None:
    registry.add_webhook(url=receiver.url, events=["gate.decided"])
    registry.add_webhook(url=receiver.url + "/second", events=["gate.decided", "stage.assigned"])
    deploy(registry, artifact)
    # Another process: its own registry, engine and connections on the same database.
    other = Registry(settings)
    first, second = _Counting(registry, "first"), _Counting(other, "second")
    for _ in range(10):  # a backlog both find on their first pass
        registry.gate(model="m", version="1.0.0", stage="staging")
    first.start()
    second.start()
    try:
        for _ in range(10):  # and events that keep coming while both dispatch
            registry.gate(model="m", version="1.0.0", stage="staging")
            other.gate(model="m", version="1.0.0", stage="staging")
        registry.promote(model="m", version="1.0.0", stage="staging")
        expected = 31 * 2 + 1  # 31 gate decisions to both, one stage move to the second
        _wait_for(lambda: len(registry.webhook_deliveries(status="delivered")) == expected)
        time.sleep(0.2)  # room for a duplicate to show up, were there one
    finally:
        first.stop()
        second.stop()
        other.close()
    keys = Counter((r.path, json.loads(r.body)["ledger_seq"]) for r in receiver.requests)
    assert len(keys) == expected and set(keys.values()) == {1}  # one per (subscription, entry)
    assert len({r.headers["Charter-Delivery"] for r in receiver.requests}) == expected
    # No attempt was made twice; both took part (measured: 30/33, 24/39, 10/53 splits).
    assert _Counting.attempts["first"] + _Counting.attempts["second"] == expected


def test_the_write_that_caused_an_event_never_waits_for_the_receiver(
    registry: Registry, receiver: Receiver, artifact: Path
) -> None:
    registry.add_webhook(url=receiver.url, events=["gate.decided"])
    deploy(registry, artifact)
    receiver.hold = True  # the receiver takes each request and sits on it
    dispatcher = _dispatcher(registry)
    dispatcher.start()
    try:
        registry.gate(model="m", version="1.0.0", stage="staging")
        receiver.note("first gate returned")
        assert receiver.arrived.wait(10)
        # The receiver now holds the first delivery; more writes go straight through.
        for n in range(3):
            registry.gate(model="m", version="1.0.0", stage="staging")
            receiver.note(f"gate {n + 2} returned")
        receiver.note("writes done")
        receiver.release.set()
        _wait_for(lambda: len(registry.webhook_deliveries(status="delivered")) == 4)
    finally:
        dispatcher.stop()
    timeline = receiver.timeline
    first = next(t for t in timeline if t.startswith("received"))
    answered = "answered " + first.split(" ", 1)[1]
    assert timeline.index("first gate returned") < timeline.index(answered)
    assert timeline.index(first) < timeline.index("writes done") < timeline.index(answered)


def test_a_removed_subscription_gets_nothing_more(
    registry: Registry, receiver: Receiver, artifact: Path
) -> None:
    hook, _ = registry.add_webhook(url=receiver.url, events=["version.published"])
    deploy(registry, artifact, version="1.0.0")
    dispatcher = _dispatcher(registry)
    dispatcher._fan_out()  # queued, not yet sent
    registry.remove_webhook(webhook_id=hook.id)
    deploy(registry, artifact, version="1.1.0")
    assert dispatcher.run_once().attempted == 0
    (given_up,) = registry.webhook_deliveries()
    assert given_up.status.value == "failed" and given_up.last_error == "subscription removed"
    assert receiver.requests == []
    dispatcher.stop()


def test_stop_is_prompt_and_idempotent(registry: Registry) -> None:
    dispatcher = _dispatcher(registry, poll_interval_s=30.0)
    dispatcher.start()
    done = threading.Event()

    def stop() -> None:
        dispatcher.stop()
        done.set()

    threading.Thread(target=stop, daemon=True).start()
    assert done.wait(5)  # stop wakes the thread from its 30 s wait
    dispatcher.stop()


def test_writes_do_not_wake_a_dispatcher_without_subscriptions(
    registry: Registry, receiver: Receiver, artifact: Path
) -> None:
    # Waking costs two reads per write request; with nothing subscribed it is skipped,
    # and the next poll picks up a subscription added meanwhile, its events included.
    dispatcher = _dispatcher(registry)
    assert dispatcher.run_once().queued == 0
    dispatcher.notify()
    assert not dispatcher._wake.is_set()
    registry.add_webhook(url=receiver.url, events=["version.published"])
    deploy(registry, artifact, version="1.0.0")
    assert dispatcher.run_once().delivered == 1  # the poll: nothing was lost
    dispatcher.notify()
    assert dispatcher._wake.is_set()
    dispatcher.stop()
