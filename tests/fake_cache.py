"""Prompt-cache accounting for the fake provider (tests/fake_llm.py), as the real ones count.

OpenAI caches every long prefix of a request by itself, at message boundaries here, and
reports reads as `prompt_tokens_details.cached_tokens` (within `prompt_tokens`). Anthropic
caches only up to a block marked `cache_control`: the first request writes it
(`cache_creation_input_tokens`), later ones with the same prefix read it
(`cache_read_input_tokens`); both are counted apart from `input_tokens`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

MIN_CACHED_TOKENS = 1024
"""Shorter prefixes are never cached (both providers' minimum for their large models)."""


@dataclass(frozen=True)
class CacheUse:
    read: int = 0
    written: int = 0


@dataclass
class PromptCache:
    """What the fake has cached, by model and prefix; `min_tokens` as the providers have it."""

    tokens_of: Callable[[str], int]
    min_tokens: int = MIN_CACHED_TOKENS
    _known: set[str] = field(default_factory=set)

    def use(self, body: dict[str, Any], anthropic: bool) -> CacheUse:
        """Charge one request (the caller holds the server's lock)."""
        prefixes = _marked(body) if anthropic else _every(body)
        sized = [
            (key, tokens)
            for key, text in prefixes
            if (tokens := self.tokens_of(text)) >= self.min_tokens
        ]
        model = str(body.get("model"))
        read = max((t for key, t in sized if f"{model}\n{key}" in self._known), default=0)
        written = 0
        if anthropic and sized and f"{model}\n{sized[-1][0]}" not in self._known:
            written = sized[-1][1] - read
        self._known.update(f"{model}\n{key}" for key, _ in sized)
        return CacheUse(read, written)

    def clear(self) -> None:
        self._known.clear()


def block_text(content: Any) -> str:
    """A message's or system prompt's text as a prompt counts it: text blocks joined, other
    blocks (images, tool results) as their JSON."""
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(
        isinstance(b, dict) and b.get("type") == "text" for b in content
    ):
        return "".join(b["text"] for b in content)
    return json.dumps(content)


def _blocks(content: Any) -> list[Any]:
    return content if isinstance(content, list) else [{"type": "text", "text": content or ""}]


def _marked(body: dict[str, Any]) -> list[tuple[str, str]]:
    """Anthropic: (key, text) of the prefix up to each `cache_control` breakpoint, in order
    (system blocks, then the messages' blocks)."""
    seen: list[Any] = []
    texts: list[str] = []
    found: list[tuple[str, str]] = []
    sources = [_blocks(body.get("system"))] if body.get("system") else []
    sources += [_blocks(m.get("content")) for m in body.get("messages", [])]
    for blocks in sources:
        for block in blocks:
            plain = {k: v for k, v in block.items() if k != "cache_control"}
            seen.append(plain)
            texts.append(block_text([plain]))
            if "cache_control" in block:
                found.append((json.dumps(seen), "\n".join(texts)))
    return found


def _every(body: dict[str, Any]) -> list[tuple[str, str]]:
    """OpenAI: (key, text) of every prefix of whole messages."""
    messages = body.get("messages", [])
    return [
        (
            json.dumps(messages[: n + 1]),
            "\n".join(block_text(m.get("content")) for m in messages[: n + 1]),
        )
        for n in range(len(messages))
    ]
