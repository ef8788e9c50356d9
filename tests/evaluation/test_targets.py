"""Targets: OpenAI-compatible endpoints (mocked and on loopback), callables, configs."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable
from typing import Any, TypeVar

import httpx
import pytest
import respx

from charter.domain.errors import InvalidInputError
from charter.evaluation._http import TokenBucket, backoff_delay, retry_after_seconds
from charter.evaluation._loopback import LoopbackServer
from charter.evaluation.targets import (
    CallableTarget,
    OpenAITarget,
    Target,
    TargetError,
    check_target_config,
    target_from_config,
)

T = TypeVar("T")
URL = "http://model.test/v1"
HELLO = [{"role": "system", "content": "be nice"}, {"role": "user", "content": "hello"}]


def run(awaitable: Awaitable[T]) -> T:
    async def main() -> T:
        return await awaitable

    return asyncio.run(main())


def completion(text: str) -> httpx.Response:
    return httpx.Response(
        200, json={"choices": [{"message": {"role": "assistant", "content": text}}]}
    )


def fast_target(**options: Any) -> OpenAITarget:
    return OpenAITarget(URL, "m", backoff_base=0.001, backoff_max=0.01, **options)


async def chat_once(target: Target, messages: list[dict[str, str]] = HELLO) -> str:
    try:
        return await target.chat(messages)
    finally:
        await target.aclose()


@respx.mock
def test_openai_target_posts_the_chat() -> None:
    route = respx.post(f"{URL}/chat/completions").mock(return_value=completion("hi there"))
    target = fast_target(max_tokens=32, temperature=0.5)
    assert run(chat_once(target)) == "hi there"
    sent = route.calls.last.request
    body = httpx.Response(200, content=sent.content).json()
    assert body == {"model": "m", "messages": HELLO, "max_tokens": 32, "temperature": 0.5}
    assert "authorization" not in sent.headers


@respx.mock
def test_retries_429_and_5xx_then_succeeds() -> None:
    route = respx.post(f"{URL}/chat/completions").mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "0"}),
            httpx.Response(503),
            httpx.ConnectError("refused"),
            completion("finally"),
        ]
    )
    target = fast_target(retries=3)
    assert run(chat_once(target)) == "finally"
    assert route.call_count == 4 and target.attempts == 4


@respx.mock
def test_gives_up_after_the_retries() -> None:
    route = respx.post(f"{URL}/chat/completions").mock(return_value=httpx.Response(500))
    with pytest.raises(TargetError, match="after 3 attempts: HTTP 500") as err:
        run(chat_once(fast_target(retries=2)))
    assert route.call_count == 3 and err.value.code == "target_error"
    assert err.value.exit_code == 1


@respx.mock
def test_timeouts_are_retried() -> None:
    respx.post(f"{URL}/chat/completions").mock(side_effect=httpx.ReadTimeout("slow"))
    with pytest.raises(TargetError, match="timed out"):
        run(chat_once(fast_target(retries=1, timeout=0.5)))


@respx.mock
def test_client_errors_are_not_retried() -> None:
    route = respx.post(f"{URL}/chat/completions").mock(
        return_value=httpx.Response(401, json={"error": "bad key"})
    )
    with pytest.raises(TargetError, match="HTTP 401") as err:
        run(chat_once(fast_target(retries=5)))
    assert route.call_count == 1 and err.value.details["status"] == 401


@respx.mock
def test_malformed_replies_are_errors() -> None:
    respx.post(f"{URL}/chat/completions").mock(return_value=httpx.Response(200, json={"x": 1}))
    with pytest.raises(TargetError, match=r"choices\[0\]"):
        run(chat_once(fast_target()))


@respx.mock
def test_retry_after_is_honoured() -> None:
    respx.post(f"{URL}/chat/completions").mock(
        side_effect=[httpx.Response(429, headers={"Retry-After": "0.2"}), completion("ok")]
    )
    start = time.perf_counter()
    assert run(chat_once(OpenAITarget(URL, "m", backoff_base=0.0))) == "ok"
    assert time.perf_counter() - start >= 0.2


@respx.mock
def test_api_key_comes_from_the_named_variable_only() -> None:
    route = respx.post(f"{URL}/chat/completions").mock(return_value=completion("ok"))
    target = OpenAITarget(URL, "m", api_key_env="MY_KEY", env={"MY_KEY": "sk-secret"})
    run(chat_once(target))
    assert route.calls.last.request.headers["authorization"] == "Bearer sk-secret"
    assert "sk-secret" not in target.description + repr(target)
    with pytest.raises(InvalidInputError, match="MY_KEY"):
        OpenAITarget(URL, "m", api_key_env="MY_KEY", env={})


def test_concurrency_is_bounded_on_a_real_loopback_server() -> None:
    async def scenario() -> tuple[int, float, int]:
        async with LoopbackServer(delay=0.05, reply=lambda m: m[-1]["content"].upper()) as server:
            target = OpenAITarget(server.base_url, "fake", concurrency=4)
            start = time.perf_counter()
            try:
                replies = await asyncio.gather(
                    *(target.chat([{"role": "user", "content": f"q{i}"}]) for i in range(12))
                )
            finally:
                await target.aclose()
            assert replies == [f"Q{i}" for i in range(12)]
            return server.peak_in_flight, time.perf_counter() - start, server.connections

    peak, elapsed, connections = run(scenario())
    assert peak == 4
    assert 0.15 <= elapsed < 3.0  # 12 requests, 4 at a time, 50 ms each
    assert connections <= 4  # keep-alive: connections are reused


def test_loopback_scripted_failures_are_retried() -> None:
    async def scenario() -> tuple[str, int]:
        async with LoopbackServer(delay=0.0, status_script=[429, 502]) as server:
            target = OpenAITarget(server.base_url, "fake", backoff_base=0.001)
            return await chat_once(target), server.requests

    assert run(scenario()) == ("I'm sorry, but I can't help with that request.", 3)


def test_rate_limit_spaces_requests() -> None:
    async def scenario() -> float:
        async with LoopbackServer(delay=0.0) as server:
            target = OpenAITarget(server.base_url, "fake", rate_limit_per_s=20, concurrency=8)
            start = time.perf_counter()
            try:
                await asyncio.gather(*(target.chat(HELLO) for _ in range(10)))
            finally:
                await target.aclose()
            return time.perf_counter() - start

    assert run(scenario()) >= 0.4  # 10 requests at 20/s with a burst of 2


def test_token_bucket_and_backoff_helpers() -> None:
    async def timed() -> float:
        bucket = TokenBucket(rate=50, burst=1)
        start = time.perf_counter()
        for _ in range(6):
            await bucket.acquire()
        return time.perf_counter() - start

    assert run(timed()) >= 0.09
    rng = random.Random(1)
    delays = [backoff_delay(a, base=0.5, cap=4.0, rng=rng) for a in range(8)]
    assert all(0 <= d <= min(4.0, 0.5 * 2**a) for a, d in enumerate(delays))
    assert retry_after_seconds("3", cap=10) == 3.0
    assert retry_after_seconds("120", cap=10) == 10.0
    assert retry_after_seconds("soon", cap=10) is None
    assert retry_after_seconds(None, cap=10) is None
    with pytest.raises(ValueError):
        TokenBucket(0)


def test_openai_target_validates_its_options() -> None:
    with pytest.raises(InvalidInputError, match="http"):
        OpenAITarget("ftp://x", "m")
    with pytest.raises(InvalidInputError, match="concurrency"):
        OpenAITarget(URL, "m", concurrency=0)
    with pytest.raises(InvalidInputError, match="retries"):
        OpenAITarget(URL, "m", retries=-1)


def echo(prompt: str) -> str:
    return f"echo: {prompt}"


def with_system(prompt: str, system: str | None = None) -> str:
    return f"[{system}] {prompt}"


def whole(messages: list[dict[str, str]]) -> str:
    return "|".join(m["role"] for m in messages)


async def async_echo(prompt: str) -> str:
    await asyncio.sleep(0)
    return prompt[::-1]


def test_callable_targets() -> None:
    assert run(chat_once(CallableTarget(echo))) == "echo: be nice\n\nhello"
    assert run(chat_once(CallableTarget(with_system))) == "[be nice] hello"
    assert run(chat_once(CallableTarget(whole))) == "system|user"
    assert run(chat_once(CallableTarget(echo, mode="messages"))).startswith("echo: [")
    assert run(chat_once(CallableTarget(async_echo))) == "olleh\n\necin eb"
    target = CallableTarget("json:dumps")
    assert target.description == "callable:json:dumps"
    assert run(chat_once(target)) == '"be nice\\n\\nhello"'


def test_callable_target_errors() -> None:
    with pytest.raises(InvalidInputError, match="module:function"):
        CallableTarget("no_colon")
    with pytest.raises(InvalidInputError, match="cannot import"):
        CallableTarget("no.such.module:f")
    with pytest.raises(InvalidInputError, match="no attribute"):
        CallableTarget("json:nothing_here")
    with pytest.raises(InvalidInputError, match="mode"):
        CallableTarget(echo, mode="weird")


def test_target_from_config() -> None:
    openai = target_from_config({"kind": "openai", "base_url": URL, "model": "m", "retries": 1})
    assert isinstance(openai, OpenAITarget) and openai.retries == 1
    assert isinstance(
        target_from_config({"kind": "callable", "function": "json:dumps"}), CallableTarget
    )
    custom = target_from_config({"kind": "mine", "x": 1}, kinds={"mine": lambda x: _Echo()})
    assert custom.description == "echo"


class _Echo(Target):
    description = "echo"

    async def chat(self, messages: list[dict[str, str]]) -> str:
        return messages[-1]["content"]


@pytest.mark.parametrize(
    ("config", "words"),
    [
        ({"kind": "openai", "base_url": URL, "model": "m", "api_key": "sk-x"}, "api_key_env"),
        ({"kind": "openai", "base_url": URL, "model": "m", "colour": 1}, "unknown option"),
        ({"kind": "openai", "base_url": URL}, "model"),
        ({"kind": "openai", "base_url": URL, "model": "m", "timeout": "fast"}, "number"),
        ({"kind": "openai", "base_url": URL, "model": "m", "retries": 1.5}, "integer"),
        ({"kind": "callable"}, "function"),
        ({"kind": "carrier-pigeon"}, "unknown target kind"),
    ],
)
def test_bad_target_configs(config: dict[str, Any], words: str) -> None:
    with pytest.raises(InvalidInputError, match=words):
        target_from_config(config)


def test_declared_configs_are_checked_without_side_effects() -> None:
    config = {"kind": "openai", "base_url": URL, "model": "m", "api_key_env": "NOT_SET_ANYWHERE"}
    check_target_config(config)  # the variable need not exist where targets are declared
    check_target_config({"kind": "callable", "function": "not.imported.yet:answer"})
    for bad in (
        {**config, "timeout": "x"},
        {"kind": "callable", "function": "nocolon"},
        {"kind": "callable", "function": "a:b", "mode": "x"},
        {"kind": "telepathy"},
    ):
        with pytest.raises(InvalidInputError):
            check_target_config(bad)
