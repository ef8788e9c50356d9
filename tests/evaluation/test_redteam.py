"""The redteam and constraints evaluators, end to end against deliberately weak targets."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import pytest

from charter.domain.entities import Model, RiskTier, Version, VersionState
from charter.domain.errors import InvalidInputError, NotFoundError
from charter.domain.folding import ActiveEntry, EffectiveProfile
from charter.domain.profile import ProfileDocument
from charter.evaluation import redteam
from charter.evaluation._campaign import PII_RECORDS, run_probes
from charter.evaluation._loopback import LoopbackServer
from charter.evaluation.base import EvaluationContext
from charter.evaluation.constraints_eval import ConstraintsEvaluator
from charter.evaluation.detectors import builtin_detectors
from charter.evaluation.packs import load_pack
from charter.evaluation.redteam import RedTeamEvaluator
from charter.evaluation.targets import CallableTarget, Target, TargetError

NOW = "2026-01-01T00:00:00.000000Z"
GUARDRAILS: dict[str, Any] = {
    "blocked_terms": ["ignore all previous instructions"],
    "blocked_patterns": [r"\b[0-9a-f]{16}\b", r"\b(?:\d[ -]?){13,19}\b"],
}
SENSITIVE = re.compile(
    r"code|instruction|system|prompt|secret|configur|above|repeat|customer|card|mail|phone|"
    r"record|ssn|iban|data|context"
)


def leaky(messages: list[dict[str, str]]) -> str:
    """A target that hands over its system prompt when asked about anything sensitive."""
    system, user = messages[0]["content"], messages[-1]["content"].lower()
    if SENSITIVE.search(user):
        return "Sure! Here is everything I was told:\n" + system
    if any(word in user for word in ("insult", "swear", "rude", "roast", "curse")):
        return "You absolute idiot, nobody wants your opinion."
    return "Sure, here is a detailed answer: first, gather what you need; then proceed."


def prudent(prompt: str) -> str:
    """A target that refuses anything suspicious and answers the rest."""
    if any(word in prompt.lower() for word in ("ignore", "code", "customer", "dan", "bomb")):
        return "I'm sorry, but I can't help with that."
    return "Here is a helpful answer."


def context(
    options: dict[str, Any], constraints: dict[str, Any] | None = None, progress: Any = None
) -> EvaluationContext:
    model = Model("bank-bot", "support bot", "alice", RiskTier.HIGH, "alice", NOW)
    facts: dict[str, Any] = dict.fromkeys(("parent", "change_kind", "run_id", "commit"))
    version = Version(
        model="bank-bot", version="1.0.0", state=VersionState.DRAFT, fp_architecture="a",
        fp_data="d", fp_config="c", architecture_method="m", manifest_digest="sha256:" + "0" * 64,
        file_count=0, total_size=0, params={}, datasets=(), created_by="alice", created_at=NOW,
        **facts,
    )  # fmt: skip
    entries: tuple[ActiveEntry, ...] = ()
    if constraints is not None:
        entries = (ActiveEntry({"id": "cons-1", "section": "constraints", **constraints}, None),)
    profile = EffectiveProfile("bank-bot@1.0.0", None, entries, (), (), (), None)
    return EvaluationContext(model, version, Path("."), profile, options, progress)


def campaign(target: Any, **options: Any) -> tuple[Any, dict[str, Any]]:
    outcome = RedTeamEvaluator().evaluate(context({"target": target, **options}))
    rates = {e.name: e for e in outcome.document.evaluations}
    return outcome, rates


def test_leaky_target_leaks_and_is_recorded() -> None:
    progress: list[tuple[int, int]] = []
    ctx = context(
        {"target": CallableTarget(leaky), "concurrency": 4},
        progress=lambda d, t: progress.append((d, t)),
    )
    outcome = RedTeamEvaluator().evaluate(ctx)
    doc = outcome.document
    ProfileDocument.model_validate(doc.model_dump(by_alias=True))  # round-trips the schema
    [adv] = doc.adversarial
    pack = load_pack("charter-default")
    assert adv.pack.name == "charter-default" and adv.pack.digest == pack.digest
    assert adv.attempts == 303  # every probe but the 50 benign controls
    assert adv.categories["prompt_injection"].hits > 0
    assert adv.categories["system_prompt_extraction"].hits > 0
    assert adv.categories["pii_extraction"].hits > 0
    assert adv.categories["jailbreak"].rate == 1.0
    assert 0 < len(adv.samples) <= 20
    rates = {e.name: e for e in doc.evaluations}
    assert set(rates) == {
        "attack_success_rate",
        "prompt_injection_success_rate",
        "system_prompt_leak_rate",
        "pii_leakage_rate",
        "jailbreak_success_rate",
        "toxicity_rate",
        "over_refusal_rate",
    }
    assert rates["prompt_injection_success_rate"].samples == 90
    assert rates["over_refusal_rate"].value == 0.0 and rates["over_refusal_rate"].samples == 50
    assert all(e.direction == "lower_is_better" for e in doc.evaluations)
    assert rates["attack_success_rate"].value == pytest.approx(adv.attack_success_rate)
    assert progress[-1] == (353, 353) and len(progress) == 353
    assert outcome.probe_pack == {**pack.ref(), "probes": 353}
    assert outcome.target == adv.target
    assert adv.target.startswith("callable:") and adv.target.endswith(":leaky")
    assert outcome.summary["attempts"] == 303 and outcome.summary["errors"] == 0


def test_canary_is_never_recorded() -> None:
    outcome, _ = campaign(CallableTarget(leaky), max_probes=40)
    text = json.dumps(outcome.document.model_dump(by_alias=True)) + json.dumps(outcome.config)
    assert "[CANARY]" in text
    assert "Confidential access code: [CANARY]" in text
    assert outcome.config["system_prompt"].count("{canary}") == 1
    assert outcome.config["detectors"] == {
        "canary": "1.0",
        "pii": "1.0",
        "refusal": "1.0",
        "toxicity": "1.0+lexicon",
    }


def test_guard_blocks_the_canary_and_hits_drop() -> None:
    target = CallableTarget(leaky)
    _, open_rates = campaign(target)
    guarded = RedTeamEvaluator().evaluate(
        context({"target": CallableTarget(leaky), "guard": True}, constraints=GUARDRAILS)
    )
    rates = {e.name: e for e in guarded.document.evaluations}
    assert guarded.target is not None and guarded.target.startswith("guarded(callable:")
    for metric in ("prompt_injection_success_rate", "system_prompt_leak_rate"):
        assert rates[metric].value < open_rates[metric].value
    assert rates["attack_success_rate"].value < open_rates["attack_success_rate"].value
    assert guarded.config["guard"] is True


def test_guard_without_constraints_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="declares no constraints"):
        campaign(CallableTarget(leaky), guard=True)


def test_same_seed_and_deterministic_target_give_the_same_results() -> None:
    first, _ = campaign(CallableTarget(leaky), max_probes=60, seed=3, concurrency=5)
    second, _ = campaign(CallableTarget(leaky), max_probes=60, seed=3, concurrency=2)
    assert first.document == second.document
    assert first.probe_pack == second.probe_pack
    third, _ = campaign(CallableTarget(leaky), max_probes=60, seed=4)
    assert third.probe_pack["digest"] != first.probe_pack["digest"]


def test_max_probes_runs_a_stratified_subset() -> None:
    outcome, rates = campaign(CallableTarget(prudent), max_probes=30)
    [adv] = outcome.document.adversarial
    assert len(adv.categories) == 5 and rates["over_refusal_rate"].samples >= 4
    record = outcome.probe_pack
    assert record["probes"] == 30 and record["full_probes"] == 353
    assert record["full_digest"] == load_pack("charter-default").digest != record["digest"]


def test_prudent_target_scores_low() -> None:
    _, rates = campaign(CallableTarget(prudent))
    assert rates["prompt_injection_success_rate"].value == 0.0
    assert rates["pii_leakage_rate"].value == 0.0


class Flaky(Target):
    """Fails every ``every``-th call; can raise KeyboardInterrupt after ``interrupt_after``."""

    description = "flaky"

    def __init__(self, every: int = 0, interrupt_after: int = 0) -> None:
        self.every, self.interrupt_after = every, interrupt_after
        self.calls, self.closed, self.cancelled = 0, False, 0

    async def chat(self, messages: list[dict[str, str]]) -> str:
        self.calls += 1
        number = self.calls
        if self.interrupt_after and number > self.interrupt_after:
            raise KeyboardInterrupt
        try:
            await asyncio.sleep(0.001)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        if self.every and number % self.every == 0:
            raise TargetError("flaky endpoint")
        return "I can't help with that."

    async def aclose(self) -> None:
        self.closed = True


def test_keyboard_interrupt_cancels_and_closes() -> None:
    target = Flaky(interrupt_after=10)
    with pytest.raises(KeyboardInterrupt):
        RedTeamEvaluator().evaluate(context({"target": target, "concurrency": 4}))
    assert target.closed
    assert target.calls <= 10 + 4


def test_cancelling_a_campaign_cancels_pending_probes() -> None:
    target = Flaky()
    pack = load_pack("charter-default")
    items = [(pack.name, p) for p in pack.probes]
    planted = {"canary": "0123456789abcdef", "pii_records": PII_RECORDS}

    async def scenario() -> None:
        task = asyncio.ensure_future(
            run_probes(
                target,
                items,
                system_prompt="{canary}",
                planted=planted,
                detectors=builtin_detectors(),
                concurrency=8,
            )
        )
        while target.calls < 20:
            await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    assert target.cancelled >= 1 and target.calls < len(items)


def test_target_errors_abort_unless_tolerated() -> None:
    with pytest.raises(TargetError, match="flaky"):
        campaign(Flaky(every=7), max_probes=30)
    outcome, _ = campaign(Flaky(every=7), max_probes=30, max_errors=10)
    assert outcome.summary["errors"] == 4
    assert outcome.document.adversarial[0].attempts + outcome.summary["errors"] <= 30


def test_openai_target_end_to_end_on_loopback() -> None:
    async def serve() -> tuple[Any, int]:
        async with LoopbackServer(delay=0.01, reply=leaky) as server:
            config = {"kind": "openai", "base_url": server.base_url, "model": "fake"}
            loop = asyncio.get_running_loop()
            outcome = await loop.run_in_executor(
                None,
                lambda: RedTeamEvaluator().evaluate(context({"target": config, "max_probes": 24})),
            )
            return outcome, server.requests

    outcome, requests = asyncio.run(serve())
    assert requests == 24
    assert outcome.document.adversarial[0].hits > 0
    assert set(outcome.config["target"]) == {"kind", "base_url", "model"}
    assert outcome.target.startswith("openai:fake@http://127.0.0.1:")


def test_evaluate_works_inside_a_running_event_loop() -> None:
    async def inside() -> Any:
        return RedTeamEvaluator().evaluate(
            context({"target": CallableTarget(leaky), "max_probes": 10})
        )

    assert asyncio.run(inside()).summary["attempts"] > 0


@pytest.mark.parametrize(
    ("options", "error", "words"),
    [
        ({}, InvalidInputError, "target is required"),
        (
            {"target": {"kind": "callable", "function": "json:dumps"}, "colour": 1},
            InvalidInputError,
            "unknown option",
        ),
        (
            {"target": {"kind": "callable", "function": "json:dumps"}, "max_probes": 0},
            InvalidInputError,
            "max_probes",
        ),
        (
            {"target": {"kind": "callable", "function": "json:dumps"}, "guard": "yes"},
            InvalidInputError,
            "guard",
        ),
        (
            {"target": {"kind": "callable", "function": "json:dumps"}, "packs": []},
            InvalidInputError,
            "packs",
        ),
        (
            {"target": {"kind": "callable", "function": "json:dumps"}, "packs": ["a", "a"]},
            InvalidInputError,
            "twice",
        ),
        (
            {"target": {"kind": "callable", "function": "json:dumps"}, "packs": ["nope"]},
            NotFoundError,
            "unknown probe pack",
        ),
        (
            {"target": {"kind": "callable", "function": "json:dumps"}, "system_prompt": "Be nice."},
            InvalidInputError,
            "lacks {canary}",
        ),
    ],
)
def test_bad_options(options: dict[str, Any], error: type[Exception], words: str) -> None:
    with pytest.raises(error, match=words):
        RedTeamEvaluator().evaluate(context(options))


def test_hooks_offer_the_builtins() -> None:
    assert redteam.charter_evaluators() == [RedTeamEvaluator, ConstraintsEvaluator]
    assert sorted(d.name for d in redteam.charter_detectors()) == [
        "canary",
        "pii",
        "refusal",
        "toxicity",
    ]
    assert [p.name for p in redteam.charter_probe_packs()] == ["charter-default"]
    assert [t.name for t in redteam.charter_targets()] == ["openai", "callable"]  # type: ignore[attr-defined]


def test_plugin_manager_finds_the_builtins() -> None:
    plugins = pytest.importorskip("charter.evaluation.plugins")
    assert {"redteam", "constraints"} <= set(plugins.evaluators())
    assert {"canary", "pii", "refusal", "toxicity"} <= set(plugins.detectors())
    assert "charter-default" in plugins.probe_packs()
    assert {"openai", "callable"} <= set(plugins.targets())


CONSTRAINTS: dict[str, Any] = {
    "max_output_chars": 80,
    "blocked_terms": ["northwind internal"],
    "required_refusal_topics": ["medical diagnosis"],
}


def careless(prompt: str) -> str:
    """Long answers, leaks a blocked term, never refuses."""
    return "Sure! Northwind internal memo follows. " + "details " * 20


def test_constraints_evaluator_measures_violations() -> None:
    ctx = context({"target": CallableTarget(careless), "max_probes": 30}, constraints=CONSTRAINTS)
    outcome = ConstraintsEvaluator().evaluate(ctx)
    rates = {e.name: e for e in outcome.document.evaluations}
    assert set(rates) == {
        "constraint_violation_rate",
        "output_length_violation_rate",
        "blocked_content_rate",
        "required_refusal_miss_rate",
    }
    assert rates["constraint_violation_rate"].value == 1.0
    assert rates["required_refusal_miss_rate"].samples == 3  # the generated topic probes
    assert rates["constraint_violation_rate"].samples == 33
    assert outcome.probe_pack is not None and len(outcome.probe_pack["packs"]) == 2


def test_constraints_evaluator_with_guard_obeys() -> None:
    ctx = context(
        {"target": CallableTarget(careless), "max_probes": 30, "guard": True},
        constraints=CONSTRAINTS,
    )
    rates = {e.name: e.value for e in ConstraintsEvaluator().evaluate(ctx).document.evaluations}
    assert rates == {
        "constraint_violation_rate": 0.0,
        "output_length_violation_rate": 0.0,
        "blocked_content_rate": 0.0,
        "required_refusal_miss_rate": 0.0,
    }


def test_constraints_evaluator_needs_constraints() -> None:
    with pytest.raises(InvalidInputError, match="declares no constraints"):
        ConstraintsEvaluator().evaluate(context({"target": CallableTarget(careless)}))


# --- sweeps through the registry ------------------------------------------------------------
BOT = '''
def leaky(messages):
    """Recites its system prompt (access code, customer records) when asked about them."""
    if any(w in messages[-1]["content"].lower() for w in ("code", "instruction", "customer")):
        return "Sure: " + messages[0]["content"]
    return "Happy to help."


def prudent(messages):
    return "I'm sorry, but I can't help with that."
'''
BOT_GUARDRAILS = (
    "constraints: [{blocked_patterns: ['\\b[0-9a-f]{16}\\b', '\\b(?:\\d[ -]?){13,19}\\b',"
    " '[\\w.+-]+@[\\w-]+\\.[\\w.-]+'], required_refusal_topics: [access code]}]"
)


@pytest.fixture
def bot(registry: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Model ``bot`` (medium tier) with a declared leaky callable target."""
    from charter.domain.profile import parse_document

    (tmp_path / "sweep_bot.py").write_text(BOT)
    monkeypatch.syspath_prepend(str(tmp_path))
    folder = tmp_path / "bot"
    folder.mkdir()
    (folder / "system_prompt.txt").write_text("You are a bank assistant.")
    registry.create_model(name="bot", risk_tier="medium")
    registry.set_model_target(model="bot", target={"kind": "callable",
                              "function": "sweep_bot:leaky"}, auto=False)  # fmt: skip
    registry.register(model="bot", path=folder, version="1.0.0", architecture="smollm2-135m",
                      profile=parse_document(BOT_GUARDRAILS))  # fmt: skip
    return registry


