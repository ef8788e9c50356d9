"""Store queries for webhook subscriptions, their outbox, and the metrics scrape.

The outbox is shared by every server process on the database, so each step
that hands out work is a compare-and-set that only one process can win:
moving the fan-out cursor (:meth:`WebhookRows.advance_webhook_cursor`) and
claiming one attempt of a delivery (:meth:`WebhookRows.claim_delivery`). Both
are single conditional UPDATEs, which SQLite serialises (``BEGIN IMMEDIATE``)
and PostgreSQL re-checks after waiting for the row lock, so no isolation level
above READ COMMITTED is needed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, func, insert, select, tuple_, update

from charter.domain.webhooks import Attempt, Delivery, DeliveryStatus, Webhook
from charter.store import schema as t

__all__ = ["DueDelivery", "MetricRows", "WebhookRows"]

W, D, C = t.webhooks, t.webhook_deliveries, t.webhook_cursor


@dataclass(frozen=True)
class DueDelivery:
    """A delivery ready for an attempt, with what sending it needs."""

    delivery: Delivery
    url: str
    secret: str


def _webhook(r: Any) -> Webhook:
    return Webhook(r.id, r.url, tuple(json.loads(r.events)), r.created_by, r.created_at,
                   bool(r.active))  # fmt: skip


def _delivery(r: Any) -> Delivery:
    log = tuple(Attempt.from_dict(a) for a in json.loads(r.log or "[]"))
    return Delivery(r.id, r.webhook_id, int(r.ledger_seq), r.event_type, r.delivery_id,
                    DeliveryStatus(r.status), r.attempts, r.next_attempt_at, r.last_status_code,
                    r.last_error, r.updated_at, log)  # fmt: skip


class MetricRows:
    """Aggregates read at each ``/metrics`` scrape: small GROUP BY queries, no row walks."""

    conn: Connection

    def gate_decision_counts(self) -> list[tuple[str, bool, int]]:
        """``(stage, passed, count)`` of every gate decision ever recorded."""
        g = t.gate_decisions
        rows = self.conn.execute(
            select(g.c.stage, g.c.passed, func.count()).group_by(g.c.stage, g.c.passed)
        )
        return [(r[0], bool(r[1]), int(r[2])) for r in rows]

    def delivery_counts(self) -> dict[str, int]:
        """``{status: count}`` of webhook deliveries."""
        rows = self.conn.execute(select(D.c.status, func.count()).group_by(D.c.status))
        return {r[0]: int(r[1]) for r in rows}

    def versions_at_risk_count(self) -> int:
        """How many versions are flagged at risk now (their newest flag row says so)."""
        f, g = t.version_flags, t.version_flags.alias("newer")
        newest = select(func.max(g.c.id)).where(g.c.version_id == f.c.version_id).scalar_subquery()
        query = select(func.count()).where(f.c.at_risk.is_(True), f.c.id == newest)
        return int(self.conn.execute(query).scalar_one())


class WebhookRows(MetricRows):
    """Subscriptions, deliveries and the fan-out cursor; writes join the caller's transaction."""

    conn: Connection

    # -- subscriptions --------------------------------------------------------
    def insert_webhook(
        self, *, url: str, events: Sequence[str], secret: str, by: str, at: str
    ) -> int:
        """Store an active subscription; return its id."""
        result = self.conn.execute(
            insert(W).values(
                url=url,
                events=json.dumps(list(events)),
                secret=secret,
                created_by=by,
                created_at=at,
                active=True,
            )
        )
        return int(result.inserted_primary_key[0])  # type: ignore[index]

    def webhooks(self, *, active_only: bool = False) -> list[Webhook]:
        """Subscriptions by id (secrets are never read here)."""
        query = select(W.c.id, W.c.url, W.c.events, W.c.created_by, W.c.created_at, W.c.active)
        if active_only:
            query = query.where(W.c.active.is_(True))
        return [_webhook(r) for r in self.conn.execute(query.order_by(W.c.id))]

    def get_webhook(self, webhook_id: int) -> Webhook | None:
        """One subscription, active or not."""
        found = [w for w in self.webhooks() if w.id == webhook_id]
        return found[0] if found else None

    def deactivate_webhook(self, webhook_id: int, *, at: str) -> int:
        """Turn a subscription off and give up its pending deliveries; return how many.

        The row stays: the delivery log refers to it.
        """
        self.conn.execute(update(W).where(W.c.id == webhook_id).values(active=False))
        done = self.conn.execute(
            update(D)
            .where(D.c.webhook_id == webhook_id, D.c.status == DeliveryStatus.PENDING.value)
            .values(
                status=DeliveryStatus.FAILED.value, last_error="subscription removed", updated_at=at
            )
        )
        return int(done.rowcount)

    # -- the delivery log -----------------------------------------------------
    def deliveries(
        self, *, webhook_id: int | None = None, status: str | None = None, limit: int = 100
    ) -> list[Delivery]:
        """Deliveries, newest event first."""
        query = select(D)
        if webhook_id is not None:
            query = query.where(D.c.webhook_id == webhook_id)
        if status is not None:
            query = query.where(D.c.status == status)
        query = query.order_by(D.c.ledger_seq.desc(), D.c.webhook_id).limit(limit)
        return [_delivery(r) for r in self.conn.execute(query)]

    # -- fan-out --------------------------------------------------------------
    def webhook_cursor(self, name: str) -> int | None:
        """The next ledger sequence number the fan-out called ``name`` will look at."""
        found = self.conn.execute(select(C.c.ledger_seq).where(C.c.name == name)).scalar()
        return None if found is None else int(found)

    def advance_webhook_cursor(self, name: str, *, expected: int | None, to: int) -> bool:
        """Compare-and-set the cursor from ``expected`` (None: no row yet) to ``to``.

        False when another dispatcher moved it first. A first insert that races
        another fails the transaction with a unique-key error instead, which the
        caller treats the same way.
        """
        if expected is None:
            self.conn.execute(insert(C).values(name=name, ledger_seq=to))
            return True
        done = self.conn.execute(
            update(C).where(C.c.name == name, C.c.ledger_seq == expected).values(ledger_seq=to)
        )
        return int(done.rowcount) == 1

    def ledger_types(self, start: int, stop: int, types: Iterable[str]) -> list[tuple[int, str]]:
        """``(seq, type)`` of the entries in ``[start, stop)`` whose type is in ``types``."""
        e = t.ledger_entries
        rows = self.conn.execute(
            select(e.c.seq, e.c.type)
            .where(e.c.seq >= start, e.c.seq < stop, e.c.type.in_(list(types)))
            .order_by(e.c.seq)
        )
        return [(int(r[0]), r[1]) for r in rows]

    def first_entry_seq(self, subject: str, type_: str) -> int | None:
        """Sequence number of the oldest entry about ``subject`` of type ``type_``."""
        e = t.ledger_entries
        found = self.conn.execute(
            select(func.min(e.c.seq)).where(e.c.subject == subject, e.c.type == type_)
        ).scalar()
        return None if found is None else int(found)

    def insert_deliveries(self, rows: Sequence[dict[str, Any]]) -> int:
        """Queue deliveries (``webhook_id, ledger_seq, event_type, delivery_id, at``).

        Pairs already queued are skipped, so a fan-out replayed after a cursor
        reset cannot fail on the unique key. Returns how many were added.
        """
        if not rows:
            return 0
        seqs = [r["ledger_seq"] for r in rows]
        existing = {
            (int(r[0]), int(r[1]))
            for r in self.conn.execute(
                select(D.c.webhook_id, D.c.ledger_seq).where(
                    D.c.ledger_seq >= min(seqs), D.c.ledger_seq <= max(seqs)
                )
            )
        }
        fresh = [
            {"webhook_id": r["webhook_id"], "ledger_seq": r["ledger_seq"],
             "event_type": r["event_type"], "delivery_id": r["delivery_id"],
             "status": DeliveryStatus.PENDING.value, "attempts": 0,
             "next_attempt_at": r["at"], "last_status_code": None, "last_error": None,
             "log": "[]", "updated_at": r["at"]}
            for r in rows
            if (r["webhook_id"], r["ledger_seq"]) not in existing
        ]  # fmt: skip
        if fresh:
            self.conn.execute(insert(D), fresh)
        return len(fresh)

    # -- attempts -------------------------------------------------------------
    def due_deliveries(self, *, now: str, limit: int) -> list[DueDelivery]:
        """Pending deliveries of active subscriptions whose next attempt is due, oldest first."""
        query = (
            select(D, W.c.url, W.c.secret)
            .join(W, W.c.id == D.c.webhook_id)
            .where(
                D.c.status == DeliveryStatus.PENDING.value,
                D.c.next_attempt_at <= now,
                W.c.active.is_(True),
            )
            .order_by(D.c.next_attempt_at, D.c.id)
            .limit(limit)
        )
        return [DueDelivery(_delivery(r), r.url, r.secret) for r in self.conn.execute(query)]

    def claim_deliveries(
        self, deliveries: Sequence[Delivery], *, lease_until: str, at: str
    ) -> list[Delivery]:
        """Take the next attempt of each delivery as it was read; return those won.

        Each row is a compare-and-set on its attempt count (not on time, so
        clocks that differ between processes cannot let two claim one attempt),
        all in one statement: a claim holds the write lock for one UPDATE, not
        one per delivery. Counting the attempt and pushing ``next_attempt_at``
        to ``lease_until`` at once means a sender that dies mid-request leaves
        the delivery due again when the lease ends, rather than stuck.
        """
        if not deliveries:
            return []
        if not self.conn.dialect.update_returning:  # SQLite before 3.35: one per row
            return [d for d in deliveries if self._claim_one(d, lease_until, at)]
        read = {d.id: d for d in deliveries}
        rows = self.conn.execute(
            update(D)
            .where(
                D.c.id.in_(list(read)),  # the primary key finds the rows
                tuple_(D.c.id, D.c.attempts).in_([(d.id, d.attempts) for d in deliveries]),
                D.c.status == DeliveryStatus.PENDING.value,
            )
            .values(attempts=D.c.attempts + 1, next_attempt_at=lease_until, updated_at=at)
            .returning(D.c.id)
        )
        won = {int(r[0]) for r in rows}
        return [d for d in deliveries if d.id in won]

    def _claim_one(self, delivery: Delivery, lease_until: str, at: str) -> bool:
        done = self.conn.execute(
            update(D)
            .where(
                D.c.id == delivery.id,
                D.c.attempts == delivery.attempts,
                D.c.status == DeliveryStatus.PENDING.value,
            )
            .values(attempts=delivery.attempts + 1, next_attempt_at=lease_until, updated_at=at)
        )
        return int(done.rowcount) == 1

    def finish_attempt(
        self,
        delivery: Delivery,
        attempt: Attempt,
        *,
        status: DeliveryStatus,
        next_attempt_at: str,
    ) -> bool:
        """Record the outcome of the attempt claimed from ``delivery``.

        Conditional on the attempt count still being ours: when a lease ran out
        and another process took the next attempt, its outcome wins.
        """
        log = json.dumps([a.to_dict() for a in (*delivery.log, attempt)])
        done = self.conn.execute(
            update(D)
            .where(
                D.c.id == delivery.id,
                D.c.attempts == delivery.attempts + 1,
                D.c.status == DeliveryStatus.PENDING.value,
            )
            .values(
                status=status.value,
                next_attempt_at=next_attempt_at,
                last_status_code=attempt.status_code,
                last_error=attempt.error,
                log=log,
                updated_at=attempt.at,
            )
        )
        return int(done.rowcount) == 1
