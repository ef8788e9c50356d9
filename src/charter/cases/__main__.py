"""``python -m charter.cases --home DIR``: run the case studies (``make run``)."""

from __future__ import annotations

import argparse
import sys

from charter.cases import CASES, CaseError, run


def main(argv: list[str] | None = None) -> int:
    """Run the cases; print the summary; exit 1 if a case failed or the ledger did not verify."""
    parser = argparse.ArgumentParser(prog="python -m charter.cases", description=__doc__)
    parser.add_argument("--home", default=".charter-demo", help="registry home to use")
    parser.add_argument("--case", action="append", choices=CASES, help="only these (repeatable)")
    parser.add_argument(
        "--max-probes", type=int, default=60, help="probes per red-team campaign (a subset)"
    )
    parser.add_argument(
        "--llm-port", type=int, default=0, help="model server port (default 0: a free one)"
    )
    args = parser.parse_args(argv)
    try:
        summary = run(args.home, cases=args.case or CASES, max_probes=args.max_probes,
                      llm_port=args.llm_port)  # fmt: skip
    except CaseError as exc:
        print(f"\ncase study failed: {exc}", file=sys.stderr)
        return 1
    print(summary.text())
    return 0 if summary.verified else 1


if __name__ == "__main__":
    sys.exit(main())