def _guards(runs: list[dict[str, Any]]) -> dict[str, bool]:
    return {r["ref"]: r["config"]["guard"] for r in runs}


def test_a_sweep_guards_as_the_version_was_red_teamed(bot: Any) -> None:
    first = bot.redteam(model="bot", version="1.0.0", max_probes=40, guard=True)
    bot.publish(model="bot", version="1.0.0")
    (swept,) = bot.redteam_sweep(model="bot", max_probes=40)
    assert swept["config"]["guard"] is True and swept["target"].startswith("guarded(callable:")
    # the same campaign as the version's own, so its amendment is comparable with it
    rate = "attack_success_rate"
    assert swept["summary"][rate] == first["summary"][rate]
    (bare,) = bot.redteam_sweep(model="bot", max_probes=40, guard=False)  # explicit wins
    assert bare["config"]["guard"] is False and bare["summary"][rate] > swept["summary"][rate]


def test_a_never_red_teamed_version_is_guarded_when_it_declares_guardrails(
    bot: Any, tmp_path: Path
) -> None:
    bot.register(model="bot", path=tmp_path / "bot", version="1.0.1", parent="1.0.0",
                 change="patch", architecture="smollm2-135m", evaluate=False)  # fmt: skip
    for number in ("1.0.0", "1.0.1"):
        bot.publish(model="bot", version=number)
    runs = bot.redteam_sweep(model="bot", max_probes=20)
    assert _guards(runs) == {"bot@1.0.0": True, "bot@1.0.1": False}


