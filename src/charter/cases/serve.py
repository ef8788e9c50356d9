"""``python -m charter.cases.serve --home DIR``: the last step of ``make run``.

Serves the registry the case studies filled (REST API and web UI) on loopback,
after printing where to look and a fresh login token for an approver, so a
newcomer can open the version pages, the lineage graphs and the ledger, and
sign off what is waiting.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from charter.cases._common import APPROVERS
from charter.domain.errors import CharterError
from charter.sdk import open_registry
from charter.settings import Settings

__all__ = ["main"]

REVIEWER = next(iter(APPROVERS))
PAGES = (
    ("models, stages and gate state", "/ui/"),
    ("versions awaiting sign-off", "/ui/approvals"),
    ("the audit ledger, verified, with proofs", "/ui/ledger"),
    ("the REST API (OpenAPI)", "/api/v1/docs"),
    ("Prometheus metrics", "/metrics"),
)


def main(argv: list[str] | None = None) -> int:
    """Create a one-day token for the reviewer, print it and the pages, then serve."""
    parser = argparse.ArgumentParser(prog="python -m charter.cases.serve", description=__doc__)
    parser.add_argument("--home", default=".charter-demo", help="registry home to serve")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    settings = Settings(home=Path(args.home))
    try:
        with open_registry(settings=settings) as reg:
            token, info = reg.create_token(user=REVIEWER, expires="1d", label="make run")
    except CharterError as exc:
        print(f"cannot serve {args.home}: {exc.message}", file=sys.stderr)
        return 1
    base = f"http://{args.host}:{args.port}"
    print(f"\nCharter is serving {args.home} on {base}  (Ctrl-C stops it)")
    for what, path in PAGES:
        print(f"  {base}{path:<16} {what}")
    print(f"\nLog in as {info.user} (approver) with this token, valid until {info.expires_at}:")
    # Flushed: when stdout is a pipe the token would otherwise wait behind the server.
    print(f"  {token}\n", flush=True)
    import uvicorn

    from charter.api import create_app

    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":
    sys.exit(main())
