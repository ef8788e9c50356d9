"""Guards: apply a version's declared constraints to a live model at run time.

The ``constraints`` section of a safety profile declares guardrails
(``max_input_chars``, ``blocked_terms``, ``blocked_patterns``,
``required_refusal_topics``…). :func:`guard` wraps a target — or a plain
``prompt -> str`` function — so that those declarations are enforced:

- input longer than ``max_input_chars``/``max_input_tokens``: refused (or truncated);
- input containing a blocked term or pattern, or mentioning a required-refusal
  topic: refused *without calling the model*;
- output: blocked terms and patterns redacted (or the whole reply refused), then
  cut to ``max_output_chars``/``max_output_tokens``.

Several constraints entries in force are merged most-restrictively: the smallest
limit wins, term/pattern/topic lists are united. Tokens are approximated as words
and punctuation marks (about what BPE tokenisers count for English, usually more).

Example::

    safe_answer = charter.guard(answer, registry.profile("bank-bot@1.2.0"))
    safe_answer("What's the access code?")   # the declared guardrails apply
"""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, overload

from charter.domain.errors import InvalidInputError
from charter.domain.folding import EffectiveProfile
from charter.domain.profile import ConstraintsEntry, ProfileDocument
from charter.evaluation._text import term_pattern
from charter.evaluation.targets import Messages, Target

__all__ = ["DEFAULT_REFUSAL", "GuardedTarget", "Guardrails", "guard"]

DEFAULT_REFUSAL = "I can't help with that request."
REDACTED = "[REDACTED]"
_TOKEN = re.compile(r"\w+|[^\w\s]")
_LIMITS = ("max_input_chars", "max_output_chars", "max_input_tokens", "max_output_tokens")
_LISTS = ("blocked_terms", "blocked_patterns", "required_refusal_topics")

ConstraintsSource = (
    EffectiveProfile | ProfileDocument | ConstraintsEntry | Mapping[str, Any] | Iterable[Any]
)


def count_tokens(text: str) -> int:
    """Approximate token count: words plus punctuation marks."""
    return len(_TOKEN.findall(text))


def _cut_tokens(text: str, limit: int) -> str:
    matches = list(_TOKEN.finditer(text))
    return text if len(matches) <= limit else text[: matches[limit - 1].end()]


def _entries(source: ConstraintsSource) -> list[Mapping[str, Any]]:
    if isinstance(source, EffectiveProfile):
        return list(source.section("constraints"))
    if isinstance(source, ProfileDocument):
        return [c.model_dump() for c in source.constraints]
    if isinstance(source, ConstraintsEntry):
        return [source.model_dump()]
    if isinstance(source, Mapping):
        return [source]
    if isinstance(source, Iterable) and not isinstance(source, str | bytes):
        return [entry for item in source for entry in _entries(item)]
    kind = type(source).__name__
    raise InvalidInputError(
        f"constraints must be a profile, a constraints entry or a mapping, not {kind}"
    )


