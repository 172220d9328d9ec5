"""The fake provider enforces rate limits as the real ones do, seen through the real SDKs:
buckets that refill continuously, 429s with retry-after, and the rate-limit headers.
No Temporal here; each wait is a second at most."""

from __future__ import annotations

import asyncio
import re
import time
from datetime import UTC, datetime, timedelta

import anthropic
import httpx
import openai
import pytest

from tests.fake_limits import Limit, go_duration
from tests.fake_llm import CONTROL_PATH, FakeLlmServer

GPT, CLAUDE = "gpt-4o-mini", "claude-haiku-4-5"
PROMPT = "Say hello"  # two words: two prompt tokens, as the fake counts them


Client = openai.AsyncOpenAI | anthropic.AsyncAnthropic


def sdk(server: FakeLlmServer, provider: str) -> Client:
    """The provider's SDK pointed at the fake, retries off: every 429 reaches the test."""
    if provider == "openai":
        return openai.AsyncOpenAI(base_url=server.openai_url, api_key="k", max_retries=0)
    return anthropic.AsyncAnthropic(base_url=server.anthropic_url, api_key="k", max_retries=0)


async def ask(client: Client, max_tokens: int = 10, model: str = "") -> httpx.Headers:
    """One call through the SDK; the response's headers."""
    messages = [{"role": "user", "content": PROMPT}]
    if isinstance(client, openai.AsyncOpenAI):
        raw = await client.chat.completions.with_raw_response.create(
            model=model or GPT, messages=messages, max_tokens=max_tokens
        )
    else:
        raw = await client.messages.with_raw_response.create(
            model=model or CLAUDE, messages=messages, max_tokens=max_tokens
        )
    return raw.headers


async def refused(client: Client, max_tokens: int = 10) -> httpx.Response:
    """A call that must be refused for its rate limit; the 429 response."""
    openai_sdk = isinstance(client, openai.AsyncOpenAI)
    with pytest.raises(openai.RateLimitError if openai_sdk else anthropic.RateLimitError) as caught:
        await ask(client, max_tokens)
    assert caught.value.status_code == 429
    return caught.value.response


def test_reset_durations_read_like_openais():
    assert [go_duration(s) for s in (0, 0.1, 0.12, 1, 1.5, 17.28, 360, 90.5)] == [
        "0s", "100ms", "120ms", "1s", "1.5s", "17.28s", "6m0s", "1m30.5s"
    ]  # fmt: skip


async def test_openai_headers_give_limit_remaining_and_reset():
    limits = {GPT: Limit(requests_per_minute=600, tokens_per_minute=60_000)}
    with FakeLlmServer(limits=limits) as server:
        client = sdk(server, "openai")
        headers = await ask(client, max_tokens=100)
    assert headers["x-ratelimit-limit-requests"] == "600"
    assert headers["x-ratelimit-remaining-requests"] == "9"  # a burst of 10, one used
    assert headers["x-ratelimit-limit-tokens"] == "60000"
    assert headers["x-ratelimit-remaining-tokens"] == "898"  # 1,000 a second, 2 + 100 used
    for kind in ("requests", "tokens"):
        reset = headers[f"x-ratelimit-reset-{kind}"]
        assert re.fullmatch(r"\d+ms", reset) and 90 <= int(reset[:-2]) <= 110, reset
    assert not any(name.startswith("anthropic-ratelimit") for name in headers)


async def test_anthropic_headers_give_limit_remaining_and_reset():
    limits = {CLAUDE: Limit(requests_per_minute=600, tokens_per_minute=60_000)}
    with FakeLlmServer(limits=limits) as server:
        client = sdk(server, "anthropic")
        headers = await ask(client, max_tokens=100)
    assert headers["anthropic-ratelimit-requests-limit"] == "600"
    assert headers["anthropic-ratelimit-requests-remaining"] == "9"
    assert headers["anthropic-ratelimit-tokens-limit"] == "60000"
    assert headers["anthropic-ratelimit-tokens-remaining"] == "898"
    now = datetime.now(UTC)
    for kind in ("requests", "tokens"):
        reset = datetime.fromisoformat(headers[f"anthropic-ratelimit-{kind}-reset"])
        assert reset.tzinfo is not None and now - timedelta(seconds=1) <= reset
        assert reset <= now + timedelta(seconds=2)
    assert not any(name.startswith("x-ratelimit") for name in headers)


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
async def test_a_burst_over_the_limit_is_refused_until_the_retry_after(provider):
    model = GPT if provider == "openai" else CLAUDE
    with FakeLlmServer(limits={model: Limit(requests_per_minute=60)}) as server:
        client = sdk(server, provider)
        await ask(client)
        response = await refused(client)
        assert response.headers["retry-after"] == "1"
        limit_header = "x-ratelimit-remaining-requests"
        if provider == "openai":
            wait = int(response.headers["retry-after-ms"]) / 1000
            assert 0.8 < wait <= 1.0
            assert response.json()["error"] | {"message": ""} == {
                "message": "",
                "type": "requests",
                "code": "rate_limit_exceeded",
            }
            assert response.json()["error"]["message"].startswith("Rate limit reached for")
        else:
            limit_header = "anthropic-ratelimit-requests-remaining"
            wait = int(response.headers["retry-after"])
            body = response.json()
            assert body["type"] == "error" and body["error"]["type"] == "rate_limit_error"
        assert response.headers[limit_header] == "0"
        # The refusal cost nothing, so the retry-after it named is enough.
        await asyncio.sleep(wait)
        await ask(client)
    assert (server.served[model], server.refused[model]) == (2, 1)


