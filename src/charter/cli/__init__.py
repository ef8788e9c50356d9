"""The ``charter`` command: thin over :class:`charter.service.Registry`.

Exit codes: 0 ok, 1 refused or a check failed, 2 usage or input error.
Errors are mapped to output here, in :func:`main`, and nowhere else.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from charter.cli import (
    audit,
    cards,
    evaluations,
    gates,
    lineage,
    models,
    profiles,
    server,
    versions,
    webhooks,
)
from charter.cli._common import err_console
from charter.domain.errors import CharterError

__all__ = ["app", "main"]

app = typer.Typer(
    name="charter",
    help="Charter: a model registry that gates every version on its safety profile.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _root(
    home: Annotated[
        Path | None,
        typer.Option("--home", help="Registry home folder (default: $CHARTER_HOME or ./.charter)."),
    ] = None,
) -> None:
    """Charter: a model registry that gates every version on its safety profile."""


models.register_commands(app)
versions.register_commands(app)
lineage.register_commands(app)
cards.register_commands(app)
gates.register_commands(app)
evaluations.register_commands(app, models.model_app)
app.add_typer(profiles.app, name="profile")
app.add_typer(audit.app, name="audit")
app.add_typer(webhooks.app, name="webhook")
server.register_commands(app)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code (the console script exits with it)."""
    args = sys.argv[1:] if argv is None else argv
    try:
        # Standalone mode: Typer itself reports usage errors (exit 2) and turns
        # typer.Exit into SystemExit; only our own errors come through to here.
        app(args=args, prog_name="charter")
    except SystemExit as done:
        return done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    except CharterError as error:
        if "--json" in args:
            sys.stderr.write(json.dumps({"error": error.to_dict()}, default=str) + "\n")
        else:
            err_console.print(f"[bold red]error:[/] {error.message}", highlight=False)
        return error.exit_code
    except KeyboardInterrupt:
        err_console.print("interrupted: nothing half-written was committed")
        return 130
    except Exception as bug:  # a defect, not a user's mistake: say so, keep it to one line
        if os.environ.get("CHARTER_DEBUG"):
            raise
        err_console.print(
            f"[bold red]internal error:[/] {type(bug).__name__}: {bug} "
            "(this is a bug in Charter; set CHARTER_DEBUG=1 for the traceback)",
            highlight=False,
        )
        return 70
    return 0


def _entry() -> None:  # pragma: no cover - console script shim
    raise SystemExit(main())
