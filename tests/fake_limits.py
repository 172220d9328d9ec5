"""The fake provider's rate limits (tests/fake_llm.py): buckets that refill as OpenAI's do,
and what each provider says of them in its headers and 429 messages."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime


@dataclass
class Limit:
    """A model's rate limit. None leaves that dimension unlimited."""

    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None


class Bucket:
    """Refills continuously at per_minute/60 a second and holds one second's worth, as OpenAI
    quantizes its per-minute limits. A cost over one second's worth (but within the minute)
    gets through from a full bucket and leaves it in debt, so a big max_tokens is slowed
    rather than refused for good."""

    def __init__(self, per_minute: int, now: float) -> None:
        self.per_minute = per_minute
        self.rate = per_minute / 60
        self.level = self.rate
        self.updated = now

    def refill(self, now: float) -> None:
        self.level = min(self.rate, self.level + (now - self.updated) * self.rate)
        self.updated = now

    def wait(self, cost: int) -> float:
        """Seconds until `cost` fits; 0 when it fits now."""
        return max(0.0, min(cost, self.rate) - self.level - 1e-9) / self.rate

    def until_full(self) -> float:
        return max(0.0, self.rate - self.level) / self.rate


def limit_headers(buckets: dict[str, Bucket], anthropic: bool) -> dict[str, str]:
    """What each provider reports of a limited model's buckets: the per-minute limit, what
    the bucket holds now, and when it will be full again."""
    headers = {}
    for kind, bucket in buckets.items():
        limit, remaining = str(bucket.per_minute), str(max(0, math.floor(bucket.level + 1e-9)))
        if anthropic:
            full = datetime.fromtimestamp(math.ceil(time.time() + bucket.until_full()), UTC)
            headers[f"anthropic-ratelimit-{kind}-limit"] = limit
            headers[f"anthropic-ratelimit-{kind}-remaining"] = remaining
            headers[f"anthropic-ratelimit-{kind}-reset"] = full.strftime("%Y-%m-%dT%H:%M:%SZ")
        else:
            headers[f"x-ratelimit-limit-{kind}"] = limit
            headers[f"x-ratelimit-remaining-{kind}"] = remaining
            headers[f"x-ratelimit-reset-{kind}"] = go_duration(bucket.until_full())
    return headers


def limit_message(model: str, kind: str, per_minute: int, cost: int, wait: float) -> str:
    """OpenAI's wording (Anthropic's differs, but no client reads either)."""
    unit = "requests per min (RPM)" if kind == "requests" else "tokens per min (TPM)"
    where = f"for {model} in organization org-fake on {unit}: Limit {per_minute}"
    if wait == math.inf:
        return (
            f"Request too large {where}, Requested {cost}. "
            "The input or output tokens must be reduced in order to run successfully."
        )
    return f"Rate limit reached {where}, Requested {cost}. Please try again in {go_duration(wait)}."


def go_duration(seconds: float) -> str:
    """Go's duration text, as OpenAI's reset headers use it: 120ms, 1s, 1.5s, 6m0s."""
    ms = math.ceil(round(seconds * 1000, 6))  # 0.1 s is 100ms, not 101ms
    if ms == 0:
        return "0s"
    if ms < 1000:
        return f"{ms}ms"
    minutes, ms = divmod(ms, 60_000)
    text = f"{ms / 1000:.3f}".rstrip("0").rstrip(".") + "s"
    return f"{minutes}m{text}" if minutes else text
