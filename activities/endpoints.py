"""Where each model provider lives, as the worker's environment says (no SDK imported here,
so the starter can check keys quickly)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Endpoint:
    """Where a provider lives and the key to use; read from the worker's environment."""

    api_key: str | None = None
    base_url: str | None = None


def is_configured(provider: str, endpoint: Endpoint | None) -> bool:
    """Anthropic needs a key; OpenAI-style servers need a key or a base URL of their own."""
    if provider == "mock":
        return True
    if endpoint is None:
        return False
    if provider == "anthropic":
        return bool(endpoint.api_key)
    return bool(endpoint.api_key or endpoint.base_url)
