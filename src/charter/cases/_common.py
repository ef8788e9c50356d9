"""What the three case studies share: running CLI steps, users, idempotence checks.

Every step of a case is a real ``charter`` command, run in-process through
:func:`charter.cli.main` and echoed as ``$ charter …`` so a reader can repeat
it. A case whose outcome is recorded in full is *reused*: it runs no step and
writes nothing (gate decisions included), and its summary is read back from
the registry. A case interrupted half-way resumes: steps whose outcome is
already recorded are skipped.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass, field
from io import StringIO
from pathlib import Path
from typing import Any

from charter.cli import main as charter_main
from charter.domain.errors import NotFoundError
from charter.sdk import open_registry
from charter.service import Registry
from charter.settings import Settings

__all__ = [
    "APPROVERS",
    "Case",
    "CaseError",
    "Outcome",
    "as_user",
    "failed_finding",
    "write_json",
    "write_yaml",
]

#: Users every case needs: the admin who ran ``charter init`` registers; these sign off.
APPROVERS = {
    "risk-officer": "approver",
    "model-validator": "approver",
    "clinical-lead": "approver",
}


class CaseError(RuntimeError):
    """A step's outcome was not the one the case study is about (a real failure)."""


@dataclass
class Outcome:
    """What a case showed, for the runner's summary."""

    name: str
    lines: list[str] = field(default_factory=list)
    seconds: float = 0.0
    skipped: bool = False

    def add(self, line: str) -> None:
        """Record one line of the summary (and print it)."""
        self.lines.append(line)
        print(f"  => {line}", flush=True)


@contextmanager
def as_user(name: str | None) -> Iterator[None]:
    """Act as ``name`` (``CHARTER_USER``) for the CLI steps inside the block."""
    if name is None:
        yield
        return
    before = os.environ.get("CHARTER_USER")
    os.environ["CHARTER_USER"] = name
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("CHARTER_USER", None)
        else:
            os.environ["CHARTER_USER"] = before


def write_json(path: Path, data: Any) -> Path:
    """Write ``data`` as JSON (creating folders); return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    return path


def write_yaml(path: Path, text: str) -> Path:
    """Write YAML text (creating folders); return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