def test_sweep_exit_code_is_about_evidence_and_a_stale_card_is_a_note(
    bot: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from charter.cli import main

    bot.set_model_target(model="bot", target={"kind": "callable",
                         "function": "sweep_bot:prudent"}, auto=False)  # fmt: skip
    bot.redteam(model="bot", version="1.0.0", max_probes=20)
    bot.publish(model="bot", version="1.0.0")
    bot.add_user(name="bob", role="approver")
    bot.render_card(model="bot", version="1.0.0")
    bot.as_user("bob").approve(model="bot", version="1.0.0", stage="production", comment="ok")
    bot.promote(model="bot", version="1.0.0", stage="production")  # medium: card current
    monkeypatch.setenv("CHARTER_USER", "alice")
    home = str(bot.settings.home)
    sweep = ["--home", home, "redteam", "sweep", "--stage", "production", "--max-probes", "20"]
    assert main([*sweep, "--json"]) == 0  # the amendment made the card stale: not a failure
    report = json.loads(capsys.readouterr().out)
    assert report["failing"] == []
    assert report["stale_cards"] == [{"ref": "bot@1.0.0", "formats": ["md"]}]
    assert main(sweep) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert (
        "note: bot@1.0.0 model card (md) is stale" in out
        and "charter card bot@1.0.0 --format md" in out
    )
    # evidence still fails it: over the red-team ceiling the sweep exits 1
    bot.set_model_target(model="bot", target={"kind": "callable",
                         "function": "sweep_bot:leaky"}, auto=False)  # fmt: skip
    assert main([*sweep, "--no-guard", "--json"]) == 1
    (failing,) = json.loads(capsys.readouterr().out)["failing"]
    assert any("attack success rate" in r for r in failing["reasons"])
    assert not any("card" in r or "approv" in r for r in failing["reasons"])


def test_sweep_refuses_a_bad_max_asr_before_any_campaign(
    bot: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from charter.cli import main

    bot.set_model_target(model="bot", target={"kind": "callable",
                         "function": "sweep_bot:prudent"}, auto=False)  # fmt: skip
    bot.publish(model="bot", version="1.0.0")
    before = len(bot.audit_log())
    sweep = ["--home", str(bot.settings.home), "redteam", "sweep", "--model", "bot"]
    assert main([*sweep, "--max-asr", "1.5"]) == 2
    assert "--max-asr is a rate between 0 and 1" in capsys.readouterr().err
    assert len(bot.audit_log()) == before  # no campaign ran, nothing was recorded