@dataclass(frozen=True)
class Guardrails:
    """Merged, compiled constraints (see the module docstring for the merge rule)."""

    max_input_chars: int | None = None
    max_output_chars: int | None = None
    max_input_tokens: int | None = None
    max_output_tokens: int | None = None
    blocked: tuple[re.Pattern[str], ...] = ()
    topics: tuple[tuple[str, re.Pattern[str]], ...] = ()

    @classmethod
    def from_source(cls, source: ConstraintsSource) -> Guardrails:
        """Merge every constraints entry of ``source``.

        Raises:
            InvalidInputError: a limit that is not a positive integer or a bad regex.
        """
        limits: dict[str, int | None] = dict.fromkeys(_LIMITS)
        lists: dict[str, list[str]] = {k: [] for k in _LISTS}
        for entry in _entries(source):
            for key in _LIMITS:
                value = entry.get(key)
                if value is None:
                    continue
                if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                    raise InvalidInputError(f"constraints.{key} must be a positive integer")
                current = limits[key]
                limits[key] = value if current is None else min(current, value)
            for key in _LISTS:
                for item in entry.get(key) or []:
                    if isinstance(item, str) and item.strip() and item not in lists[key]:
                        lists[key].append(item)
        blocked = [term_pattern(t) for t in lists["blocked_terms"]]
        for i, pattern in enumerate(lists["blocked_patterns"]):
            try:
                blocked.append(re.compile(pattern))
            except re.error as exc:
                raise InvalidInputError(
                    f"blocked_patterns[{i}] is not a valid regex: {exc}"
                ) from None
        topics = tuple((t, term_pattern(t)) for t in lists["required_refusal_topics"])
        return cls(**limits, blocked=tuple(blocked), topics=topics)

    @property
    def empty(self) -> bool:
        """True when nothing is constrained."""
        return not (self.blocked or self.topics or any(getattr(self, k) for k in _LIMITS))

    def too_long(self, text: str) -> bool:
        """Input over ``max_input_chars`` or ``max_input_tokens``."""
        over_chars = self.max_input_chars is not None and len(text) > self.max_input_chars
        over_tokens = (
            self.max_input_tokens is not None and count_tokens(text) > self.max_input_tokens
        )
        return over_chars or over_tokens

    def cut_input(self, text: str) -> str:
        """``text`` cut to the input limits."""
        if self.max_input_chars is not None:
            text = text[: self.max_input_chars]
        if self.max_input_tokens is not None:
            text = _cut_tokens(text, self.max_input_tokens)
        return text

    def has_blocked(self, text: str) -> bool:
        """Whether ``text`` contains a blocked term or matches a blocked pattern."""
        return any(p.search(text) for p in self.blocked)

    def topic(self, text: str) -> str | None:
        """The first required-refusal topic ``text`` mentions, or None."""
        return next((name for name, p in self.topics if p.search(text)), None)

    def redact(self, text: str) -> tuple[str, int]:
        """Replace blocked terms and pattern matches; return the text and how many."""
        total = 0
        for pattern in self.blocked:
            text, n = pattern.subn(REDACTED, text)
            total += n
        return text, total

    def cut_output(self, text: str) -> str:
        """``text`` cut to the output limits."""
        if self.max_output_tokens is not None:
            text = _cut_tokens(text, self.max_output_tokens)
        if self.max_output_chars is not None:
            text = text[: self.max_output_chars]
        return text

    def output_too_long(self, text: str) -> bool:
        """Output over ``max_output_chars`` or ``max_output_tokens``."""
        over = self.max_output_chars is not None and len(text) > self.max_output_chars
        tokens = self.max_output_tokens
        return over or (tokens is not None and count_tokens(text) > tokens)


class _Policy:
    """The run-time decisions shared by the async target and the sync function wrapper."""

    def __init__(
        self, rails: Guardrails, *, on_long_input: str, on_blocked_output: str, refusal: str
    ) -> None:
        if on_long_input not in ("refuse", "truncate"):
            raise InvalidInputError("on_long_input must be 'refuse' or 'truncate'")
        if on_blocked_output not in ("redact", "refuse"):
            raise InvalidInputError("on_blocked_output must be 'redact' or 'refuse'")
        self.rails, self.on_long_input, self.on_blocked = rails, on_long_input, on_blocked_output
        self.refusal = refusal
        self.stats = dict.fromkeys(
            (
                "refused_inputs",
                "truncated_inputs",
                "redacted_outputs",
                "refused_outputs",
                "truncated_outputs",
            ),
            0,
        )

    def check_input(self, text: str) -> tuple[bool, str]:
        """Return (refuse?, possibly truncated text)."""
        if self.rails.too_long(text):
            if self.on_long_input == "refuse":
                self.stats["refused_inputs"] += 1
                return True, text
            self.stats["truncated_inputs"] += 1
            text = self.rails.cut_input(text)
        if self.rails.has_blocked(text) or self.rails.topic(text):
            self.stats["refused_inputs"] += 1
            return True, text
        return False, text

    def filter_output(self, text: str) -> str:
        if self.rails.has_blocked(text):
            if self.on_blocked == "refuse":
                self.stats["refused_outputs"] += 1
                return self.refusal
            text, _ = self.rails.redact(text)
            self.stats["redacted_outputs"] += 1
        cut = self.rails.cut_output(text)
        if cut != text:
            self.stats["truncated_outputs"] += 1
        return cut


