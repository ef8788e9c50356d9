"""Targets: the systems a campaign talks to.

A target takes chat messages and returns the reply text. Built-in kinds:

- ``openai``: any OpenAI-compatible ``/chat/completions`` endpoint (OpenAI, vLLM,
  llama.cpp's server, Ollama…), with bounded concurrency, retries with jittered
  exponential back-off on 429/5xx/timeouts/connection errors, and an optional rate
  limit. The API key is read from the environment variable *named* in the config
  (``api_key_env``); it is never stored, logged or recorded.
- ``callable``: a Python function ``"module:function"`` taking a prompt string (or
  the message list) and returning the reply; sync functions run in a thread.

Example::

    target = target_from_config({"kind": "openai", "base_url": "http://127.0.0.1:8000/v1",
                                 "model": "smollm2", "api_key_env": "OPENAI_API_KEY"})
    reply = await target.chat([{"role": "user", "content": "Hello"}])
    await target.aclose()
"""

from __future__ import annotations

import asyncio
import inspect
import os
import random
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import httpx

from charter.domain.errors import CharterError, InvalidInputError
from charter.evaluation._callables import (
    CALLABLE_KEYS,
    OPENAI_KEYS,
    accepts_system,
    check_keys,
    check_numbers,
    qualname,
    resolve,
    takes_messages,
)
from charter.evaluation._http import TokenBucket, backoff_delay, retry_after_seconds

__all__ = [
    "CallableTarget",
    "Messages",
    "OpenAITarget",
    "Target",
    "TargetError",
    "check_target_config",
    "target_from_config",
]

Messages = list[dict[str, str]]
POOL_SIZE = 8


class TargetError(CharterError):
    """The target failed: unreachable, kept failing after retries, or answered nonsense."""

    code = "target_error"
    exit_code = 1


class Target(ABC):
    """A system under test. ``description`` names it without secrets."""

    description: str

    @abstractmethod
    async def chat(self, messages: Messages) -> str:
        """Send ``messages`` (``{"role", "content"}`` dicts) and return the reply text.

        Raises:
            TargetError: the target failed.
        """

    async def aclose(self) -> None:  # noqa: B027 - optional hook, a no-op by default
        """Release connections and other resources."""


