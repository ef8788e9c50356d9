"""Guards: declared constraints enforced on targets and plain functions."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from charter.domain.errors import InvalidInputError
from charter.domain.folding import ActiveEntry, EffectiveProfile
from charter.domain.profile import ConstraintsEntry, ProfileDocument
from charter.evaluation.guard import DEFAULT_REFUSAL, GuardedTarget, Guardrails, guard
from charter.evaluation.targets import Target

CONSTRAINTS: dict[str, Any] = {
    "max_input_chars": 200,
    "max_output_chars": 60,
    "blocked_terms": ["project nightingale"],
    "blocked_patterns": [r"\b(?:\d[ -]?){13,19}\b", r"\b[0-9a-f]{16}\b"],
    "required_refusal_topics": ["medical diagnosis"],
}


def profile(*bodies: dict[str, Any]) -> EffectiveProfile:
    entries = tuple(
        ActiveEntry({"id": f"cons-{i}", "section": "constraints", **b}, None)
        for i, b in enumerate(bodies, 1)
    )
    evaluation = ActiveEntry({"id": "eval-1", "section": "evaluations", "name": "x"}, None)
    return EffectiveProfile("bot@1.0.0", None, (*entries, evaluation), (), (), (), None)


class Echo(Target):
    """Replies with a fixed text, or echoes the prompt; counts calls."""

    description = "echo"

    def __init__(self, reply: str | None = None) -> None:
        self.reply, self.calls, self.closed, self.seen = reply, 0, False, ""

    async def chat(self, messages: list[dict[str, str]]) -> str:
        self.calls += 1
        self.seen = messages[-1]["content"]
        return self.reply if self.reply is not None else self.seen

    async def aclose(self) -> None:
        self.closed = True


def ask(target: Target, prompt: str) -> str:
    async def main() -> str:
        return await target.chat(
            [{"role": "system", "content": "sys"}, {"role": "user", "content": prompt}]
        )

    return asyncio.run(main())


def test_entries_merge_most_restrictively() -> None:
    rails = Guardrails.from_source(
        profile(
            {"max_output_chars": 100, "blocked_terms": ["a"]},
            {"max_output_chars": 40, "blocked_terms": ["a", "b"], "max_input_tokens": 5},
        )
    )
    assert rails.max_output_chars == 40 and rails.max_input_tokens == 5
    assert len(rails.blocked) == 2 and rails.max_input_chars is None
    assert not rails.empty and Guardrails.from_source({}).empty


def test_bad_constraints_are_refused() -> None:
    with pytest.raises(InvalidInputError, match="regex"):
        Guardrails.from_source({"blocked_patterns": ["("]})
    with pytest.raises(InvalidInputError, match="positive integer"):
        Guardrails.from_source({"max_output_chars": -3})
    with pytest.raises(InvalidInputError, match="constraints must be"):
        Guardrails.from_source(42)  # type: ignore[arg-type]


def test_blocked_input_is_refused_without_calling_the_model() -> None:
    inner = Echo("model answer")
    target = GuardedTarget(inner, CONSTRAINTS)
    assert ask(target, "Tell me about Project Nightingale") == DEFAULT_REFUSAL
    assert ask(target, "my card is 4111 1111 1111 1111") == DEFAULT_REFUSAL
    assert ask(target, "I need a medical diagnosis for my rash") == DEFAULT_REFUSAL
    assert ask(target, "x" * 201) == DEFAULT_REFUSAL
    assert inner.calls == 0
    assert target.stats["refused_inputs"] == 4
    assert ask(target, "What are your opening hours?") == "model answer"
    assert inner.calls == 1


def test_long_input_can_be_truncated_instead() -> None:
    inner = Echo()
    target = GuardedTarget(inner, {"max_input_chars": 10}, on_long_input="truncate")
    assert ask(target, "abcdefghijklmnop") == "abcdefghij"
    assert target.stats["truncated_inputs"] == 1


def test_outputs_are_redacted_then_truncated() -> None:
    canary = "5c2e9a71f04b8d36"
    inner = Echo(f"Code {canary}; card 4111-1111-1111-1111. " + "padding " * 20)
    target = GuardedTarget(inner, CONSTRAINTS)
    reply = ask(target, "hello")
    assert canary not in reply and "4111" not in reply
    assert reply.startswith("Code [REDACTED]; card [REDACTED].")
    assert len(reply) == 60
    assert target.stats["redacted_outputs"] == 1 and target.stats["truncated_outputs"] == 1


def test_blocked_output_can_refuse_the_whole_reply() -> None:
    target = GuardedTarget(
        Echo("the plan is project nightingale"),
        CONSTRAINTS,
        on_blocked_output="refuse",
        refusal="No.",
    )
    assert ask(target, "plan?") == "No."


def test_output_token_limit() -> None:
    target = GuardedTarget(Echo("one two three four five"), {"max_output_tokens": 3})
    assert ask(target, "count") == "one two three"


def test_guard_closes_the_inner_target_and_describes_itself() -> None:
    inner = Echo()
    target = guard(inner, profile(CONSTRAINTS))
    assert isinstance(target, GuardedTarget) and target.description == "guarded(echo)"
    asyncio.run(target.aclose())
    assert inner.closed


def test_guard_wraps_a_plain_function() -> None:
    calls: list[str] = []

    def answer(prompt: str) -> str:
        calls.append(prompt)
        return f"The code is 9d41c7e0a2b85f36, {prompt}"

    safe = guard(answer, profile(CONSTRAINTS))
    assert safe.__name__ == "answer"
    assert safe("hi") == "The code is [REDACTED], hi"
    assert safe("a medical diagnosis please") == DEFAULT_REFUSAL
    assert calls == ["hi"]
    assert safe.guard_stats["refused_inputs"] == 1  # type: ignore[attr-defined]


def test_guard_wraps_an_async_function() -> None:
    async def answer(prompt: str) -> str:
        return "Project Nightingale is secret"

    safe = guard(answer, ProfileDocument(constraints=[ConstraintsEntry(**CONSTRAINTS)]))
    assert asyncio.run(safe("tell me")) == "[REDACTED] is secret"  # type: ignore[arg-type]


def test_guard_accepts_entries_and_lists() -> None:
    def shout(prompt: str) -> str:
        return prompt.upper()

    fn = guard(shout, [ConstraintsEntry(max_output_chars=3), {"blocked_terms": ["z"]}])
    assert fn("abcdef") == "ABC"
    assert fn("z") == DEFAULT_REFUSAL


def test_guard_rejects_bad_arguments() -> None:
    with pytest.raises(InvalidInputError, match="Target or a callable"):
        guard(42, {})  # type: ignore[call-overload]
    with pytest.raises(InvalidInputError, match="unknown guard option"):
        guard(lambda p: p, {}, colour="red")
    with pytest.raises(InvalidInputError, match="on_long_input"):
        GuardedTarget(Echo(), {}, on_long_input="shrug")
