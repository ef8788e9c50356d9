"""Shared pieces of the CLI: the app, settings from options, output helpers."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from charter.domain.errors import InvalidInputError
from charter.sdk import AnyRegistry, open_registry
from charter.service import Registry, parse_ref
from charter.settings import Settings

__all__ = [
    "console",
    "emit_json",
    "err_console",
    "local_registry",
    "progress_bar",
    "registry",
    "require_version",
    "settings_from",
]

console = Console()
err_console = Console(stderr=True)

# Files smaller than this upload too fast for a bar to help anyone.
PROGRESS_MIN_BYTES = 4 * 1024 * 1024


def settings_from(ctx: typer.Context) -> Settings:
    """Build the one Settings object from ``--home`` and the environment.

    Raises:
        InvalidInputError: when an environment variable holds an invalid value.
    """
    home: Path | None = ctx.find_root().params.get("home")
    try:
        settings = Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        name = "CHARTER_" + str(first["loc"][0]).upper() if first["loc"] else "CHARTER_*"
        raise InvalidInputError(f"invalid setting {name}: {first['msg']}", field=name) from None
    return settings.model_copy(update={"home": home}) if home is not None else settings


@contextmanager
def registry(ctx: typer.Context) -> Iterator[AnyRegistry]:
    """Open the registry the command line points at, and close it afterwards.

    With ``CHARTER_URL`` (and ``CHARTER_TOKEN``) set, that is the server's registry,
    unless ``--home`` names a local one.
    """
    settings = settings_from(ctx)
    if ctx.find_root().params.get("home") is not None:
        settings = settings.model_copy(update={"url": None})
    reg = open_registry(settings=settings)
    try:
        yield reg
    finally:
        reg.close()


@contextmanager
def local_registry(ctx: typer.Context) -> Iterator[Registry]:
    """Like :func:`registry`, for the commands that need the home itself.

    Raises:
        InvalidInputError: when ``CHARTER_URL`` points at a server.
    """
    settings = settings_from(ctx)
    if settings.url is not None and ctx.find_root().params.get("home") is None:
        raise InvalidInputError(
            f"this command works on a registry home, not over CHARTER_URL ({settings.url}): "
            "run it on the server, or unset CHARTER_URL",
            field="CHARTER_URL",
        )
    reg = Registry(settings)
    try:
        yield reg
    finally:
        reg.close()


def require_version(ref: str) -> tuple[str, str]:
    """Parse ``NAME@VERSION``, insisting on the version part."""
    name, version = parse_ref(ref)
    if version is None:
        raise InvalidInputError(f"{ref!r} names no version: use NAME@VERSION", value=ref)
    return name, version


def emit_json(value: Any) -> None:
    """Print ``value`` as JSON on stdout (for scripts)."""
    sys.stdout.write(json.dumps(value, indent=2, sort_keys=True, default=str) + "\n")


@contextmanager
def progress_bar(description: str, total: int) -> Iterator[Any]:
    """Yield a byte-count callback; show a Rich bar when ``total`` is large enough."""
    if total < PROGRESS_MIN_BYTES or not err_console.is_terminal:
        yield None
        return
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
    ) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)


def tree_size(path: Path) -> int:
    """Total bytes of the regular files at ``path`` (for sizing a progress bar)."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else 0