async def test_the_limit_is_shared_by_every_caller():
    """The server is the one counter, as a provider's is: separate clients draw on it alike."""
    with FakeLlmServer(limits={"*": Limit(requests_per_minute=180)}) as server:
        calls = [ask(sdk(server, "openai")) for _ in range(5)]  # five callers
        results = await asyncio.gather(*calls, return_exceptions=True)
    assert sum(isinstance(r, openai.RateLimitError) for r in results) == 2
    assert (server.served[GPT], server.refused[GPT]) == (3, 2)


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
async def test_a_max_tokens_that_does_not_fit_is_refused_and_costs_nothing(provider):
    model = GPT if provider == "openai" else CLAUDE
    with FakeLlmServer(limits={model: Limit(tokens_per_minute=6_000)}) as server:  # 100 a second
        client = sdk(server, provider)
        await ask(client, max_tokens=80)  # 82 of 100
        response = await refused(client, max_tokens=50)  # 52 does not fit in 18
        if provider == "openai":
            assert response.json()["error"]["type"] == "tokens"
            assert 0 < int(response.headers["retry-after-ms"]) <= 340  # (52 - 18) / 100 a second
        await ask(client, max_tokens=10)  # 12 fits: the refusal took nothing
    assert (server.served[model], server.refused[model], server.tokens_refused[model]) == (2, 1, 52)


async def test_more_than_a_seconds_worth_borrows_from_the_next_seconds():
    """A max_tokens over one second's worth but within the minute gets through a full bucket
    (Anthropic's default 1,024 would otherwise never fit a small limit), and slows what follows;
    one over the minute's worth can never fit, and says so."""
    with FakeLlmServer(limits={GPT: Limit(tokens_per_minute=6_000)}) as server:
        client = sdk(server, "openai")
        headers = await ask(client, max_tokens=298)  # 300: three seconds' worth
        assert headers["x-ratelimit-remaining-tokens"] == "0"
        assert headers["x-ratelimit-reset-tokens"] == "3s"
        response = await refused(client, max_tokens=1)
        assert 1_500 < int(response.headers["retry-after-ms"]) <= 2_030  # (200 + 3) / 100
        server.limits[GPT] = Limit(tokens_per_minute=6_001)  # a new limit, a full bucket
        response = await refused(client, max_tokens=7_000)
    assert "retry-after" not in response.headers
    assert response.json()["error"]["message"].startswith("Request too large for gpt-4o-mini")


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
async def test_unlimited_models_carry_no_rate_limit_headers(provider):
    with FakeLlmServer(limits={"some-other-model": Limit(1, 1)}) as server:
        client = sdk(server, provider)
        headers = [await ask(client) for _ in range(3)]
    assert not [n for h in headers for n in h if "ratelimit" in n or n.startswith("retry-after")]


async def test_the_control_endpoint_sets_limits_and_reads_and_clears_the_counters():
    with FakeLlmServer() as server:
        client = sdk(server, "openai")
        async with httpx.AsyncClient(base_url=server.url) as control:
            limits = {GPT: {"requests_per_minute": 60, "tokens_per_minute": None}}
            answer = (await control.post(CONTROL_PATH, json={"limits": limits})).json()
            assert answer["limits"] == limits
            await ask(client)
            await refused(client)
            answer = (await control.post(CONTROL_PATH, json={"clear": True})).json()
            assert answer["served"] == {GPT: 1} and answer["refused"] == {GPT: 1}
            assert answer["tokens_refused"] == {GPT: 12} and len(answer["requests"]) == 2
            answer = (await control.post(CONTROL_PATH, json={})).json()
            assert answer["served"] == answer["refused"] == {} and answer["requests"] == []
            started = time.monotonic()
            await ask(client)  # clear refilled the bucket: no wait
            assert time.monotonic() - started < 0.5
            await control.post(CONTROL_PATH, json={"limits": {}})
            headers = [await ask(client) for _ in range(3)]
    assert not [n for h in headers for n in h if n.startswith("x-ratelimit")]
