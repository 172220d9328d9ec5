"""Pacing model calls to the provider's rate limits, so a fan-out runs at the limit instead of
into it.

One gate per provider and model on a worker. A call waits at the gate until the request and
token rates allow it; waiting calls queue in order, heartbeat and stay cancellable. The
rates come from the worker's configuration (LLM_RATE_LIMITS) or, where none is set, from the
limit headers the provider sends with every reply. What the provider says it has left
(OpenAI's `x-ratelimit-remaining-*`, Anthropic's `anthropic-ratelimit-*-remaining`) is the
same global count for every worker, so workers sharing one limit slow down together with
no store of our own: when it runs low a worker lowers its own share of the rate, and a 429
holds every call to that model on the worker for the Retry-After, not only the one retried.
Each quiet reply gives a little of the share back. Until a reply says what the limit
is, only a few calls go out, so a fan-out's first burst is not refused; what replies said
is remembered across restarts (activities/pacing_memory.py), so a worker just started
paces from it at once: a fan-out against a server with no limit goes out whole.

Temporal's task-queue rate limit (LLM_RATE_PER_SECOND on TEMPORAL_LLM_TASK_QUEUE) caps
requests per second across all workers exactly; this adds tokens, provider headers and 429s.
"""

from __future__ import annotations

import asyncio
import email.utils
import math
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from activities.rate_limit_settings import Limit
from workflows.providers import RATE_HEADER_PREFIXES, provider_spec

if TYPE_CHECKING:
    from activities.pacing_memory import PacingMemory

SLOWER_ON_REFUSAL = 0.7
"""A 429 multiplies the worker's share of the rate by this."""
SLOWER_WHEN_LOW = 0.95
"""The provider has under a quarter of a second's worth left: the share shrinks by this."""
FASTER_WHEN_CLEAR = 0.02
"""A reply with room to spare gives back this much share (additive)."""
MIN_SHARE = 0.05
DEFAULT_HOLD_SECONDS = 1.0
"""How long a 429 without Retry-After holds the gate."""
PROBE_CALLS = 4
"""Calls let out before any reply has told the limit: a few, so independent steps still
overlap, and fewer than the burst a provider's limit allows (S6: 10 a second)."""
PROBE_POLL_SECONDS = 0.02
"""How often calls waiting for a probe's reply look again."""


@dataclass
class Gate:
    """The pace of one provider/model on this worker."""

    limit: Limit = Limit()
    learned: Limit = Limit()
    """From the provider's limit headers, where no limit is configured."""
    share: float = 1.0
    """This worker's part of the rate: below 1 while other workers spend the same limit."""
    next_request_at: float = 0.0
    tokens: float = math.inf
    tokens_at: float = 0.0
    held_until: float = 0.0
    probing: int = 0
    """Calls out before the limit is known (at most PROBE_CALLS; the rest wait for a reply
    to tell the limit)."""
    unlimited: bool = False
    """A reply came without rate-limit headers: there is no limit to learn."""
    told: Limit | None = None
    """What the replies last said of the limit (Limit() for none), as remembered."""
    remember: Callable[[Limit], None] | None = None
    """Called when a reply says something other than `told`."""
    cut_at: float = -math.inf
    clock: Callable[[], float] = time.monotonic
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def rates(self) -> tuple[float | None, float | None]:
        """Requests and tokens per second this worker may use now."""
        rpm = self.limit.requests_per_minute or self.learned.requests_per_minute
        tpm = self.limit.tokens_per_minute or self.learned.tokens_per_minute
        return (rpm and rpm * self.share / 60), (tpm and tpm * self.share / 60)

    def try_acquire(self, tokens: int) -> bool:
        """Let a call go now if it may and none is queued, synchronously: where no limit
        binds, a call passes the gate without the heartbeat task `acquire` is awaited in
        (activities/llm.py), and so without event-loop turns of its own."""
        if self.lock.locked() or self._wait(tokens) > 0:
            return False
        self._take(tokens)
        if not self._known():
            self.probing += 1  # these calls learn the limit; more wait for their replies
        return True

    async def acquire(self, tokens: int, on_wait: Callable[[], None]) -> float:
        """Wait until a call of `tokens` (prompt estimate plus max_tokens) may go; calls
        queue in arrival order. Returns the seconds waited."""
        if self.try_acquire(tokens):
            return 0.0
        started = self.clock()
        told = False
        async with self.lock:
            while (wait := self._wait(tokens)) > 0:
                if not told:
                    on_wait()
                    told = True
                await asyncio.sleep(wait)
            self._take(tokens)
            if not self._known():
                self.probing += 1
        return self.clock() - started

    def _known(self) -> bool:
        return self.unlimited or any(self.rates())

    def ended(self) -> None:
        """A call's reply (or failure) is in: it no longer holds the others back."""
        self.probing = max(0, self.probing - 1)

    def _wait(self, tokens: int) -> float:
        now = self.clock()
        token_rate = self.rates()[1]
        waits = [self.held_until - now, self.next_request_at - now]
        if self.probing >= PROBE_CALLS and not self._known():
            waits.append(PROBE_POLL_SECONDS)
        if token_rate:
            self._refill(now, token_rate)
            wanted = min(tokens, token_rate)  # a call bigger than a second's worth waits for one
            waits.append((wanted - self.tokens) / token_rate)
        return max(waits)

    def _refill(self, now: float, token_rate: float) -> None:
        capacity = token_rate  # one second's worth, as providers enforce per-minute limits
        if self.tokens == math.inf:
            self.tokens = capacity
        self.tokens = min(capacity, self.tokens + (now - self.tokens_at) * token_rate)
        self.tokens_at = now

    def _take(self, tokens: int) -> None:
        now = self.clock()
        request_rate, token_rate = self.rates()
        if request_rate:
            self.next_request_at = max(now, self.next_request_at) + 1 / request_rate
        if token_rate:
            self.tokens -= tokens

    def observe(self, headers: Mapping[str, str], answered: bool = True) -> None:
        """A reply's rate-limit headers: learn the limits, and slow down while the
        provider's shared count runs low (other workers spend it too). An error without
        them (`answered=False`: a proxy's 502, a 429 of its own) tells nothing of the limit."""
        seen = RateHeaders.read(headers)
        if seen is None and not answered:
            return
        if seen is None:  # no limit here: whatever was remembered or learned is stale
            self.learned = Limit()
            self.unlimited = not any(self.rates())
            self._tell(Limit())
            return
        self.learned = Limit(seen.request_limit, seen.token_limit)
        self.unlimited = False
        self._tell(self.learned)
        low = False
        for remaining, limit, reset in (
            (seen.requests_left, seen.request_limit, seen.requests_reset),
            (seen.tokens_left, seen.token_limit, seen.tokens_reset),
        ):
            if remaining is None or not limit:
                continue
            if remaining < max(1.0, limit / 60 / 4):
                low = True
            if remaining < 1 and reset:  # none left: wait for the provider's reset (a
                # shorter hold, until one call fits, made two workers collide: S6)
                self.held_until = max(self.held_until, self.clock() + reset)
        if low:
            self.share = max(MIN_SHARE, self.share * SLOWER_WHEN_LOW)
        else:
            self.share = min(1.0, self.share + FASTER_WHEN_CLEAR)

    def _tell(self, limit: Limit) -> None:
        if limit != self.told:
            self.told = limit
            if self.remember is not None:
                self.remember(limit)

    def refused(self, retry_after: float | None) -> None:
        """A 429: every call to this model waits, and this worker takes a smaller share
        (once a second: the calls of one burst refused together count once)."""
        if self.clock() - self.cut_at >= 1.0:
            self.cut_at = self.clock()
            self.share = max(MIN_SHARE, self.share * SLOWER_ON_REFUSAL)
        hold = retry_after if retry_after is not None else DEFAULT_HOLD_SECONDS
        self.held_until = max(self.held_until, self.clock() + hold)


