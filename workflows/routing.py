"""Which provider serves a model name (DSL.md, "Model names")."""

from __future__ import annotations

import re
from dataclasses import dataclass

from workflows.providers import PROVIDER_NAME, PROVIDERS

_BARE_NAMES = tuple(
    (re.compile(f"^(?:{spec.bare_names})"), spec.name) for spec in PROVIDERS if spec.bare_names
)


@dataclass(frozen=True)
class Route:
    provider: str
    model: str

    def __str__(self) -> str:
        return f"{self.provider}/{self.model}"


def route(name: str) -> Route:
    """Split ``provider/model``, or route a bare name by its prefix.

    Any other ``provider/`` is an OpenAI-compatible server the worker knows by name
    (``<PROVIDER>_BASE_URL``). Raises ValueError when a bare name has no known prefix.
    """
    provider, slash, model = name.partition("/")
    if slash:
        if not PROVIDER_NAME.match(provider) or not model:
            raise ValueError(f"invalid model name {name!r}: write 'provider/model'")
        return Route(provider, model)
    for pattern, provider in _BARE_NAMES:
        if pattern.match(name):
            return Route(provider, name)
    raise ValueError(
        f"cannot tell which provider serves model {name!r}: write it as 'provider/model', "
        f"e.g. 'openai/{name}' (providers: {', '.join(spec.name for spec in PROVIDERS)}, or any "
        "OpenAI-compatible server named by the worker's <NAME>_BASE_URL)"
    )
