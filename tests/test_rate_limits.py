"""Pacing at the provider's rate: the gate's arithmetic, the headers it reads, the settings."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from activities.endpoints import Endpoint
from activities.pacing_memory import PacingMemory, endpoint_key
from activities.rate_limit_settings import Limit, read_limits
from activities.rate_limits import PROBE_CALLS, Gate, Pacer, RateHeaders
from engine.settings import Settings


class Clock:
    """A clock that moves only when the gate sleeps."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch) -> Clock:
    clock = Clock()

    async def sleep(seconds: float) -> None:
        clock.now += seconds

    monkeypatch.setattr("activities.rate_limits.asyncio.sleep", sleep)
    return clock


def test_limits_are_read_from_the_worker_setting():
    limits = read_limits("openai/gpt-4o-mini: 600 rpm, 60000 tpm; anthropic: 50 RPM")
    assert limits == {
        "openai/gpt-4o-mini": Limit(600, 60000),
        "anthropic": Limit(requests_per_minute=50),
    }
    with pytest.raises(ValueError, match="write e.g. '600 rpm'"):
        read_limits("openai: 600 per minute")
    pacer = Pacer(limits)
    assert pacer.gate("anthropic", "claude-haiku-4-5").limit.requests_per_minute == 50
    assert pacer.gate("mock", "x") is None
    assert Pacer(limits, enabled=False).gate("openai", "gpt-4o-mini") is None


async def test_requests_are_spaced_at_the_configured_rate(clock):
    gate = Gate(Limit(requests_per_minute=600), clock=clock)
    started = clock.now
    for _ in range(11):
        await gate.acquire(10, on_wait=lambda: None)
    assert clock.now - started == pytest.approx(1.0)  # 10 gaps of 100 ms


async def test_tokens_per_minute_pace_big_calls(clock):
    gate = Gate(Limit(tokens_per_minute=6000), clock=clock)  # 100 tokens a second
    waits = []
    for _ in range(3):
        waits.append(await gate.acquire(100, on_wait=lambda: waits.append("told")))
    assert waits[0] == 0
    assert "told" in waits
    assert clock.now - 100.0 == pytest.approx(2.0)


async def test_a_429_holds_every_call_and_lowers_the_share(clock):
    gate = Gate(Limit(requests_per_minute=600), clock=clock)
    gate.refused(retry_after=2.0)
    assert gate.share == pytest.approx(0.7)
    await gate.acquire(1, on_wait=lambda: None)
    assert clock.now == pytest.approx(102.0)


async def test_the_providers_headers_teach_the_limit_and_hold_when_none_is_left(clock):
    gate = Gate(clock=clock)
    gate.observe(
        {
            "x-ratelimit-limit-requests": "600",
            "x-ratelimit-remaining-requests": "0",
            "x-ratelimit-reset-requests": "250ms",
            "x-ratelimit-limit-tokens": "60000",
            "x-ratelimit-remaining-tokens": "900",
            "x-ratelimit-reset-tokens": "100ms",
        }
    )
    assert gate.rates()[0] == pytest.approx(10 * 0.95)  # learned, and slowed: none left
    await gate.acquire(1, on_wait=lambda: None)
    assert clock.now == pytest.approx(100.25)


def test_anthropic_headers_read_the_same():
    seen = RateHeaders.read(
        {
            "anthropic-ratelimit-requests-limit": "50",
            "anthropic-ratelimit-requests-remaining": "49",
            "anthropic-ratelimit-requests-reset": "2099-01-01T00:00:00Z",
            "anthropic-ratelimit-tokens-limit": "40000",
            "anthropic-ratelimit-tokens-remaining": "39000",
        }
    )
    assert seen is not None
    assert (seen.request_limit, seen.requests_left, seen.token_limit) == (50, 49, 40000)
    assert seen.requests_reset is not None and seen.requests_reset > 0
    assert RateHeaders.read({"content-type": "application/json"}) is None


async def test_waiting_calls_can_be_cancelled():
    gate = Gate(Limit(requests_per_minute=6))  # real clock: one call per 10 s
    await gate.acquire(1, on_wait=lambda: None)
    waiting = asyncio.ensure_future(gate.acquire(1, on_wait=lambda: None))
    await asyncio.sleep(0.05)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert not gate.lock.locked()


async def test_until_the_limit_is_known_only_a_few_calls_go_out():
    """A fan-out's first burst would be refused before any reply told the limit: so a few
    calls go out, and the others wait for a reply."""
    gate = Gate()
    for _ in range(PROBE_CALLS):
        await asyncio.wait_for(gate.acquire(1, on_wait=lambda: None), 0.5)
    second = asyncio.ensure_future(gate.acquire(1, on_wait=lambda: None))
    await asyncio.sleep(0.1)
    assert not second.done()
    gate.ended()
    gate.observe({"x-ratelimit-limit-requests": "600", "x-ratelimit-remaining-requests": "9"})
    await asyncio.wait_for(second, 1)
    assert gate.rates()[0] is not None  # learned: calls are paced from now on


async def test_a_provider_without_limit_headers_is_not_paced():
    gate = Gate()
    await gate.acquire(1, on_wait=lambda: None)
    gate.ended()
    gate.observe({"content-type": "application/json"})
    for _ in range(20):
        assert await asyncio.wait_for(gate.acquire(1, on_wait=lambda: None), 0.5) < 0.05


