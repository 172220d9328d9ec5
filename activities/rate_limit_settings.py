"""The rate limits a worker is told (LLM_RATE_LIMITS) or remembers: what a limit is, apart
from the pacing that keeps to it (activities/rate_limits.py) and the memory that keeps it
across restarts (activities/pacing_memory.py)."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Limit:
    requests_per_minute: float | None = None
    tokens_per_minute: float | None = None


def read_limits(text: str) -> dict[str, Limit]:
    """LLM_RATE_LIMITS: `openai/gpt-4o-mini: 600 rpm, 60000 tpm; anthropic: 50 rpm`. A key
    is `provider/model` or a provider (for all its models)."""
    limits: dict[str, Limit] = {}
    for entry in filter(None, (part.strip() for part in text.split(";"))):
        target, sep, rates = entry.partition(":")
        values: dict[str, float] = {}
        for rate in filter(None, (part.strip() for part in rates.split(","))):
            match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(rpm|tpm)", rate.lower())
            if not match:
                raise ValueError(
                    f"LLM_RATE_LIMITS: {rate!r} in {entry!r}: write e.g. '600 rpm' or '60000 tpm'"
                )
            values[match[2]] = float(match[1])
        if not sep or not target.strip() or not values:
            raise ValueError(
                f"LLM_RATE_LIMITS: {entry!r}: write 'provider/model: 600 rpm, 60000 tpm'"
            )
        limits[target.strip()] = Limit(values.get("rpm"), values.get("tpm"))
    return limits