class OpenAITarget(Target):
    """An OpenAI-compatible chat-completions endpoint."""

    name: ClassVar[str] = "openai"

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key_env: str | None = None,
        timeout: float = 30.0,
        retries: int = 3,
        concurrency: int = 8,
        rate_limit_per_s: float | None = None,
        max_tokens: int = 256,
        temperature: float = 0.0,
        *,
        backoff_base: float = 0.5,
        backoff_max: float = 20.0,
        env: Mapping[str, str] | None = None,
    ) -> None:
        """Args:
        base_url: e.g. ``https://api.openai.com/v1``; ``/chat/completions`` is appended.
        model: model name sent with each request.
        api_key_env: name of the environment variable holding the API key (None: no key).
        timeout: seconds per request.
        retries: retries after the first attempt (429, 5xx, timeouts, connection errors).
        concurrency: maximum requests in flight.
        rate_limit_per_s: maximum request starts per second (None: unlimited).
        max_tokens: reply length limit sent to the endpoint.
        temperature: sampling temperature (0 for reproducible campaigns).
        backoff_base: first back-off ceiling in seconds (doubles per retry, full jitter).
        backoff_max: back-off ceiling in seconds (also caps ``Retry-After``).
        env: where to look up ``api_key_env`` (default: ``os.environ``).

        Raises:
            InvalidInputError: bad URL or numbers, or the named variable is not set.
        """
        if not base_url.startswith(("http://", "https://")):
            raise InvalidInputError(f"base_url {base_url!r} must start with http:// or https://")
        if not model:
            raise InvalidInputError("model is required for an openai target", field="model")
        for label, value in (("timeout", timeout), ("concurrency", concurrency)):
            if value <= 0:
                raise InvalidInputError(f"{label} must be positive, not {value}", field=label)
        if retries < 0:
            raise InvalidInputError(f"retries must be 0 or more, not {retries}", field="retries")
        self._key: str | None = None
        if api_key_env:
            key = (os.environ if env is None else env).get(api_key_env)
            if not key:
                raise InvalidInputError(
                    f"environment variable {api_key_env} (api_key_env) is not set",
                    field="api_key_env",
                )
            self._key = key
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model, self.timeout, self.retries = model, float(timeout), retries
        self.concurrency, self.max_tokens, self.temperature = concurrency, max_tokens, temperature
        self.backoff_base, self.backoff_max = backoff_base, backoff_max
        self._bucket = TokenBucket(rate_limit_per_s) if rate_limit_per_s else None
        self._pools: list[httpx.AsyncHTTPTransport] = []
        self._headers = {"Authorization": f"Bearer {self._key}"} if self._key else {}
        self._timeouts = httpx.Timeout(self.timeout).as_dict()
        self._turn = 0
        self._semaphore: asyncio.Semaphore | None = None
        self._rng = random.Random()
        self.description = f"openai:{model}@{base_url.rstrip('/')}"
        self.attempts = 0  # requests sent, retries included (for reports and tests)

    def __repr__(self) -> str:
        return f"OpenAITarget({self.description!r})"

    def _ensure(self) -> tuple[httpx.AsyncHTTPTransport, asyncio.Semaphore]:
        # Two choices made for CPU per request, which bounds campaign throughput
        # (bench/redteam.py): requests go straight to httpx's transport (no cookies,
        # redirects or auth flows to run: a chat endpoint needs none), and connections are
        # spread over several small pools, because httpcore's pool checks every
        # connection on every request. Together: about 35% less CPU than one AsyncClient.
        if not self._pools or self._semaphore is None:
            shards = -(-self.concurrency // POOL_SIZE)
            size = -(-self.concurrency // shards)
            limits = httpx.Limits(max_connections=size, max_keepalive_connections=size)
            self._pools = [httpx.AsyncHTTPTransport(limits=limits) for _ in range(shards)]
            self._semaphore = asyncio.Semaphore(self.concurrency)
        self._turn = (self._turn + 1) % len(self._pools)
        return self._pools[self._turn], self._semaphore

    async def _post(
        self, pool: httpx.AsyncHTTPTransport, payload: dict[str, Any]
    ) -> httpx.Response:
        request = httpx.Request(
            "POST", self.url, json=payload, headers=self._headers,
            extensions={"timeout": self._timeouts},
        )  # fmt: skip
        response = await pool.handle_async_request(request)
        try:
            await response.aread()
        finally:
            await response.aclose()
        return response

    async def chat(self, messages: Messages) -> str:
        """POST the messages; retry transient failures (see the class docstring)."""
        pool, semaphore = self._ensure()
        payload = {
            "model": self.model,
            "messages": messages,
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
        }
        async with semaphore:
            problem = ""
            for attempt in range(self.retries + 1):
                if self._bucket is not None:
                    await self._bucket.acquire()
                wait: float | None = None
                self.attempts += 1
                try:
                    response = await self._post(pool, payload)
                except httpx.TimeoutException:
                    problem = f"timed out after {self.timeout:g} s"
                except httpx.TransportError as exc:
                    problem = f"connection failed ({type(exc).__name__})"
                else:
                    if response.status_code == 200:
                        return self._reply(response)
                    problem = f"HTTP {response.status_code}: {response.text[:200]!r}"
                    if response.status_code != 429 and response.status_code < 500:
                        raise TargetError(
                            f"{self.description} refused the request: {problem}",
                            status=response.status_code,
                        )
                    wait = retry_after_seconds(
                        response.headers.get("retry-after"), cap=self.backoff_max
                    )
                if attempt < self.retries:
                    if wait is None:
                        wait = backoff_delay(
                            attempt, base=self.backoff_base, cap=self.backoff_max, rng=self._rng
                        )
                    await asyncio.sleep(wait)
        raise TargetError(
            f"{self.description} failed after {self.retries + 1} attempts: {problem}",
            attempts=self.retries + 1,
        )

    def _reply(self, response: httpx.Response) -> str:
        try:
            content = response.json()["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise TargetError(
                f"{self.description} answered without choices[0].message.content: "
                f"{response.text[:200]!r}"
            ) from None
        return content if isinstance(content, str) else ""

    async def aclose(self) -> None:
        """Close the connections (a later ``chat`` opens new ones)."""
        pools, self._pools, self._semaphore = self._pools, [], None
        for pool in pools:
            await pool.aclose()


class CallableTarget(Target):
    """A Python function as a target.

    ``mode="prompt"``: called as ``function(prompt)`` with the last user message; the
    system prompt is passed as ``system=`` when the function accepts that keyword, else
    prepended to the prompt (``"<system>\\n\\n<prompt>"``), so planted secrets reach it.
    ``mode="messages"``: called as ``function(messages)``. ``mode="auto"`` picks
    messages when the first parameter is named ``messages`` or annotated as a list.
    Coroutine functions are awaited; others run in a worker thread.
    """

    name: ClassVar[str] = "callable"
    MODES: ClassVar[tuple[str, ...]] = ("auto", "prompt", "messages")

    def __init__(self, function: str | Callable[..., Any], mode: str = "auto") -> None:
        """Args:
        function: ``"module:function"`` or the callable itself.
        mode: ``auto``, ``prompt`` or ``messages``.

        Raises:
            InvalidInputError: unknown mode, or the function cannot be imported.
        """
        if mode not in self.MODES:
            raise InvalidInputError(f"mode {mode!r} must be one of {', '.join(self.MODES)}")
        self.function = resolve(function) if isinstance(function, str) else function
        name = function if isinstance(function, str) else qualname(function)
        self.description = f"callable:{name}"
        self.messages_mode = mode == "messages" or (
            mode == "auto" and takes_messages(self.function)
        )
        self._system_kw = accepts_system(self.function)
        self._is_async = inspect.iscoroutinefunction(self.function)

    async def chat(self, messages: Messages) -> str:
        """Call the function; its exceptions propagate (CharterErrors unchanged)."""
        args: tuple[Any, ...]
        kwargs: dict[str, Any] = {}
        if self.messages_mode:
            args = ([dict(m) for m in messages],)
        else:
            system = "\n\n".join(m["content"] for m in messages if m.get("role") == "system")
            users = [m["content"] for m in messages if m.get("role") == "user"]
            prompt = users[-1] if users else ""
            if system and self._system_kw:
                kwargs["system"] = system
            elif system:
                prompt = f"{system}\n\n{prompt}"
            args = (prompt,)
        if self._is_async:
            result = await self.function(*args, **kwargs)
        else:
            result = await asyncio.to_thread(self.function, *args, **kwargs)
        return "" if result is None else str(result)


def target_from_config(
    config: Mapping[str, Any],
    *,
    kinds: Mapping[str, Callable[..., Target]] | None = None,
    env: Mapping[str, str] | None = None,
) -> Target:
    """Build a target from a config mapping (``kind`` plus that kind's options).

    Args:
        config: ``{"kind": "openai", "base_url", "model", "api_key_env"…}`` or
            ``{"kind": "callable", "function": "module:function", "mode": "auto"}``.
        kinds: extra kinds from plugins (``kind -> factory(**options)``).
        env: where an openai target looks up ``api_key_env`` (default: ``os.environ``).

    Returns:
        The target.

    Raises:
        InvalidInputError: unknown kind or option, a literal ``api_key``, bad values.
    """
    if not isinstance(config, Mapping):
        raise InvalidInputError("target must be a mapping with a 'kind'", field="target")
    kind = config.get("kind")
    options = {k: v for k, v in config.items() if k != "kind"}
    if "api_key" in config:
        raise InvalidInputError(
            "put the API key in an environment variable and name it with api_key_env; "
            "keys in configs end up in records",
            field="target.api_key",
        )
    if kind == "openai":
        check_keys(config, OPENAI_KEYS, kind)
        for required in ("base_url", "model"):
            if not isinstance(config.get(required), str):
                raise InvalidInputError(
                    f"target.{required} is required", field=f"target.{required}"
                )
        check_numbers(config)
        return OpenAITarget(**options, env=env)
    if kind == "callable":
        check_keys(config, CALLABLE_KEYS, kind)
        if not isinstance(config.get("function"), str):
            raise InvalidInputError("target.function ('module:function') is required")
        return CallableTarget(config["function"], mode=str(config.get("mode", "auto")))
    if kinds and isinstance(kind, str) and kind in kinds:
        return kinds[kind](**options)
    valid = ["openai", "callable", *sorted(kinds or {})]
    raise InvalidInputError(f"unknown target kind {kind!r}; valid: {', '.join(valid)}", valid=valid)


def check_target_config(
    config: Mapping[str, Any], *, kinds: Mapping[str, Callable[..., Target]] | None = None
) -> None:
    """Validate a target config without side effects, e.g. when a model declares its target.

    Same checks as :func:`target_from_config`, except that the API-key variable is not
    looked up (it may only exist where campaigns run) and a callable is not imported.

    Raises:
        InvalidInputError: as :func:`target_from_config`.
    """
    kind = config.get("kind") if isinstance(config, Mapping) else None
    if kind == "openai" and isinstance(config.get("api_key_env"), str):
        target_from_config(config, env={config["api_key_env"]: "unchecked"})
    elif kind == "callable":
        check_keys(config, CALLABLE_KEYS, kind)
        spec = config.get("function")
        if not isinstance(spec, str) or ":" not in spec.strip(":"):
            raise InvalidInputError("target.function must look like 'package.module:function'")
        if str(config.get("mode", "auto")) not in CallableTarget.MODES:
            raise InvalidInputError(f"target.mode must be one of {', '.join(CallableTarget.MODES)}")
    elif kind not in (kinds or {}):
        target_from_config(config, kinds=kinds)