class Pacer:
    """The worker's gates, one per provider/model, made on first use: from the configured
    limit, else from what `memory` says earlier replies told, else knowing nothing."""

    def __init__(
        self,
        limits: Mapping[str, Limit] | None = None,
        enabled: bool = True,
        memory: PacingMemory | None = None,
        endpoints: Mapping[str, str] | None = None,
    ) -> None:
        self.limits = dict(limits or {})
        self.enabled = enabled
        self.memory = memory
        self.endpoints = dict(endpoints or {})
        """Each provider's endpoint_key (activities/pacing_memory.py), for the memory."""
        self._gates: dict[str, Gate] = {}

    def gate(self, provider: str, model: str) -> Gate | None:
        if not self.enabled or provider_spec(provider).rate_headers is None:
            return None
        key = f"{provider}/{model}"
        if key not in self._gates:
            limit = self.limits.get(key) or self.limits.get(provider) or Limit()
            gate = Gate(limit)
            if self.memory is not None:
                memory, where = self.memory, f"{key}@{self.endpoints.get(provider, 'default')}"
                gate.remember = lambda told: memory.remember(where, told)
                gate.told = memory.recall(where)
                if gate.told is not None:
                    gate.learned = gate.told
                    gate.unlimited = not any(gate.rates())
            self._gates[key] = gate
        return self._gates[key]


@dataclass(frozen=True)
class RateHeaders:
    """What a provider's rate-limit headers say, in one shape for OpenAI and Anthropic."""

    request_limit: float | None
    requests_left: float | None
    requests_reset: float | None
    token_limit: float | None
    tokens_left: float | None
    tokens_reset: float | None

    @classmethod
    def read(cls, headers: Mapping[str, str]) -> RateHeaders | None:
        lower = {key.lower(): value for key, value in headers.items()}
        prefix = RATE_HEADER_PREFIXES["openai"]
        if f"{prefix}limit-requests" in lower or f"{prefix}limit-tokens" in lower:
            get = lambda name: _number(lower.get(prefix + name))  # noqa: E731
            reset = lambda name: _duration(lower.get(f"{prefix}reset-{name}"))  # noqa: E731
            return cls(
                get("limit-requests"), get("remaining-requests"), reset("requests"),
                get("limit-tokens"), get("remaining-tokens"), reset("tokens"),
            )  # fmt: skip
        prefix = RATE_HEADER_PREFIXES["anthropic"]
        if not any(key.startswith(prefix) for key in lower):
            return None
        get = lambda name: _number(lower.get(prefix + name))  # noqa: E731
        until = lambda name: _until(lower.get(prefix + name))  # noqa: E731
        return cls(
            get("requests-limit"), get("requests-remaining"), until("requests-reset"),
            get("tokens-limit"), get("tokens-remaining"), until("tokens-reset"),
        )  # fmt: skip


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def _duration(text: str | None) -> float | None:
    """OpenAI's reset times: `1s`, `120ms`, `6m0s`, `1h2m3.5s`."""
    if not text:
        return None
    parts = _DURATION_PART.findall(text.strip())
    if not parts:
        return None
    return sum(float(amount) * _UNIT_SECONDS[unit] for amount, unit in parts)


def _until(text: str | None) -> float | None:
    """Anthropic's reset times: an RFC 3339 timestamp, as seconds from now."""
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
    return max(when.timestamp() - time.time(), 0.0)