class GuardedTarget(Target):
    """A target whose inputs and outputs obey declared constraints."""

    def __init__(
        self,
        inner: Target,
        constraints: ConstraintsSource,
        *,
        on_long_input: str = "refuse",
        on_blocked_output: str = "redact",
        refusal: str = DEFAULT_REFUSAL,
    ) -> None:
        """Args:
        inner: the target to protect.
        constraints: an effective profile, profile document, constraints entry or mapping.
        on_long_input: ``refuse`` or ``truncate`` the last user message.
        on_blocked_output: ``redact`` matches or ``refuse`` the whole reply.
        refusal: the reply sent instead of refused input or output.

        Raises:
            InvalidInputError: bad options or constraints.
        """
        self.inner = inner
        self.rails = Guardrails.from_source(constraints)
        self._policy = _Policy(
            self.rails,
            on_long_input=on_long_input,
            on_blocked_output=on_blocked_output,
            refusal=refusal,
        )
        self.description = f"guarded({inner.description})"

    @property
    def stats(self) -> dict[str, int]:
        """Counts of refused/truncated inputs and redacted/refused/truncated outputs."""
        return dict(self._policy.stats)

    async def chat(self, messages: Messages) -> str:
        """Check the user input, call the inner target, filter its reply."""
        user = [i for i, m in enumerate(messages) if m.get("role") == "user"]
        text = "\n".join(messages[i]["content"] for i in user)
        refuse, kept = self._policy.check_input(text)
        if refuse:
            return self._policy.refusal
        if kept != text and user:
            overflow = len(text) - len(kept)
            last = messages[user[-1]]
            messages = [*messages]
            messages[user[-1]] = {
                **last,
                "content": last["content"][: max(0, len(last["content"]) - overflow)],
            }
        return self._policy.filter_output(await self.inner.chat(messages))

    async def aclose(self) -> None:
        """Close the inner target."""
        await self.inner.aclose()


SyncFn = Callable[..., str]
AsyncFn = Callable[..., Awaitable[str]]


@overload
def guard(target: Target, constraints: ConstraintsSource, **options: Any) -> GuardedTarget: ...
@overload
def guard(target: AsyncFn, constraints: ConstraintsSource, **options: Any) -> AsyncFn: ...
@overload
def guard(target: SyncFn, constraints: ConstraintsSource, **options: Any) -> SyncFn: ...


def guard(
    target: Target | SyncFn | AsyncFn, constraints: ConstraintsSource, **options: Any
) -> GuardedTarget | SyncFn | AsyncFn:
    """Enforce a version's declared constraints on a target or a plain function.

    Args:
        target: a :class:`Target`, or a function ``prompt -> str`` (sync or async).
        constraints: an :class:`EffectiveProfile` (its constraints section is used), a
            :class:`ProfileDocument`, a :class:`ConstraintsEntry`, a mapping, or a list.
        **options: ``on_long_input``, ``on_blocked_output``, ``refusal`` (see
            :class:`GuardedTarget`).

    Returns:
        A :class:`GuardedTarget` for a target; for a function, a function of the same
        kind (sync or async) that applies the guardrails to its prompt and reply.

    Raises:
        InvalidInputError: bad options or constraints.
    """
    if isinstance(target, Target):
        return GuardedTarget(target, constraints, **options)
    if not callable(target):
        raise InvalidInputError(
            f"guard() needs a Target or a callable, not {type(target).__name__}"
        )
    policy = _Policy(
        Guardrails.from_source(constraints),
        on_long_input=options.pop("on_long_input", "refuse"),
        on_blocked_output=options.pop("on_blocked_output", "redact"),
        refusal=options.pop("refusal", DEFAULT_REFUSAL),
    )
    if options:
        raise InvalidInputError(f"unknown guard option(s): {sorted(options)}")
    if inspect.iscoroutinefunction(target):
        async_fn: AsyncFn = target

        @functools.wraps(async_fn)
        async def guarded_async(prompt: str, *args: Any, **kwargs: Any) -> str:
            refuse, kept = policy.check_input(prompt)
            if refuse:
                return policy.refusal
            return policy.filter_output(str(await async_fn(kept, *args, **kwargs)))

        guarded_async.guard_stats = policy.stats  # type: ignore[attr-defined]
        return guarded_async
    sync_fn: SyncFn = target  # type: ignore[assignment]

    @functools.wraps(sync_fn)
    def guarded(prompt: str, *args: Any, **kwargs: Any) -> str:
        refuse, kept = policy.check_input(prompt)
        if refuse:
            return policy.refusal
        return policy.filter_output(str(sync_fn(kept, *args, **kwargs)))

    guarded.guard_stats = policy.stats  # type: ignore[attr-defined]
    return guarded
