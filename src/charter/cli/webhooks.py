"""Webhooks: subscribe URLs to registry events, read the delivery log, run the dispatcher."""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rich.table import Table

from charter.cli._common import console, emit_json, err_console, local_registry, registry
from charter.domain.errors import InvalidInputError
from charter.domain.webhooks import WEBHOOK_EVENTS

__all__ = ["app"]

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
app = typer.Typer(
    help="Webhooks: signed POSTs of registry events to your URLs.", no_args_is_help=True
)


@app.command("add")
def webhook_add(
    ctx: typer.Context,
    url: Annotated[str, typer.Argument(help="http(s) URL that receives the POSTs.")],
    event: Annotated[
        list[str],
        typer.Option("--event", help=f"Event type (repeat): {', '.join(WEBHOOK_EVENTS)}."),
    ],
    secret: Annotated[
        str | None, typer.Option(help="Signing secret (default: generated, shown once).")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Subscribe a URL to registry events (admin only). Prints the signing secret once."""
    with registry(ctx) as reg:
        hook, key = reg.add_webhook(url=url, events=event, secret=secret)
    if json_out:
        emit_json({**hook.to_dict(), "secret": key})
        return
    console.print(f"webhook {hook.id} -> {hook.url} for {', '.join(hook.events)}", highlight=False)
    console.print(f"signing secret (shown only now): [bold]{key}[/]", highlight=False)


@app.command("list")
def webhook_list(ctx: typer.Context, json_out: JsonOpt = False) -> None:
    """List subscriptions, removed ones included (admin only)."""
    with registry(ctx) as reg:
        hooks = reg.list_webhooks()
    if json_out:
        emit_json([h.to_dict() for h in hooks])
        return
    table = Table("id", "url", "events", "active", "by", "created")
    for h in hooks:
        table.add_row(str(h.id), h.url, ", ".join(h.events), "yes" if h.active else "removed",
                      h.created_by, h.created_at)  # fmt: skip
    console.print(table)


@app.command("rm")
def webhook_rm(
    ctx: typer.Context, webhook_id: Annotated[int, typer.Argument(help="Webhook id.")]
) -> None:
    """Remove a subscription; its pending deliveries are given up (admin only)."""
    with registry(ctx) as reg:
        hook = reg.remove_webhook(webhook_id=webhook_id)
    console.print(f"webhook {hook.id} ({hook.url}) removed", highlight=False)


@app.command("deliveries")
def webhook_deliveries(
    ctx: typer.Context,
    webhook_id: Annotated[int | None, typer.Option("--webhook", help="One webhook only.")] = None,
    status: Annotated[str | None, typer.Option(help="pending, delivered or failed.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many (1-1000).")] = 100,
    json_out: JsonOpt = False,
) -> None:
    """The delivery log, newest event first, with every attempt (admin only)."""
    with registry(ctx) as reg:
        found = reg.webhook_deliveries(webhook_id=webhook_id, status=status, limit=limit)
    if json_out:
        emit_json([d.to_dict() for d in found])
        return
    table = Table("hook", "entry", "event", "status", "tries", "last", "next try")
    for d in found:
        last = d.last_error or (str(d.last_status_code) if d.last_status_code else "")
        retry = d.next_attempt_at if d.status.value == "pending" else ""
        table.add_row(str(d.webhook_id), str(d.ledger_seq), d.event_type, d.status.value,
                      str(d.attempts), last, retry)  # fmt: skip
    console.print(table)


@app.command("dispatch")
def webhook_dispatch(
    ctx: typer.Context,
    once: Annotated[bool, typer.Option("--once", help="One pass, then exit (for cron).")] = False,
    poll: Annotated[float, typer.Option(help="Seconds between passes.")] = 1.0,
) -> None:
    """Deliver webhooks without a server (a server delivers them itself)."""
    try:
        import httpx  # noqa: F401 - sending needs the server extra

        from charter.webhooks import WebhookDispatcher
    except ImportError:
        raise InvalidInputError(
            "sending webhooks needs httpx: pip install 'charter-registry[server]'"
        ) from None
    with local_registry(ctx) as reg:
        dispatcher = WebhookDispatcher(reg, poll_interval_s=poll)
        try:
            if once:
                report = dispatcher.run_once()
                console.print(f"queued {report.queued}, attempted {report.attempted}, "
                              f"delivered {report.delivered}, retrying {report.retrying}, "
                              f"failed {report.failed}")  # fmt: skip
                return
            err_console.print("delivering webhooks; Ctrl-C stops")
            dispatcher.start()
            while True:
                time.sleep(3600)
        finally:
            dispatcher.stop()