def test_the_429s_of_one_burst_cut_the_share_once(clock):
    gate = Gate(Limit(requests_per_minute=600), clock=clock)
    for _ in range(4):
        gate.refused(retry_after=0.1)
    assert gate.share == pytest.approx(0.7)
    clock.now += 1.5
    gate.refused(retry_after=0.1)
    assert gate.share == pytest.approx(0.49)


def remembered(path: Path, key: str = "openai/gpt-4o-mini@default") -> Limit | None:
    return PacingMemory(path).recall(key)


async def test_a_remembered_limit_paces_from_the_first_call(clock, tmp_path):
    """A restarted worker starts from what the last replies said: paced at once, no probe."""
    PacingMemory(tmp_path / "p.json").remember("openai/gpt-4o-mini@default", Limit(600, 60000))
    gate = Pacer(memory=PacingMemory(tmp_path / "p.json")).gate("openai", "gpt-4o-mini")
    assert gate is not None and gate.rates() == (10, 1000)
    gate.clock = clock
    started = clock.now
    for _ in range(PROBE_CALLS + 2):  # more than a probe: they go, paced, with no reply
        await asyncio.wait_for(gate.acquire(10, on_wait=lambda: None), 0.5)
    assert clock.now - started == pytest.approx((PROBE_CALLS + 1) * 0.1)


async def test_a_remembered_no_limit_lets_every_call_go_at_once(tmp_path):
    PacingMemory(tmp_path / "p.json").remember("openai/gpt-4o-mini@default", Limit())
    gate = Pacer(memory=PacingMemory(tmp_path / "p.json")).gate("openai", "gpt-4o-mini")
    assert gate is not None
    for _ in range(100):
        assert await asyncio.wait_for(gate.acquire(1, on_wait=lambda: None), 0.5) < 0.05


def test_the_first_reply_corrects_what_was_remembered(tmp_path):
    """Memory is a hint: a reply's headers (or their absence) replace it, in the file too."""
    path = tmp_path / "p.json"
    PacingMemory(path).remember("openai/gpt-4o-mini@default", Limit())
    gate = Pacer(memory=PacingMemory(path)).gate("openai", "gpt-4o-mini")
    assert gate is not None and gate.unlimited
    gate.observe({"x-ratelimit-limit-requests": "600", "x-ratelimit-remaining-requests": "599"})
    assert not gate.unlimited and gate.rates()[0] == pytest.approx(10)
    assert remembered(path) == Limit(600)
    gate = Pacer(memory=PacingMemory(path)).gate("openai", "gpt-4o-mini")
    assert gate is not None
    gate.observe({"content-type": "application/json"})  # the limit is gone
    assert gate.unlimited and gate.rates() == (None, None)
    assert remembered(path) == Limit()


def test_an_error_without_limit_headers_tells_nothing(tmp_path):
    """A proxy's 502 or 429 carries no limit headers: the gate stays probing, nothing is
    remembered (before, such an error made a gate that knew nothing let every call out)."""
    gate = Pacer(memory=PacingMemory(tmp_path / "p.json")).gate("openai", "gpt-4o-mini")
    assert gate is not None
    gate.observe({"content-type": "text/html"}, answered=False)
    assert not gate.unlimited
    assert remembered(tmp_path / "p.json") is None


def test_memory_keys_keep_no_secret_and_tell_accounts_apart():
    key = endpoint_key(Endpoint("sk-secret", "https://user:pw@api.example.com:8443/v1/?k=s"))
    assert key.startswith("https://api.example.com:8443/v1#")
    assert "secret" not in key and "pw" not in key and "k=s" not in key
    assert key != endpoint_key(Endpoint("sk-other", "https://api.example.com:8443/v1"))
    assert endpoint_key(Endpoint()) == "default#"


def test_an_unreadable_or_unwritable_memory_never_stops_pacing(tmp_path):
    (tmp_path / "p.json").write_text("{not json")
    assert remembered(tmp_path / "p.json") is None
    blocked = tmp_path / "file"
    blocked.write_text("")
    PacingMemory(blocked / "p.json").remember("k", Limit(600))  # its folder is a file: logged


def test_the_memory_file_is_set_by_the_environment(tmp_path):
    assert Settings.from_env({}, connection=False).llm_pacing_memory == (
        Settings.dev_dir / "pacing.json"
    )
    dev = Settings.from_env({"TEMPORAL_DEV_DIR": str(tmp_path)}, connection=False)
    assert dev.llm_pacing_memory == tmp_path / "pacing.json"
    own = Settings.from_env({"LLM_PACING_MEMORY": str(tmp_path / "m.json")}, connection=False)
    assert own.llm_pacing_memory == tmp_path / "m.json"
    assert (
        Settings.from_env({"LLM_PACING_MEMORY": "off"}, connection=False).llm_pacing_memory is None
    )


def test_the_memory_keeps_the_newest_entries_only(tmp_path, monkeypatch):
    monkeypatch.setattr("activities.pacing_memory.MAX_ENTRIES", 3)
    memory = PacingMemory(tmp_path / "p.json")
    for port in range(5):
        memory.remember(f"openai/m@http://127.0.0.1:{port}#", Limit(600))
    kept = json.loads((tmp_path / "p.json").read_text())
    assert len(kept) == 3 and "openai/m@http://127.0.0.1:4#" in kept