class Case:
    """One case study on a registry home: CLI steps plus read-only checks."""

    def __init__(self, home: Path, name: str) -> None:
        self.home = home
        self.work = home / "cases" / name  # inputs the steps read: data, metrics, policies
        self.work.mkdir(parents=True, exist_ok=True)
        self.outcome = Outcome(name)

    # -- running commands ------------------------------------------------
    def run(self, *args: str, user: str | None = None, expect: int | Sequence[int] = 0) -> int:
        """Run ``charter --home HOME ARGS…`` as ``user``; fail unless the exit code is expected.

        Raises:
            CaseError: an unexpected exit code.
        """
        who = f"CHARTER_USER={user} " if user else ""
        print(f"\n$ {who}charter {' '.join(_quote(a) for a in args)}", flush=True)
        with as_user(user):
            code = charter_main(["--home", str(self.home), *args])
        wanted = (expect,) if isinstance(expect, int) else tuple(expect)
        if code not in wanted:
            raise CaseError(f"`charter {' '.join(args)}` exited {code}, expected {wanted}")
        return code

    def json(
        self,
        *args: str,
        user: str | None = None,
        expect: int | Sequence[int] = 0,
        flag: str | None = "--json",
    ) -> Any:
        """Run a step printing JSON (``flag``; None when ``args`` ask for it) and parse it."""
        argv = [*args, flag] if flag else list(args)
        print(f"\n$ charter {' '.join(_quote(a) for a in argv)}", flush=True)
        buffer = StringIO()
        with as_user(user), redirect_stdout(buffer):
            code = charter_main(["--home", str(self.home), *argv])
        text = buffer.getvalue()
        if code not in ((expect,) if isinstance(expect, int) else tuple(expect)):
            sys.stdout.write(text)
            raise CaseError(f"`charter {' '.join(argv)}` exited {code}, expected {expect}")
        return json.loads(text) if text.strip() else None

    def gate(self, ref: str, stage: str, *, expect: int | Sequence[int]) -> dict[str, Any]:
        """``charter gate REF --stage S --format json``; print its failures; return it."""
        decision: dict[str, Any] = self.json(
            "gate", ref, "--stage", stage, "--format", "json", expect=expect, flag=None
        )
        verdict = "passed" if decision["passed"] else "FAILED"
        print(f"{ref} {verdict} the {stage} gate ({decision['summary']['passed']} of "
              f"{decision['summary']['total']} findings pass)")  # fmt: skip
        for finding in decision["findings"]:
            if not finding["passed"]:
                print(f"  ✗ {finding['rule']}\n      {finding['message']}")
        return decision

    # -- reading the registry (idempotence) ------------------------------
    def registry(self) -> Registry:
        """The home, opened in-process for read-only checks."""
        reg = open_registry(settings=Settings(home=self.home))
        assert isinstance(reg, Registry)
        return reg

    def has_model(self, name: str) -> bool:
        """Whether the model exists."""
        with self.registry() as reg:
            try:
                reg.get_model(name=name)
            except NotFoundError:
                return False
        return True

    def has_version(self, model: str, version: str) -> bool:
        """Whether ``model@version`` is registered."""
        with self.registry() as reg:
            try:
                reg.get_version(model=model, version=version)
            except NotFoundError:
                return False
        return True

    def is_published(self, model: str, version: str) -> bool:
        """Whether ``model@version`` is registered and published."""
        with self.registry() as reg:
            try:
                return reg.get_version(model=model, version=version).state.value != "draft"
            except NotFoundError:
                return False

    def holder(self, model: str, stage: str) -> str | None:
        """The version ``model`` has in ``stage`` now, or None."""
        with self.registry() as reg:
            for pointer in reg.stages(model=model):
                if pointer["stage"] == stage:
                    return str(pointer["version"])
        return None

    def ever_held(self, model: str, stage: str, version: str) -> bool:
        """Whether ``model@version`` ever entered ``stage``."""
        with self.registry() as reg:
            return any(m.version == version for m in reg.stage_history(model=model, stage=stage))

    def evaluated(self, model: str, version: str, evaluator: str) -> list[dict[str, Any]]:
        """The recorded runs of ``evaluator`` on ``model@version``, oldest first."""
        with self.registry() as reg:
            runs = reg.evaluation_runs(model=model, version=version)
        return [r for r in runs if r.get("evaluator") == evaluator]

    def policy_in_force(self, text: str, model: str) -> bool:
        """Whether the policy ``text`` is the one in force for ``model`` (set on the model)."""
        from charter.domain.policy import parse_policy, policy_digest

        wanted = policy_digest(parse_policy(text, source="case policy"))
        with self.registry() as reg:
            digest, _, scope = reg.policy(model=model)
        return scope == "model" and digest == wanted

    def set_policy(self, path: Path, model: str) -> None:
        """``charter policy set PATH --model MODEL`` unless that very policy is in force."""
        if not self.policy_in_force(path.read_text(), model):
            self.run("policy", "set", str(path), "--model", model)

    def cards_current(self, model: str, version: str) -> bool:
        """Whether ``model@version`` has a current (not stale) HTML card."""
        with self.registry() as reg:
            cards = reg.card_status(model=model, version=version)
        return any(c.format == "html" and not c.stale for c in cards)

    def last_decision(self, model: str, version: str, stage: str) -> dict[str, Any] | None:
        """The newest recorded gate decision document, if it judged the evidence in force.

        None when there is none, or when the profile or the policy changed since (a
        decision about other evidence says nothing about the case's outcome now).
        """
        with self.registry() as reg:
            try:
                digest = reg.profile(model=model, version=version).digest
            except NotFoundError:
                return None
            policy = reg.policy(model=model)[0]
            with reg.store.read() as tx:
                vid = tx.version_id(model, version)
                found = tx.decisions(vid, stage) if vid is not None else []
        if not found or found[-1]["profile_digest"] != digest:
            return None
        if found[-1]["policy_digest"] != policy:
            return None
        document: dict[str, Any] = found[-1]["document"]
        return document

    def ledger_size(self) -> int:
        """How many entries the ledger holds."""
        with self.registry() as reg, reg.store.read() as tx:
            return tx.ledger_size()

    def checkpointed(self) -> bool:
        """Whether the latest signed checkpoint covers the whole ledger."""
        with self.registry() as reg:
            latest = reg.checkpoint(sign=False)
        return latest is not None and latest.tree_size == self.ledger_size()

    def reuse(self) -> None:
        """Say the case is recorded in full and will be read back, not run."""
        self.outcome.skipped = True
        print(f"reused: the {self.outcome.name} case is recorded in {self.home}; "
              "no step runs, nothing is written", flush=True)  # fmt: skip

    def render_card(self, model: str, version: str) -> None:
        """Render the HTML card into ``HOME/cards`` unless a current one exists."""
        if not self.cards_current(model, version):
            out = self.home / "cards" / f"{model}-{version}.html"
            out.parent.mkdir(parents=True, exist_ok=True)
            self.run("card", f"{model}@{version}", "--format", "html", "-o", str(out))

    def metric(self, model: str, version: str, name: str, slice_: str | None = None) -> float:
        """The newest evaluation ``name`` (on ``slice_``) in force, monitoring aside, or NaN."""
        with self.registry() as reg:
            entries = reg.profile(model=model, version=version).section("evaluations")
        found = [e for e in entries if e["name"] == name and e.get("slice") == slice_
                 and e.get("provenance", {}).get("source") != "monitoring"]  # fmt: skip
        return float(found[-1]["value"]) if found else float("nan")

    def ensure_users(self) -> None:
        """Add the approvers once (the admin who ran ``init`` adds them)."""
        with self.registry() as reg:
            known = {u.name for u in reg.list_users()}
        for name, role in APPROVERS.items():
            if name not in known:
                self.run("user", "add", name, "--role", role)

    def approve(self, ref: str, stage: str, users: Sequence[str], comment: str) -> None:
        """Sign off ``ref`` for ``stage`` as each of ``users`` (skipping existing sign-offs)."""
        model, version = ref.split("@")
        with self.registry() as reg:
            pointer = reg.profile(model=model, version=version).digest
            done = {
                a.user
                for a in reg.approvals(model=model)
                if a.ref == ref and a.stage == stage and a.profile_digest == pointer
            }
        for user in users:
            if user not in done:
                self.run("approve", ref, "--stage", stage, "--comment", comment, user=user)

    @contextmanager
    def timed(self) -> Iterator[Outcome]:
        """Time the case; yield its outcome."""
        started = time.perf_counter()
        try:
            yield self.outcome
        finally:
            self.outcome.seconds = time.perf_counter() - started


def failed_finding(decision: dict[str, Any] | None, part: str) -> dict[str, Any] | None:
    """The first failed finding of a decision document whose rule mentions ``part``."""
    for finding in (decision or {}).get("findings", []):
        if part in finding["rule"] and not finding["passed"]:
            return dict(finding)
    return None


def _quote(arg: str) -> str:
    plain = all(c.isalnum() or c in "-_./=@:,+[]" for c in arg)
    return arg if arg and plain else "'" + arg.replace("'", "'\\''") + "'"
